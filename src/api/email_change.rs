//! Changing the signed-in account's address: request a code at the new address, confirm it.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{ApiErrors, error_set},
    json::JsonBody,
};
use crate::{
    app::AppState,
    domain::{Account, ClientInfo, TokenPair},
    flows::email_change::{EmailChangeConfirmation, EmailChangeRequest, EmailChangeStarted},
};

#[derive(Default)]
pub struct EmailChangeApi;

/// The account with its new address, and this device's new token pair.
#[derive(Debug, Object)]
pub struct EmailChanged {
    pub user: Account,
    #[oai(flatten)]
    pub tokens: TokenPair,
}

#[derive(ApiResponse)]
pub enum EmailChangeRequestResponse {
    /// A code is on its way to the new address; confirm it with `/auth/me/email/confirm`.
    #[oai(status = 202)]
    Accepted(Json<EmailChangeStarted>),
}

#[derive(ApiResponse)]
pub enum EmailChangeConfirmResponse {
    /// The address is changed and verified; every other session is revoked, and this device
    /// continues with the new token pair.
    #[oai(status = 200)]
    Ok(Json<EmailChanged>),
}

error_set!(EmailChangeRequestErrors[JSON_BODY, BEARER]: InvalidCredentials, MfaRequired, InvalidMfaCode, EmailDomainNotAllowed, EmailTaken, ResendTooSoon, RateLimited, Overloaded);
error_set!(EmailChangeConfirmErrors[JSON_BODY, BEARER]: InvalidOtp, OtpLocked, EmailTaken);

#[OpenApi(tag = "ApiTags::Account")]
impl EmailChangeApi {
    /// Change your email address
    ///
    /// Needs the current password (401 `invalid_credentials` when wrong; wrong passwords
    /// count toward the sign-in lockout). A 6-digit code is mailed to `new_email`; nothing
    /// changes until it is confirmed with `POST /auth/me/email/confirm`. A newer request
    /// voids the older one's code. The address must be valid and differ from the current one
    /// (400 `validation_failed`), be of an allowed domain (403 `email_domain_not_allowed`)
    /// and not belong to any account, verified or not (409 `email_taken`). Codes to one
    /// address are at least the resend cooldown apart (429 `resend_too_soon`).
    #[oai(path = "/auth/me/email", method = "post")]
    async fn request_email_change(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        body: JsonBody<EmailChangeRequest>,
    ) -> Result<EmailChangeRequestResponse, ApiErrors<EmailChangeRequestErrors>> {
        let started = state
            .email_change
            .request(&auth.0.account, body.0, client.0)
            .await?;
        Ok(EmailChangeRequestResponse::Accepted(Json(started)))
    }

    /// Confirm your new email address
    ///
    /// With the code mailed to the new address, the address changes and counts as verified.
    /// Every session of the account is revoked and this device gets a new token pair (its
    /// access token carries the new `email`); codes still out for the account stop working;
    /// a notice goes to the old address. A wrong, expired or used code is 400 `invalid_otp`
    /// (too many wrong ones: 400 `otp_locked`, ask for a new code); an address another account
    /// took meanwhile is 409 `email_taken`.
    #[oai(path = "/auth/me/email/confirm", method = "post")]
    async fn confirm_email_change(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        body: JsonBody<EmailChangeConfirmation>,
    ) -> Result<EmailChangeConfirmResponse, ApiErrors<EmailChangeConfirmErrors>> {
        let signed_in = state
            .email_change
            .confirm(&auth.0.account, body.0, &auth.0.claims.amr, client.0)
            .await?;
        Ok(EmailChangeConfirmResponse::Ok(Json(EmailChanged {
            user: signed_in.account,
            tokens: signed_in.tokens,
        })))
    }
}
