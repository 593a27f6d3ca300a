//! Health, readiness and the public settings clients draw their forms from.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    error::{ApiErrors, error_set},
};
use crate::{app::AppState, domain::codes::OTP_LENGTH};

#[derive(Default)]
pub struct ServiceApi;

#[derive(Debug, Object)]
pub struct Status {
    /// Always `ok`.
    pub status: String,
}

#[derive(Debug, Object)]
pub struct NotReady {
    /// Always `not_ready`.
    pub error: String,
    pub message: String,
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
    /// `not_ready`: the database does not answer.
    #[oai(status = 503)]
    NotReady(Json<NotReady>),
}

/// What a client needs to draw its forms and timers.
#[derive(Debug, Object)]
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
}

#[derive(ApiResponse)]
pub enum SettingsResponse {
    #[oai(status = 200)]
    Ok(Json<Settings>),
}

error_set!(ServiceErrors: InternalError);

#[OpenApi(tag = "ApiTags::Service")]
impl ServiceApi {
    /// Liveness
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Result<HealthResponse, ApiErrors<ServiceErrors>> {
        Ok(HealthResponse::Ok(Json(Status {
            status: "ok".into(),
        })))
    }

    /// Readiness: does the database answer?
    #[oai(path = "/ready", method = "get")]
    async fn ready(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<ReadyResponse, ApiErrors<ServiceErrors>> {
        if state.health.database_answers().await {
            Ok(ReadyResponse::Ready(Json(Status {
                status: "ok".into(),
            })))
        } else {
            Ok(ReadyResponse::NotReady(Json(NotReady {
                error: "not_ready".into(),
                message: "The database does not answer.".into(),
            })))
        }
    }

    /// Public settings for client forms
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
        })))
    }
}
