//! The audit trail for admins: read it, and revert an edit it recorded.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{ApiErrors, error_set},
};
use crate::{
    app::AppState,
    domain::{Account, AuthError, ClientInfo},
    flows::admin_audit::{AuditPage, AuditQuery},
};

#[derive(Default)]
pub struct AdminAuditApi;

#[derive(ApiResponse)]
pub enum AuditPageResponse {
    /// One page of the matching events, newest first.
    #[oai(status = 200)]
    Ok(Json<AuditPage>),
}

#[derive(ApiResponse)]
pub enum RevertedResponse {
    /// The edit was reverted; the account as it now is.
    #[oai(status = 200)]
    Ok(Json<Account>),
}

error_set!(AuditErrors[BEARER]: ValidationFailed, Forbidden, MfaRequired);
error_set!(RevertErrors[BEARER]: ValidationFailed, NotRevertible, Forbidden, MfaRequired, NotFound, Conflict, EmailTaken, UsernameTaken, LastAdmin);

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminAuditApi {
    /// Read the audit trail
    ///
    /// Every security event and every change to an account, newest first, with who did it
    /// (`actor_id`, for an admin's actions) and, for edits, each changed field's value
    /// before and after (`changes`). Filters combine; pages follow each other with `cursor`.
    /// Each bad value is a 400 `validation_failed` under its parameter's name.
    #[oai(path = "/admin/audit", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// Events of this account (its id).
        user_id: Query<Option<String>>,
        /// Events caused by this admin (their account id).
        actor_id: Query<Option<String>>,
        /// One event name: `login`, `login_failed`, `account_updated`, …
        event: Query<Option<String>>,
        /// Events from this client IP.
        ip: Query<Option<String>>,
        /// RFC 3339 time: events at or after it.
        since: Query<Option<String>>,
        /// RFC 3339 time: events before it.
        until: Query<Option<String>>,
        /// Events per page, 1 to 200; 50 by default.
        limit: Query<Option<String>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<AuditPageResponse, ApiErrors<AuditErrors>> {
        auth.0.admin()?;
        let query = AuditQuery {
            user_id: user_id.0,
            actor_id: actor_id.0,
            event: event.0,
            ip: ip.0,
            since: since.0,
            until: until.0,
            limit: limit.0,
            cursor: cursor.0,
        };
        let page = state.admin_audit.list(&query).await?;
        Ok(AuditPageResponse::Ok(Json(page)))
    }

    /// Revert an audited edit
    ///
    /// Writes the `before` values of the event's `changes` back, as a new audited edit by
    /// you (its `details` name the reverted event). Refused with 409 `conflict`, changing
    /// nothing, when any of those fields changed since the event (each is named in
    /// `fields`); an event without `changes`, or one that changed an uploaded picture (whose
    /// bytes are gone once replaced), is 400 `not_revertible`. The values written back
    /// are checked like any edit (`validation_failed`, `email_taken`, `last_admin`, …).
    #[oai(path = "/admin/audit/:id/revert", method = "post")]
    async fn revert(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The event's id.
        id: Path<String>,
    ) -> Result<RevertedResponse, ApiErrors<RevertErrors>> {
        let admin = auth.0.admin()?;
        let event_id = Uuid::parse_str(&id.0).map_err(|_| AuthError::NotFound)?;
        let account = state
            .admin_users
            .revert(admin.id, event_id, client.0)
            .await?;
        Ok(RevertedResponse::Ok(Json(account)))
    }
}
