//! Two-factor sign-in: the signed-in user's second factors, the second step of a sign-in, and
//! trusted devices.

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    ApiTags,
    auth::{BearerAuth, optional_caller},
    error::{ApiError, ApiErrors, ErrorCode, error_set},
    json::JsonBody,
};
use crate::{
    app::AppState,
    domain::{
        Account, AuthError, ClientInfo, TokenPair,
        second_factors::{Enabled, MfaStatus, TotpEnrolment},
        trusted_devices::DeviceView,
    },
    flows::{
        sign_in::MfaVerifyRequest,
        two_factor::{FactorCode, PasswordAndCode, PasswordConfirmation},
    },
};

#[derive(Default)]
pub struct TwoFactorApi;

#[derive(ApiResponse)]
pub enum StatusResponse {
    /// The account's factors.
    #[oai(status = 200)]
    Ok(Json<MfaStatus>),
}

#[derive(ApiResponse)]
pub enum SetupResponse {
    /// A pending secret: scan `qr_code` (or type `secret`) into an authenticator app, then
    /// send its first code to `/auth/mfa/totp/enable` within `expires_in` seconds.
    #[oai(status = 200)]
    Ok(Json<TotpEnrolment>),
}

#[derive(ApiResponse)]
pub enum EnabledResponse {
    /// The factor is on. `recovery_codes` come only with the first factor: show them once.
    #[oai(status = 200)]
    Ok(Json<Enabled>),
}

/// A code is on its way.
#[derive(Debug, Object)]
pub struct CodeMailed {
    /// Seconds the code is valid.
    pub otp_expires_in: u64,
}

#[derive(ApiResponse)]
pub enum MailedResponse {
    /// A code was mailed to the account's address.
    #[oai(status = 202)]
    Accepted(Json<CodeMailed>),
}

/// The factors still on.
#[derive(Debug, Object)]
pub struct Methods {
    pub methods: Vec<String>,
}

#[derive(ApiResponse)]
pub enum DisabledResponse {
    /// The factor is off. With none left, recovery codes and trusted devices are gone too.
    #[oai(status = 200)]
    Ok(Json<Methods>),
}

/// A new set of recovery codes.
#[derive(Debug, Object)]
pub struct RecoveryCodes {
    /// Ten single-use codes, `xxxxx-xxxxx`; the old set no longer works. Show them once.
    pub recovery_codes: Vec<String>,
}

#[derive(ApiResponse)]
pub enum RecoveryCodesResponse {
    /// The new set; the old codes no longer work.
    #[oai(status = 200)]
    Ok(Json<RecoveryCodes>),
}

/// Which sign-in should get a mailed code.
#[derive(Debug, Default, Object, Deserialize)]
#[serde(default)]
pub struct ChallengeRequest {
    /// The token of a waiting sign-in (from 403 `mfa_required`). Leave it out and send a
    /// bearer token instead to get a code for a change that asks for one (step-up).
    pub mfa_token: Option<String>,
    /// `email`: only codes by mail need sending.
    pub method: Option<String>,
}

/// A completed sign-in.
#[derive(Debug, Object)]
pub struct SecondFactorSignIn {
    pub message: String,
    pub user: Account,
    #[oai(flatten)]
    pub tokens: TokenPair,
    /// With `remember_device`: send it as `device_token` with later sign-ins on this device.
    #[oai(skip_serializing_if_is_none)]
    pub device_token: Option<String>,
}

#[derive(ApiResponse)]
pub enum VerifyResponse {
    /// Signed in (and, for a restore, the account kept).
    #[oai(status = 200)]
    Ok(Json<SecondFactorSignIn>),
}

#[derive(ApiResponse)]
pub enum DevicesResponse {
    /// Trusted devices, most recently used first.
    #[oai(status = 200)]
    Ok(Json<Vec<DeviceView>>),
}

#[derive(ApiResponse)]
pub enum ForgottenResponse {
    /// The device needs the second factor again.
    #[oai(status = 204)]
    Forgotten,
}

