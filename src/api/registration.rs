//! Registration, email verification and code resends.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, payload::Json, types::Example};
use serde::Deserialize;

use super::{
    ApiTags,
    error::{ApiErrors, error_set},
    json::JsonBody,
    models::{Tokens, User},
};
use crate::{
    app::AppState,
    domain::{ClientInfo, codes::Purpose, registration::RegistrationForm},
};

pub struct RegistrationApi;

/// A new account. Unknown fields are ignored.
/// No `Debug`: it carries a secret.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct RegisterRequest {
    /// Trimmed and lowercased before use.
    pub email: String,
    /// At least `password_min_length` characters (see `/auth/settings`), at most 1024
    /// bytes, not entirely numeric, not a common password, not the email or its local part.
    pub password: String,
    /// The same password again.
    pub password2: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// International form, e.g. `+15551234567`.
    pub phone_number: Option<String>,
    /// One of `self_assignable_roles` (see `/auth/settings`); the first is the default.
    pub role: Option<String>,
}

impl Example for RegisterRequest {
    fn example() -> Self {
        Self {
            email: "jane@example.com".into(),
            password: "correct horse battery staple".into(),
            password2: "correct horse battery staple".into(),
            first_name: Some("Jane".into()),
            last_name: Some("Doe".into()),
            phone_number: Some("+15551234567".into()),
            role: None,
        }
    }
}

#[derive(Debug, Object)]
pub struct Registered {
    pub user: User,
    /// Always true: the verification code is on its way.
    pub otp_sent: bool,
    /// Seconds the code is valid.
    pub otp_expires_in: u64,
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// The account exists, unverified, and a 6-digit code was mailed to the address.
    #[oai(status = 201)]
    Created(Json<Registered>),
}

/// An address and the code mailed to it.
/// No `Debug`: it carries a secret.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct CodeRequest {
    pub email: String,
    /// The 6-digit code from the mail.
    pub otp: String,
}

impl Example for CodeRequest {
    fn example() -> Self {
        Self {
            email: "jane@example.com".into(),
            otp: "042917".into(),
        }
    }
}

#[derive(Debug, Object)]
pub struct Verified {
    pub message: String,
    /// Always true.
    pub verified: bool,
    pub user: User,
    #[oai(flatten)]
    pub tokens: Tokens,
}

#[derive(ApiResponse)]
pub enum VerifyResponse {
    /// The address is verified and the user signed in.
    #[oai(status = 200)]
    Verified(Json<Verified>),
}

/// Which code to send again.
#[derive(Debug, Clone, Copy, Enum, Deserialize, Default, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CodeContext {
    /// The email verification code (the default).
    #[default]
    Registration,
    /// The password reset code.
    PasswordReset,
}

#[derive(Debug, Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct ResendRequest {
    pub email: String,
    /// `registration` (default) or `password_reset`.
    pub context: Option<CodeContext>,
}

impl Example for ResendRequest {
    fn example() -> Self {
        Self {
            email: "jane@example.com".into(),
            context: Some(CodeContext::Registration),
        }
    }
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

error_set!(RegisterErrors: ValidationFailed, InvalidJson, UnsupportedMediaType, PayloadTooLarge,
    EmailDomainNotAllowed, RoleNotAllowed, EmailTaken, ResendTooSoon, MailUnavailable, Overloaded, RateLimited);
error_set!(VerifyErrors: ValidationFailed, InvalidJson, UnsupportedMediaType, PayloadTooLarge,
    InvalidOtp, OtpLocked, AccountDisabled, AlreadyVerified, RateLimited);
error_set!(ResendErrors: ValidationFailed, InvalidJson, UnsupportedMediaType, PayloadTooLarge,
    ResendTooSoon, MailUnavailable, RateLimited);

#[OpenApi(tag = "ApiTags::Registration")]
impl RegistrationApi {
    /// Register with email and password
    ///
    /// Creates an unverified account and mails a 6-digit verification code. Registering
    /// again with the address of an account that is not verified yet replaces its password
    /// and names and mails a fresh code, so nobody can squat an address they cannot read;
    /// this obeys the per-address resend cooldown (429 `resend_too_soon` inside it, and
    /// nothing changes). If the mail server cannot take the mail, the answer is 503
    /// `mail_unavailable`, the account stays saved and `/auth/resend-otp` works once mail is
    /// back.
    #[oai(path = "/auth/register", method = "post")]
    async fn register(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<RegisterRequest>,
    ) -> Result<RegisterResponse, ApiErrors<RegisterErrors>> {
        let body = body.0;
        let form = RegistrationForm {
            email: body.email,
            password: body.password,
            password2: body.password2,
            first_name: body.first_name,
            last_name: body.last_name,
            phone_number: body.phone_number,
            role: body.role,
        };
        let registered = state.auth.register(form, client.0).await?;
        Ok(RegisterResponse::Created(Json(Registered {
            user: registered.account.into(),
            otp_sent: true,
            otp_expires_in: registered.otp_expires_in,
        })))
    }

    /// Verify the email address with the mailed code
    ///
    /// A right code verifies the address and signs the user in: the answer carries a token
    /// pair. Each wrong code counts; after `AUTHGATE_OTP_MAX_ATTEMPTS` wrong ones the code is
    /// burned (400 `otp_locked`) and a new one must be requested. An unknown address answers
    /// like a wrong code. An account that is already verified answers 409 `already_verified`
    /// whatever code is sent.
    #[oai(path = "/auth/verify-otp", method = "post")]
    async fn verify_otp(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<CodeRequest>,
    ) -> Result<VerifyResponse, ApiErrors<VerifyErrors>> {
        let signed_in = state
            .auth
            .verify_email(&body.0.email, &body.0.otp, client.0)
            .await?;
        Ok(VerifyResponse::Verified(Json(Verified {
            message: "Email verified. You are signed in.".into(),
            verified: true,
            user: signed_in.account.into(),
            tokens: signed_in.tokens.into(),
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
        let purpose = match body.0.context.unwrap_or_default() {
            CodeContext::Registration => Purpose::Registration,
            CodeContext::PasswordReset => Purpose::PasswordReset,
        };
        let otp_expires_in = state.auth.resend_code(&body.0.email, purpose).await?;
        Ok(ResendResponse::Sent(Json(CodeSent {
            message: "If the address can receive a code, one is on its way.".into(),
            otp_expires_in,
        })))
    }
}
