//! Administration of an account's life (§10): disable, enable, sign out everywhere, delete,
//! anonymize. Every operation needs an admin's bearer token (403 `forbidden` for any other
//! role) and is recorded in the audit trail with the admin as `actor_id`.

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
    json::OptionalJsonBody,
};
use crate::{
    app::AppState,
    domain::{Account, AuthError, ClientInfo},
    flows::admin_lifecycle::{AdminDeletion, DisableRequest, Operator},
};

#[derive(Default)]
pub struct AdminLifecycleApi;

#[derive(ApiResponse)]
pub enum UserResponse {
    /// The account as it now is.
    #[oai(status = 200)]
    Ok(Json<Account>),
}

#[derive(ApiResponse)]
pub enum SignedOutResponse {
    /// Every session is revoked; access tokens already issued live out their short lifetime.
    #[oai(status = 204)]
    SignedOut,
}

#[derive(ApiResponse)]
pub enum DeleteUserResponse {
    /// Scheduled (`?grace=true`): the account, now with `deletion_scheduled_for`.
    #[oai(status = 202)]
    Scheduled(Json<Box<Account>>),
    /// Purged: the account is gone, its address and username free again.
    #[oai(status = 204)]
    Purged,
}

error_set!(DisableErrors[JSON_BODY, BEARER]: Forbidden, NotFound, LastAdmin, CannotTargetSelf);
error_set!(TargetErrors[BEARER]: Forbidden, NotFound);
error_set!(DeleteUserErrors[BEARER]: ValidationFailed, Forbidden, NotFound, LastAdmin, CannotTargetSelf);
error_set!(AnonymizeErrors[BEARER]: Forbidden, NotFound, LastAdmin, CannotTargetSelf);

/// A user id from a path; anything that is not a UUID names no account.
fn user_id(raw: &str) -> Result<Uuid, AuthError> {
    Uuid::parse_str(raw).map_err(|_| AuthError::NotFound)
}

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
                user_id(&id.0)?,
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
            .enable(Operator::Admin(admin), user_id(&id.0)?, client.0)
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
            .sign_out_everywhere(admin, user_id(&id.0)?, client.0)
            .await?;
        Ok(SignedOutResponse::SignedOut)
    }

    /// Delete an account
    ///
    /// Purges the account at once (204): profile, picture, sessions, codes and mail go, the
    /// address and username are free again, and its audit events lose the address, IP and
    /// user agent. With `?grace=true` the deletion is scheduled instead (202), as if its
    /// owner had asked: signed out, mailed, and restorable with `POST /auth/restore` until
    /// the grace (`AUTHGATE_DELETION_GRACE`) ends; a disabled account stays disabled while
    /// it waits. With no grace configured it is purged at once either way. Admins do not
    /// delete themselves here (409 `cannot_target_self`; `POST /auth/me/delete`), nor the
    /// last active admin (409 `last_admin`).
    #[oai(path = "/admin/users/:id", method = "delete")]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
        /// Schedule the deletion with the grace instead of purging at once.
        grace: Query<Option<bool>>,
    ) -> Result<DeleteUserResponse, ApiErrors<DeleteUserErrors>> {
        let admin = auth.0.admin()?;
        let deletion = state
            .admin_lifecycle
            .delete(admin, user_id(&id.0)?, grace.0.unwrap_or(false), client.0)
            .await?;
        Ok(match deletion {
            AdminDeletion::Purged => DeleteUserResponse::Purged,
            AdminDeletion::Scheduled(account) => DeleteUserResponse::Scheduled(Json(account)),
        })
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
            .anonymize(admin, user_id(&id.0)?, client.0)
            .await?;
        Ok(UserResponse::Ok(Json(account)))
    }
}