error_set!(StatusErrors[BEARER]);
error_set!(SetupErrors[JSON_BODY, BEARER]: InvalidCredentials, AlreadyEnabled, Forbidden, Overloaded, RateLimited);
error_set!(EnableErrors[JSON_BODY, BEARER]: InvalidMfaCode, NoPendingSetup);
error_set!(EmailEnableErrors[JSON_BODY, BEARER]: InvalidCredentials, Forbidden, ResendTooSoon, Overloaded, RateLimited);
error_set!(EmailConfirmErrors[JSON_BODY, BEARER]: InvalidMfaCode);
error_set!(DisableErrors[JSON_BODY, BEARER]: InvalidCredentials, InvalidMfaCode, NotFound, Overloaded, RateLimited);
error_set!(RecoveryErrors[JSON_BODY, BEARER]: InvalidCredentials, InvalidMfaCode, Overloaded, RateLimited);
error_set!(ChallengeErrors[JSON_BODY]: Unauthorized, InvalidMfaToken, ResendTooSoon, RateLimited);
error_set!(VerifyErrors[JSON_BODY]: InvalidMfaToken, InvalidMfaCode, AccountDisabled, AccountPendingDeletion, EmailNotVerified, RateLimited);
error_set!(DevicesErrors[BEARER]);
error_set!(ForgetErrors[BEARER]: NotFound);

#[OpenApi(tag = "ApiTags::TwoFactor")]
impl TwoFactorApi {
    /// Your second factors
    #[oai(path = "/auth/mfa", method = "get")]
    async fn status(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
    ) -> Result<StatusResponse, ApiErrors<StatusErrors>> {
        Ok(StatusResponse::Ok(Json(
            state.two_factor.status(&auth.0.account).await?,
        )))
    }

    /// Start setting up an authenticator app
    ///
    /// Needs the password. Returns a pending secret with its `otpauth://` URI and a QR code;
    /// it is on only after `/auth/mfa/totp/enable` with a first code. 409 `already_enabled`
    /// when an app is on already (turn it off first to move to another phone).
    #[oai(path = "/auth/mfa/totp/setup", method = "post")]
    async fn totp_setup(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: JsonBody<PasswordConfirmation>,
    ) -> Result<SetupResponse, ApiErrors<SetupErrors>> {
        let enrolment = state
            .two_factor
            .start_totp(&auth.0.account, &body.0)
            .await?;
        Ok(SetupResponse::Ok(Json(enrolment)))
    }

    /// Turn the authenticator app on
    ///
    /// With the app's current code (one step either side is accepted). The first factor
    /// turned on also returns ten recovery codes.
    #[oai(path = "/auth/mfa/totp/enable", method = "post")]
    async fn totp_enable(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        body: JsonBody<FactorCode>,
    ) -> Result<EnabledResponse, ApiErrors<EnableErrors>> {
        let enabled = state
            .two_factor
            .confirm_totp(&auth.0.account, &body.0, client.0)
            .await?;
        Ok(EnabledResponse::Ok(Json(enabled)))
    }

    /// Start getting sign-in codes by mail
    ///
    /// Needs the password; a code is mailed to the account's address, and
    /// `/auth/mfa/email/confirm` with it turns the factor on.
    #[oai(path = "/auth/mfa/email/enable", method = "post")]
    async fn email_enable(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: JsonBody<PasswordConfirmation>,
    ) -> Result<MailedResponse, ApiErrors<EmailEnableErrors>> {
        let otp_expires_in = state
            .two_factor
            .start_email(&auth.0.account, &body.0)
            .await?;
        Ok(MailedResponse::Accepted(Json(CodeMailed {
            otp_expires_in,
        })))
    }

    /// Turn sign-in codes by mail on
    #[oai(path = "/auth/mfa/email/confirm", method = "post")]
    async fn email_confirm(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        body: JsonBody<FactorCode>,
    ) -> Result<EnabledResponse, ApiErrors<EmailConfirmErrors>> {
        let enabled = state
            .two_factor
            .confirm_email(&auth.0.account, &body.0, client.0)
            .await?;
        Ok(EnabledResponse::Ok(Json(enabled)))
    }

    /// Turn a second factor off
    ///
    /// `method` is `totp` or `email`. Needs the password and a code of any factor. With no
    /// factor left, the recovery codes and every trusted device go too.
    #[oai(path = "/auth/mfa/:method", method = "delete")]
    async fn disable(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// `totp` or `email`.
        method: Path<String>,
        body: JsonBody<PasswordAndCode>,
    ) -> Result<DisabledResponse, ApiErrors<DisableErrors>> {
        let methods = state
            .two_factor
            .disable(&auth.0.account, &method.0, &body.0, client.0)
            .await?;
        Ok(DisabledResponse::Ok(Json(Methods { methods })))
    }

