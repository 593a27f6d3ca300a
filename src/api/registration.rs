//! Registration, email verification and code resends.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    error::{ApiErrors, error_set},
    json::JsonBody,
};
use crate::{
    app::AppState,
    domain::{Account, ClientInfo, TokenPair},
    flows::registration::{RegisterRequest, Registered, ResendRequest, VerifyRequest},
};

#[derive(Default)]
pub struct RegistrationApi;

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// The account exists, unverified, and a 6-digit code was mailed to the address.
    #[oai(status = 201)]
    Created(Json<Registered>),
}

#[derive(Debug, Object)]
pub struct Verified {
    pub message: String,
    /// Always true.
    pub verified: bool,
    pub user: Account,
    #[oai(flatten)]
    pub tokens: TokenPair,
}

#[derive(ApiResponse)]
pub enum VerifyResponse {
    /// The address is verified and the user signed in.
    #[oai(status = 200)]
    Verified(Json<Verified>),
}

#[derive(Debug, Object)]
pub struct CodeSent {
    pub message: String,
    /// Seconds a mailed code is valid.
    pub otp_expires_in: u64,
}

#[derive(ApiResponse)]
pub enum ResendResponse {
    /// The same answer whether or not the address has an account: if it has one the code
    /// can serve, a new code was mailed and any older one no longer works.
    #[oai(status = 200)]
    Sent(Json<CodeSent>),
}

error_set!(RegisterErrors[JSON_BODY]: EmailDomainNotAllowed, UsernameTaken, RoleNotAllowed, EmailTaken, ResendTooSoon, Overloaded, RateLimited);
error_set!(VerifyErrors[JSON_BODY]: InvalidOtp, OtpLocked, AccountDisabled, AlreadyVerified, RateLimited);
error_set!(ResendErrors[JSON_BODY]: ResendTooSoon, RateLimited);

#[OpenApi(tag = "ApiTags::Registration")]
impl RegistrationApi {
    /// Register with email and password
    ///
    /// Creates an unverified account and mails a 6-digit verification code. Registering
    /// again with the address of an account that is not verified yet replaces its password
    /// and names and mails a fresh code, so nobody can squat an address they cannot read;
    /// this obeys the per-address resend cooldown (429 `resend_too_soon` inside it, and
    /// nothing changes). Because the newest code may then reach an inbox whose owner did not
    /// make the newest registration, such an address verifies only with the newest
    /// registration's `password` too (see `/auth/verify-otp`). The mail goes out through the
    /// outbox: the answer never waits for the mail server.
    #[oai(path = "/auth/register", method = "post")]
    async fn register(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<RegisterRequest>,
    ) -> Result<RegisterResponse, ApiErrors<RegisterErrors>> {
        let registered = state.registration.register(body.0, client.0).await?;
        Ok(RegisterResponse::Created(Json(registered)))
    }

    /// Verify the email address with the mailed code
    ///
    /// A right code verifies the address and signs the user in: the answer carries a token
    /// pair. Each wrong code counts; after `AUTHGATE_OTP_MAX_ATTEMPTS` wrong ones the code is
    /// burned (400 `otp_locked`) and a new one must be requested. An unknown address answers
    /// like a wrong code. An account that is already verified answers 409 `already_verified`
    /// whatever code is sent.
    ///
    /// An address registered more than once before verification also needs `password`, the
    /// one of the newest registration: without it 400 `validation_failed` under
    /// `fields.password`; with another password 400 `invalid_otp`, counted as a wrong code.
    /// This stops whoever registered last from taking over the account of the person who
    /// reads the inbox. An address registered once verifies with `email` and `otp` alone.
    #[oai(path = "/auth/verify-otp", method = "post")]
    async fn verify_otp(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<VerifyRequest>,
    ) -> Result<VerifyResponse, ApiErrors<VerifyErrors>> {
        let signed_in = state.registration.verify(&body.0, client.0).await?;
        Ok(VerifyResponse::Verified(Json(Verified {
            message: "Email verified. You are signed in.".into(),
            verified: true,
            user: signed_in.account,
            tokens: signed_in.tokens,
        })))
    }

    /// Send a code again
    ///
    /// Mails a new verification code (`context: registration`, the default) or password
    /// reset code (`context: password_reset`) and voids the older one. The answer is the same
    /// whether or not the address has an account, and the cooldown between two codes to one
    /// address (`otp_resend_cooldown_seconds` in `/auth/settings`) applies either way, so
    /// neither reveals who is registered.
    #[oai(path = "/auth/resend-otp", method = "post")]
    async fn resend_otp(
        &self,
        state: Data<&Arc<AppState>>,
        body: JsonBody<ResendRequest>,
    ) -> Result<ResendResponse, ApiErrors<ResendErrors>> {
        let otp_expires_in = state.registration.resend(&body.0).await?;
        Ok(ResendResponse::Sent(Json(CodeSent {
            message: "If the address can receive a code, one is on its way.".into(),
            otp_expires_in,
        })))
    }
}
