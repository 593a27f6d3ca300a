//! Forgotten passwords: reset code by mail, check, new password.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json, types::Example};
use serde::Deserialize;

use super::{
    ApiTags,
    error::{ApiErrors, error_set},
    json::JsonBody,
    models::Message,
    registration::CodeRequest,
};
use crate::{
    app::AppState,
    domain::{ClientInfo, codes::Purpose, password_reset::ResetForm},
};

pub struct PasswordResetApi;

#[derive(Debug, Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct EmailRequest {
    pub email: String,
}

impl Example for EmailRequest {
    fn example() -> Self {
        Self {
            email: "jane@example.com".into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum ForgotResponse {
    /// The same answer whether or not the address has an account; if it has, a reset code
    /// was mailed and any older reset code no longer works.
    #[oai(status = 200)]
    Ok(Json<Message>),
}

#[derive(Debug, Object)]
pub struct CodeAccepted {
    pub message: String,
    /// Always true.
    pub verified: bool,
}

#[derive(ApiResponse)]
pub enum VerifyResetResponse {
    /// The code is right; it stays usable for `/auth/reset-password`.
    #[oai(status = 200)]
    Ok(Json<CodeAccepted>),
}

/// No `Debug`: it carries a secret.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct ResetRequest {
    pub email: String,
    /// The 6-digit reset code from the mail.
    pub otp: String,
    /// The same rules as at registration.
    pub new_password: String,
    pub confirm_password: String,
}

impl Example for ResetRequest {
    fn example() -> Self {
        Self {
            email: "jane@example.com".into(),
            otp: "042917".into(),
            new_password: "a new battery staple".into(),
            confirm_password: "a new battery staple".into(),
        }
    }
}

#[derive(Debug, Object)]
pub struct ResetDone {
    pub message: String,
    /// Always true.
    pub success: bool,
}

#[derive(ApiResponse)]
pub enum ResetResponse {
    /// The password is changed, every session revoked, the address verified, and a "your
    /// password was changed" mail sent.
    #[oai(status = 200)]
    Ok(Json<ResetDone>),
}

error_set!(ForgotErrors: ValidationFailed, InvalidJson, UnsupportedMediaType, PayloadTooLarge,
    ResendTooSoon, MailUnavailable, RateLimited);
error_set!(VerifyResetErrors: ValidationFailed, InvalidJson, UnsupportedMediaType, PayloadTooLarge,
    InvalidOtp, OtpLocked, RateLimited);
error_set!(ResetErrors: ValidationFailed, InvalidJson, UnsupportedMediaType, PayloadTooLarge,
    InvalidOtp, OtpLocked, Overloaded, RateLimited);

#[OpenApi(tag = "ApiTags::PasswordReset")]
impl PasswordResetApi {
    /// Ask for a password reset code
    ///
    /// Mails a 6-digit reset code if the address has an active account. The answer is the
    /// same either way, and so is the per-address cooldown (429 `resend_too_soon`).
    #[oai(path = "/auth/forgot-password", method = "post")]
    async fn forgot_password(
        &self,
        state: Data<&Arc<AppState>>,
        body: JsonBody<EmailRequest>,
    ) -> Result<ForgotResponse, ApiErrors<ForgotErrors>> {
        send_reset_code(&state, &body.0.email).await
    }

    /// Send the password reset code again
    ///
    /// Exactly like `/auth/forgot-password`.
    #[oai(path = "/auth/resend-password-reset-otp", method = "post")]
    async fn resend_password_reset_otp(
        &self,
        state: Data<&Arc<AppState>>,
        body: JsonBody<EmailRequest>,
    ) -> Result<ForgotResponse, ApiErrors<ForgotErrors>> {
        send_reset_code(&state, &body.0.email).await
    }

    /// Check a password reset code
    ///
    /// Lets an app confirm the code before asking for the new password. The code is not
    /// used up; wrong codes count towards `AUTHGATE_OTP_MAX_ATTEMPTS`.
    #[oai(path = "/auth/verify-password-reset-otp", method = "post")]
    async fn verify_password_reset_otp(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<CodeRequest>,
    ) -> Result<VerifyResetResponse, ApiErrors<VerifyResetErrors>> {
        state
            .auth
            .verify_reset_code(&body.0.email, &body.0.otp, client.0)
            .await?;
        Ok(VerifyResetResponse::Ok(Json(CodeAccepted {
            message: "The code is valid. Choose a new password.".into(),
            verified: true,
        })))
    }

    /// Set a new password with a reset code
    ///
    /// Consumes the code, sets the password, revokes every session of the account, marks the
    /// address verified and mails a notice.
    #[oai(path = "/auth/reset-password", method = "post")]
    async fn reset_password(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<ResetRequest>,
    ) -> Result<ResetResponse, ApiErrors<ResetErrors>> {
        let body = body.0;
        let form = ResetForm {
            email: body.email,
            otp: body.otp,
            new_password: body.new_password,
            confirm_password: body.confirm_password,
        };
        state.auth.reset_password(form, client.0).await?;
        Ok(ResetResponse::Ok(Json(ResetDone {
            message: "Your password was changed. Sign in with the new one.".into(),
            success: true,
        })))
    }
}

async fn send_reset_code(
    state: &AppState,
    email: &str,
) -> Result<ForgotResponse, ApiErrors<ForgotErrors>> {
    state
        .auth
        .resend_code(email, Purpose::PasswordReset)
        .await?;
    Ok(ForgotResponse::Ok(Json(Message {
        message: "If an account uses this address, a reset code is on its way.".into(),
    })))
}