    /// New recovery codes
    ///
    /// Needs the password and a code of any factor; the old set stops working.
    #[oai(path = "/auth/mfa/recovery-codes", method = "post")]
    async fn recovery_codes(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        body: JsonBody<PasswordAndCode>,
    ) -> Result<RecoveryCodesResponse, ApiErrors<RecoveryErrors>> {
        let recovery_codes = state
            .two_factor
            .new_recovery_codes(&auth.0.account, &body.0, client.0)
            .await?;
        Ok(RecoveryCodesResponse::Ok(Json(RecoveryCodes {
            recovery_codes,
        })))
    }

    /// Mail a sign-in code
    ///
    /// For a waiting sign-in: `{"mfa_token": "…", "method": "email"}`. For a change that asks
    /// for a second factor (deleting the account, changing the address or the password):
    /// no `mfa_token`, and the bearer token in `Authorization`. The per-address cooldown of
    /// mailed codes applies (429 `resend_too_soon`).
    #[oai(path = "/auth/mfa/challenge", method = "post")]
    async fn challenge(
        &self,
        state: Data<&Arc<AppState>>,
        request: &Request,
        body: JsonBody<ChallengeRequest>,
    ) -> Result<MailedResponse, ApiErrors<ChallengeErrors>> {
        let body = body.0;
        if body
            .method
            .as_deref()
            .is_some_and(|method| method != "email")
        {
            return Err(ApiError::validation("method", "Only `email` codes are mailed.").into());
        }
        let otp_expires_in = match (
            body.mfa_token.filter(|token| !token.is_empty()),
            optional_caller(request).await?,
        ) {
            (Some(token), _) => state.sign_in.mail_second_factor(&token).await?,
            (None, Some(caller)) => state.two_factor.mail_step_up_code(&caller.account).await?,
            (None, None) => return Err(ApiError::new(ErrorCode::InvalidMfaToken).into()),
        };
        Ok(MailedResponse::Accepted(Json(CodeMailed {
            otp_expires_in,
        })))
    }

    /// Finish signing in with a second factor
    ///
    /// The second step of a sign-in that answered 403 `mfa_required` (see `/auth/login`):
    /// send its `mfa_token`, the `method` and the `code`. A TOTP code comes from the app; an
    /// `email` code is mailed by `/auth/mfa/challenge` first; a `recovery_code` is one of
    /// the ten codes shown when two-factor was turned on (each works once). Five wrong codes
    /// burn the `mfa_token` (401 `invalid_mfa_token`: sign in again), and wrong codes count
    /// against the account's login allowance like wrong passwords. With `remember_device`
    /// the answer carries a `device_token`: sent with later sign-ins on this device, it skips
    /// the second factor. A sign-in started by `/auth/restore` also keeps the account.
    #[oai(path = "/auth/mfa/verify", method = "post")]
    async fn verify(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<MfaVerifyRequest>,
    ) -> Result<VerifyResponse, ApiErrors<VerifyErrors>> {
        let verified = state.sign_in.verify_second_factor(body.0, client.0).await?;
        Ok(VerifyResponse::Ok(Json(SecondFactorSignIn {
            message: "Signed in.".into(),
            user: verified.signed_in.account,
            tokens: verified.signed_in.tokens,
            device_token: verified.device_token,
        })))
    }

    /// Your trusted devices
    #[oai(path = "/auth/devices", method = "get")]
    async fn devices(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
    ) -> Result<DevicesResponse, ApiErrors<DevicesErrors>> {
        let current = state.sessions.trusted_device_of(auth.0.claims.sid).await?;
        let devices = state.two_factor.devices(&auth.0.account, current).await?;
        Ok(DevicesResponse::Ok(Json(devices)))
    }

    /// Forget one trusted device
    #[oai(path = "/auth/devices/:id", method = "delete")]
    async fn forget_device(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The device id from `GET /auth/devices`.
        id: Path<String>,
    ) -> Result<ForgottenResponse, ApiErrors<ForgetErrors>> {
        let device_id = Uuid::parse_str(&id.0).map_err(|_| AuthError::NotFound)?;
        state
            .two_factor
            .forget_device(&auth.0.account, device_id, client.0)
            .await?;
        Ok(ForgottenResponse::Forgotten)
    }

    /// Forget every trusted device
    #[oai(path = "/auth/devices", method = "delete")]
    async fn forget_all_devices(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
    ) -> Result<ForgottenResponse, ApiErrors<DevicesErrors>> {
        state
            .two_factor
            .forget_all_devices(&auth.0.account, client.0)
            .await?;
        Ok(ForgottenResponse::Forgotten)
    }
}
