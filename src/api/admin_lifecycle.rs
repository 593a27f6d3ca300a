//! Administration of an account's life (§10): disable, enable, sign out everywhere, delete,
//! anonymize. Every operation needs an admin's bearer token (403 `forbidden` for any other
//! role) and is recorded in the audit trail with the admin as `actor_id`.

use std::sync::Arc;

use super::{
    ApiTags,
    admin_users::{self, UserResponse},
    auth::BearerAuth,
    error::{ApiErrors, error_set},
    json::OptionalJsonBody,
};
use crate::{
    app::AppState,
    domain::ClientInfo,
    flows::admin_lifecycle::{DisableRequest, Operator},
};
use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, param::Path, payload::Json};

#[derive(Default)]
pub struct AdminLifecycleApi;

#[derive(ApiResponse)]
pub enum SignedOutResponse {
    /// Every session is revoked; access tokens already issued live out their short lifetime.
    #[oai(status = 204)]
    SignedOut,
}

error_set!(DisableErrors[JSON_BODY, BEARER]: Forbidden, MfaRequired, NotFound, LastAdmin, CannotTargetSelf);
error_set!(TargetErrors[BEARER]: Forbidden, MfaRequired, NotFound);
error_set!(AnonymizeErrors[BEARER]: Forbidden, MfaRequired, NotFound, LastAdmin, CannotTargetSelf);

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminLifecycleApi {
    /// Disable an account
    ///
    /// The account can no longer sign in (403 `account_disabled`), every session is revoked
    /// and its access tokens are refused at once. `reason` (optional, at most 500
    /// characters; the body may be left out) goes to the audit trail only. A deletion its
    /// owner asked for still happens. Disabling a disabled account changes nothing. Admins do
    /// not disable themselves (409 `cannot_target_self`), nor the last active admin (409
    /// `last_admin`).
    #[oai(path = "/admin/users/:id/disable", method = "post")]
    async fn disable(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
        body: OptionalJsonBody<DisableRequest>,
    ) -> Result<UserResponse, ApiErrors<DisableErrors>> {
        let admin = auth.0.admin()?;
        let account = state
            .admin_lifecycle
            .disable(
                Operator::Admin(admin),
                admin_users::id(&id.0)?,
                body.0.unwrap_or_default(),
                client.0,
            )
            .await?;
        Ok(UserResponse::Ok(Json(account)))
    }

    /// Enable an account
    ///
    /// Lifts a disable: the account is active again (or, if its owner had asked for its
    /// deletion, pending deletion again). Any other account is answered as it is.
    #[oai(path = "/admin/users/:id/enable", method = "post")]
    async fn enable(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
    ) -> Result<UserResponse, ApiErrors<TargetErrors>> {
        let admin = auth.0.admin()?;
        let account = state
            .admin_lifecycle
            .enable(Operator::Admin(admin), admin_users::id(&id.0)?, client.0)
            .await?;
        Ok(UserResponse::Ok(Json(account)))
    }

    /// Sign an account out everywhere
    ///
    /// Revokes every session of the account: its refresh tokens stop working at once.
    #[oai(path = "/admin/users/:id/logout", method = "post")]
    async fn logout(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
    ) -> Result<SignedOutResponse, ApiErrors<TargetErrors>> {
        let admin = auth.0.admin()?;
        state
            .admin_lifecycle
            .sign_out_everywhere(admin, admin_users::id(&id.0)?, client.0)
            .await?;
        Ok(SignedOutResponse::SignedOut)
    }

    /// Anonymize an account
    ///
    /// Keeps the account's id (other services may hold it) and removes the person: the
    /// address becomes `deleted-<id>@anonymized.invalid`; names, phone, username, metadata,
    /// profile and picture are cleared; the password stops working; the account is disabled
    /// and its sessions removed; its audit events are scrubbed as in a purge. `app_metadata`
    /// stays. Admins do not anonymize themselves (409 `cannot_target_self`), nor the last
    /// active admin (409 `last_admin`).
    #[oai(path = "/admin/users/:id/anonymize", method = "post")]
    async fn anonymize(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
    ) -> Result<UserResponse, ApiErrors<AnonymizeErrors>> {
        let admin = auth.0.admin()?;
        let account = state
            .admin_lifecycle
            .anonymize(admin, admin_users::id(&id.0)?, client.0)
            .await?;
        Ok(UserResponse::Ok(Json(account)))
    }
}
