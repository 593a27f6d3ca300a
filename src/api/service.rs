//! Health, readiness and the public settings clients draw their forms from.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json, types::Example};

use super::{
    ApiTags,
    error::{ApiError, ApiErrors, ErrorCode, error_set},
};
use crate::{
    app::AppState,
    config::{MfaMethod, Usernames},
    domain::codes::OTP_LENGTH,
};

#[derive(Default)]
pub struct ServiceApi;

#[derive(Debug, Object)]
pub struct Status {
    /// Always `ok`.
    pub status: String,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The process is up. The database is not touched.
    #[oai(status = 200)]
    Ok(Json<Status>),
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The database answers: send traffic here.
    #[oai(status = 200)]
    Ready(Json<Status>),
}

/// What a client needs to draw its forms and timers.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Settings {
    /// Digits in a one-time code.
    pub otp_length: u32,
    pub otp_ttl_seconds: u64,
    /// Minimum gap between two codes of one kind mailed to one address.
    pub otp_resend_cooldown_seconds: u64,
    pub password_min_length: u32,
    /// Roles a registrant may pick; the first is the default.
    pub self_assignable_roles: Vec<String>,
    /// Email domains that may register (subdomains included); empty means any.
    pub allowed_email_domains: Vec<String>,
    /// Whether accounts have a username: `optional`, `required` or `off`.
    pub usernames: String,
    /// Second factors users may turn on: `totp`, `email`; empty when two-factor is off.
    pub mfa_methods: Vec<String>,
    /// The largest profile picture upload, in bytes.
    pub avatar_max_bytes: u64,
}

impl Example for Settings {
    fn example() -> Self {
        Settings {
            otp_length: 6,
            otp_ttl_seconds: 600,
            otp_resend_cooldown_seconds: 60,
            password_min_length: 8,
            self_assignable_roles: vec!["mentee".into(), "mentor".into()],
            allowed_email_domains: vec!["ucla.edu".into()],
            usernames: "optional".into(),
            mfa_methods: vec!["totp".into(), "email".into()],
            avatar_max_bytes: 5 * 1024 * 1024,
        }
    }
}

#[derive(ApiResponse)]
pub enum SettingsResponse {
    /// The settings of this deployment that shape a client's forms.
    #[oai(status = 200)]
    Ok(Json<Settings>),
}

error_set!(offline ServiceErrors);
error_set!(offline ReadyErrors: NotReady);

#[OpenApi(tag = "ApiTags::Service")]
impl ServiceApi {
    /// Liveness
    ///
    /// 200 while the process runs; touches nothing else.
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Result<HealthResponse, ApiErrors<ServiceErrors>> {
        Ok(HealthResponse::Ok(Json(Status {
            status: "ok".into(),
        })))
    }

    /// Readiness: does the database answer?
    ///
    /// For load balancers: 200 when the database answers within two seconds, else 503
    /// `not_ready`.
    #[oai(path = "/ready", method = "get")]
    async fn ready(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<ReadyResponse, ApiErrors<ReadyErrors>> {
        if state.health.database_answers().await {
            Ok(ReadyResponse::Ready(Json(Status {
                status: "ok".into(),
            })))
        } else {
            Err(ApiError::new(ErrorCode::NotReady).into())
        }
    }

    /// Public settings for client forms
    ///
    /// Code length and lifetimes, password length, roles and domains a registration may
    /// use, usernames and second factors: what a client needs to draw its forms and timers.
    #[oai(path = "/auth/settings", method = "get")]
    async fn settings(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<SettingsResponse, ApiErrors<ServiceErrors>> {
        let config = &state.config;
        Ok(SettingsResponse::Ok(Json(Settings {
            otp_length: OTP_LENGTH as u32,
            otp_ttl_seconds: config.otp_ttl.as_secs(),
            otp_resend_cooldown_seconds: config.otp_resend_cooldown.as_secs(),
            password_min_length: config.password_min_length as u32,
            self_assignable_roles: config.self_assignable_roles.clone(),
            allowed_email_domains: config.allowed_email_domains.clone(),
            usernames: match config.usernames {
                Usernames::Optional => "optional",
                Usernames::Required => "required",
                Usernames::Off => "off",
            }
            .into(),
            mfa_methods: config
                .mfa_methods
                .iter()
                .map(|method| match method {
                    MfaMethod::Totp => "totp".to_string(),
                    MfaMethod::Email => "email".to_string(),
                })
                .collect(),
            avatar_max_bytes: config.avatar_max_bytes as u64,
        })))
    }
}
