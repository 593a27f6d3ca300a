//! The signed-in account's own data: all of it to download, and its security events.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, param::Query, payload::Json};

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{ApiErrors, error_set},
};
use crate::{
    app::AppState,
    flows::my_data::{DataExport, SecurityEvent},
};

#[derive(Default)]
pub struct MyDataApi;

#[derive(ApiResponse)]
pub enum ExportResponse {
    /// Everything the service holds about the account, as a file to save.
    #[oai(status = 200)]
    Ok(
        Json<DataExport>,
        /// `attachment; filename="authgate-export-<user id>.json"`.
        #[oai(header = "Content-Disposition")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum EventsResponse {
    /// The account's security events, newest first.
    #[oai(status = 200)]
    Ok(Json<Vec<SecurityEvent>>),
}

error_set!(ExportErrors[BEARER]);
error_set!(EventsErrors[BEARER]: ValidationFailed);

#[OpenApi(tag = "ApiTags::Account")]
impl MyDataApi {
    /// Download your data
    ///
    /// One JSON document, sent as an attachment: the user object (with profile, `metadata`
    /// and `app_metadata`), the live sessions, the trusted devices and every security event
    /// of the account, newest first. Never a password hash, code, token or key.
    #[oai(path = "/auth/me/export", method = "get")]
    async fn export(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
    ) -> Result<ExportResponse, ApiErrors<ExportErrors>> {
        let caller = auth.0;
        let disposition = format!(
            "attachment; filename=\"authgate-export-{}.json\"",
            caller.account.id
        );
        let export = state
            .my_data
            .export(caller.account, caller.claims.sid)
            .await?;
        Ok(ExportResponse::Ok(Json(export), disposition))
    }

    /// Your security events
    ///
    /// Sign-ins and failed attempts, lockouts, password and address changes, sessions ended,
    /// edits: the account's own audit trail, newest first, to spot what was not you.
    #[oai(path = "/auth/me/events", method = "get")]
    async fn events(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// How many events, from 1 to 100 (default 20); anything else is 400
        /// `validation_failed` under `fields.limit`.
        limit: Query<Option<u32>>,
    ) -> Result<EventsResponse, ApiErrors<EventsErrors>> {
        let events = state.my_data.events(auth.0.account.id, limit.0).await?;
        Ok(EventsResponse::Ok(Json(events)))
    }
}
