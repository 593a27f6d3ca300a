//! Forgotten passwords: reset code by mail, check, new password.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    error::{ApiErrors, error_set},
    json::JsonBody,
    models::Message,
};
use crate::{
    app::AppState,
    domain::ClientInfo,
    flows::{CodeRequest, EmailRequest, password_reset::ResetRequest},
};

#[derive(Default)]
pub struct PasswordResetApi;

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

error_set!(ForgotErrors[JSON_BODY]: ResendTooSoon, RateLimited);
error_set!(VerifyResetErrors[JSON_BODY]: InvalidOtp, OtpLocked, RateLimited);
error_set!(ResetErrors[JSON_BODY]: InvalidOtp, OtpLocked, Overloaded, RateLimited);

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
        send_reset_code(&state, &body.0).await
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
        send_reset_code(&state, &body.0).await
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
        state.password_reset.verify_code(&body.0, client.0).await?;
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
        state.password_reset.reset(body.0, client.0).await?;
        Ok(ResetResponse::Ok(Json(ResetDone {
            message: "Your password was changed. Sign in with the new one.".into(),
            success: true,
        })))
    }
}

async fn send_reset_code(
    state: &AppState,
    request: &EmailRequest,
) -> Result<ForgotResponse, ApiErrors<ForgotErrors>> {
    state.password_reset.send_code(request).await?;
    Ok(ForgotResponse::Ok(Json(Message {
        message: "If an account uses this address, a reset code is on its way.".into(),
    })))
}
