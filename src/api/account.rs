//! The account over its life: usernames, leaving (with a grace), and getting an account back
//! from pending deletion.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, param::Query, payload::Json};

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{ApiErrors, error_set},
    json::JsonBody,
    tokens::LoggedIn,
};
use crate::{
    app::AppState,
    domain::ClientInfo,
    flows::{
        deletion::{DeleteAccountRequest, DeletionScheduled},
        sign_in::LoginRequest,
        usernames::UsernameAvailability,
    },
};

#[derive(Default)]
pub struct AccountApi;

#[derive(ApiResponse)]
pub enum AvailabilityResponse {
    /// Whether the name can be taken now (someone may take it before you do).
    #[oai(status = 200)]
    Ok(Json<UsernameAvailability>),
}

#[derive(ApiResponse)]
pub enum RestoreResponse {
    /// The deletion is cancelled and the user signed in; a mail confirms it.
    #[oai(status = 200)]
    Ok(Json<LoggedIn>),
}

#[derive(ApiResponse)]
pub enum DeleteAccountResponse {
    /// Accepted: the account is `pending_deletion` until `deletion_scheduled_for`. Where the
    /// service runs with no grace (`AUTHGATE_DELETION_GRACE=0s`) it is already gone when this
    /// answer is sent (no mail then: nothing keeps the address): `deletion_scheduled_for` is
    /// the moment it went.
    #[oai(status = 202)]
    Accepted(Json<DeletionScheduled>),
}

error_set!(AvailabilityErrors: RateLimited);
error_set!(DeleteAccountErrors[JSON_BODY, BEARER]: InvalidCredentials, MfaRequired, InvalidMfaCode, LastAdmin, Overloaded, RateLimited);
error_set!(RestoreErrors[JSON_BODY]: InvalidCredentials, MfaRequired, NotPendingDeletion, Overloaded, RateLimited);

#[OpenApi(tag = "ApiTags::Account")]
impl AccountApi {
    /// Is this username free?
    ///
    /// For forms that check while the person types. `reason` says why not: `taken`,
    /// `reserved` (names like `admin` or `support`) or `invalid` (3–30 letters, digits, `_`,
    /// `.` or `-`, starting with a letter or digit). Limited per client IP
    /// (`AUTHGATE_LIMIT_LOOKUP_IP`), so it cannot list who is registered.
    #[oai(path = "/auth/username-available", method = "get")]
    async fn username_available(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        /// The name to check.
        username: Query<String>,
    ) -> Result<AvailabilityResponse, ApiErrors<AvailabilityErrors>> {
        let answer = state.username_lookup.check(&username.0, client.0).await?;
        Ok(AvailabilityResponse::Ok(Json(answer)))
    }

    /// Delete your account
    ///
    /// Needs the password (401 `invalid_credentials` when wrong; wrong ones count toward the
    /// login lockout) and `confirmation` set to exactly `delete my account` (else 400
    /// `validation_failed`). Every session is revoked at once, and the account's access
    /// tokens are refused from then on. A mail tells when the account goes and how to keep
    /// it: until then, `POST /auth/restore` with the password cancels the deletion. When the
    /// grace (`AUTHGATE_DELETION_GRACE`, 7 days by default) ends, the account is purged: its
    /// profile, picture, sessions, codes and mail are removed, the address and username are
    /// free again, and its audit events lose the address, IP and user agent. With no grace
    /// the purge happens at once. The only active admin cannot leave (409 `last_admin`):
    /// make someone else admin first.
    #[oai(path = "/auth/me/delete", method = "post")]
    async fn delete_account(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        body: JsonBody<DeleteAccountRequest>,
    ) -> Result<DeleteAccountResponse, ApiErrors<DeleteAccountErrors>> {
        let outcome = state
            .deletion
            .request(&auth.0.account, body.0, client.0)
            .await?;
        Ok(DeleteAccountResponse::Accepted(Json(outcome)))
    }

    /// Keep an account that is pending deletion
    ///
    /// Signs in with `login` (address or username) and password like `/auth/login`, cancels
    /// the deletion and mails a confirmation. A wrong password is 401 `invalid_credentials`
    /// like any other; 409 `not_pending_deletion` comes only after a correct password. An
    /// account with a second factor answers 403 `mfa_required` with an `mfa_token`, exactly as
    /// `/auth/login` does; `/auth/mfa/verify` then restores and signs in: restoring never
    /// skips the second factor.
    #[oai(path = "/auth/restore", method = "post")]
    async fn restore(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<LoginRequest>,
    ) -> Result<RestoreResponse, ApiErrors<RestoreErrors>> {
        let signed_in = state.sign_in.restore(body.0, client.0).await?;
        Ok(RestoreResponse::Ok(Json(LoggedIn {
            message: "Your account was restored. You are signed in.".into(),
            user: signed_in.account,
            tokens: signed_in.tokens,
        })))
    }
}
