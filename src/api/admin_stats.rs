//! The numbers on an admin console's front page.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{ApiErrors, error_set},
};
use crate::{app::AppState, flows::admin_stats::Stats};

#[derive(Default)]
pub struct AdminStatsApi;

#[derive(ApiResponse)]
pub enum StatsResponse {
    /// The figures as of now.
    #[oai(status = 200)]
    Ok(Json<Stats>),
}

error_set!(StatsErrors[BEARER]: Forbidden, MfaRequired);

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminStatsApi {
    /// Account and sign-in figures
    ///
    /// Accounts by state and role, sign-ups on each of the last 30 days (UTC, every day
    /// present), sign-ins of the last 24 hours, sessions that can still be refreshed, and
    /// accounts seen (a sign-in or refresh) in the last 5 minutes.
    #[oai(path = "/admin/stats", method = "get")]
    async fn stats(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
    ) -> Result<StatsResponse, ApiErrors<StatsErrors>> {
        auth.0.admin()?;
        Ok(StatsResponse::Ok(Json(state.admin_stats.compute().await?)))
    }
}
