//! The admin directory: find, create, read and edit accounts, lift a login lockout, mail a
//! reset code, and see or end an account's sessions. Every operation needs a bearer token of
//! an account holding `admin` (else 403 `forbidden`), from a sign-in with a second factor
//! when `AUTHGATE_MFA_REQUIRED_ROLES` names `admin` (else 403 `mfa_required`).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{ApiErrors, error_set},
    json::JsonBody,
    sessions::EndedResponse,
};
use crate::{
    app::AppState,
    domain::{Account, AuthError, ClientInfo, sessions::SessionView},
    flows::{
        admin_lifecycle::AdminDeletion,
        admin_users::{
            AdminUpdateRequest, AdminUserView, CreateUserRequest, UserListQuery, UserPage,
        },
    },
};

#[derive(Default)]
pub struct AdminUsersApi;

#[derive(ApiResponse)]
pub enum UserPageResponse {
    /// One page of the matching accounts.
    #[oai(status = 200)]
    Ok(Json<UserPage>),
}

#[derive(ApiResponse)]
pub enum CreatedResponse {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<Account>),
}

#[derive(ApiResponse)]
pub enum AdminUserResponse {
    /// The account, with its sessions and login lockout.
    #[oai(status = 200)]
    Ok(Json<AdminUserView>),
}

#[derive(ApiResponse)]
pub enum UserResponse {
    /// The account as it now is.
    #[oai(status = 200)]
    Ok(Json<Account>),
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

#[derive(ApiResponse)]
pub enum UnlockedResponse {
    /// The lockout is lifted: the account's failed logins are forgotten.
    #[oai(status = 204)]
    Unlocked,
}

/// A reset code on its way.
#[derive(Debug, Object)]
pub struct ResetMailed {
    pub message: String,
    /// Seconds the code is valid.
    pub otp_expires_in: u64,
}

#[derive(ApiResponse)]
pub enum ResetMailedResponse {
    /// A reset code is on its way to the account's address.
    #[oai(status = 202)]
    Accepted(Json<ResetMailed>),
}

#[derive(ApiResponse)]
pub enum UserSessionsResponse {
    /// The account's sessions that can still be refreshed, most recently used first.
    #[oai(status = 200)]
    Ok(Json<Vec<SessionView>>),
}

error_set!(ListUsersErrors[BEARER]: ValidationFailed, Forbidden, MfaRequired);
error_set!(CreateUserErrors[JSON_BODY, BEARER]: Forbidden, MfaRequired, EmailTaken, UsernameTaken, RateLimited, Overloaded);
error_set!(UserErrors[BEARER]: Forbidden, MfaRequired, NotFound);
error_set!(UpdateUserErrors[JSON_BODY, BEARER]: Forbidden, MfaRequired, NotFound, EmailTaken, UsernameTaken, LastAdmin);
error_set!(DeleteUserErrors[BEARER]: ValidationFailed, Forbidden, MfaRequired, NotFound, LastAdmin, CannotTargetSelf);
error_set!(ResetErrors[BEARER]: Forbidden, MfaRequired, NotFound, AccountDisabled, AccountPendingDeletion, RateLimited);

/// A path id: anything that is not a UUID names no account.
pub(super) fn id(raw: &str) -> Result<Uuid, AuthError> {
    Uuid::parse_str(raw).map_err(|_| AuthError::NotFound)
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminUsersApi {
    /// Find accounts
    ///
    /// Filters combine (all must hold); `total` counts every match. Pages follow each other
    /// with `cursor` (keyset pagination: accounts created or deleted meanwhile neither repeat
    /// nor push others out). Each bad value is a 400 `validation_failed` under its parameter's
    /// name, a cursor that was edited or made for another `sort` included.
    #[oai(path = "/admin/users", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list_users(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// Text the address, username, first or last name contains, without regard to case.
        q: Query<Option<String>>,
        /// One of `AUTHGATE_ROLES`.
        role: Query<Option<String>>,
        /// `active`, `disabled` or `pending_deletion`.
        status: Query<Option<String>>,
        /// `true` or `false`: whether the address is verified.
        verified: Query<Option<String>>,
        /// `true` or `false`: whether the account has a second factor.
        mfa: Query<Option<String>>,
        /// RFC 3339 time: accounts created at or after it.
        created_after: Query<Option<String>>,
        /// RFC 3339 time: accounts created before it.
        created_before: Query<Option<String>>,
        /// `-created_at` (newest first, the default), `created_at`, `email`, or
        /// `-last_login_at` (most recent sign-in first; never signed in last).
        sort: Query<Option<String>>,
        /// Accounts per page, 1 to 200; 50 by default.
        limit: Query<Option<String>>,
        /// The `next_cursor` of the previous page, with the same `sort`.
        cursor: Query<Option<String>>,
    ) -> Result<UserPageResponse, ApiErrors<ListUsersErrors>> {
        auth.0.admin()?;
        let query = UserListQuery {
            q: q.0,
            role: role.0,
            status: status.0,
            verified: verified.0,
            mfa: mfa.0,
            created_after: created_after.0,
            created_before: created_before.0,
            sort: sort.0,
            limit: limit.0,
            cursor: cursor.0,
        };
        let page = state.admin_users.list(&query).await?;
        Ok(UserPageResponse::Ok(Json(page)))
    }

    /// Create an account
    ///
    /// With `password` (the policy of registration applies) the account is verified and can
    /// sign in at once. Without, it waits for its owner: an invitation mail carries a reset
    /// code, and `POST /auth/reset-password` with it sets the password and verifies the
    /// address. The code lives `AUTHGATE_OTP_TTL`; after that, `POST /auth/forgot-password`
    /// mails a new one. Unknown fields are refused by name. An address any account holds,
    /// verified or not, is 409 `email_taken`.
    #[oai(path = "/admin/users", method = "post")]
    async fn create_user(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        body: JsonBody<CreateUserRequest>,
    ) -> Result<CreatedResponse, ApiErrors<CreateUserErrors>> {
        let admin = auth.0.admin()?;
        let account = state
            .admin_users
            .create(Some(admin.id), body.0, client.0)
            .await?;
        Ok(CreatedResponse::Created(Json(account)))
    }

    /// One account, with its sessions and login lockout
    ///
    /// `sessions` counts the sessions that can still be refreshed; `locked_until` says when
    /// the login lockout (`AUTHGATE_LIMIT_LOGIN_ACCOUNT`) ends, `failed_logins` how many
    /// failures its current window counted.
    #[oai(path = "/admin/users/:id", method = "get")]
    async fn get_user(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
    ) -> Result<AdminUserResponse, ApiErrors<UserErrors>> {
        auth.0.admin()?;
        let user = state.admin_users.detail(self::id(&id.0)?).await?;
        Ok(AdminUserResponse::Ok(Json(user)))
    }

    /// Edit an account
    ///
    /// A partial update, audited with each changed field's value before and after (see
    /// `POST /admin/audit/{id}/revert`). `metadata` and `app_metadata` merge key by key (a
    /// key sent as `null` is removed); `metadata` must satisfy the profile schema. A new
    /// `role` takes effect at the account's next token refresh; losing `admin` ends every
    /// session of the account, and is 409 `last_admin` when no other active admin would be
    /// left. A new `email` gets a notice at the old address.
    #[oai(path = "/admin/users/:id", method = "patch")]
    async fn update_user(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
        body: JsonBody<AdminUpdateRequest>,
    ) -> Result<UserResponse, ApiErrors<UpdateUserErrors>> {
        let admin = auth.0.admin()?;
        let account = state
            .admin_users
            .update(Some(admin.id), self::id(&id.0)?, body.0, client.0)
            .await?;
        Ok(UserResponse::Ok(Json(account)))
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
            .delete(admin, self::id(&id.0)?, grace.0.unwrap_or(false), client.0)
            .await?;
        Ok(match deletion {
            AdminDeletion::Purged => DeleteUserResponse::Purged,
            AdminDeletion::Scheduled(account) => DeleteUserResponse::Scheduled(Json(account)),
        })
    }

    /// Lift an account's login lockout
    ///
    /// The failed logins counted against the account (`AUTHGATE_LIMIT_LOGIN_ACCOUNT`) are
    /// forgotten, so the right password works again at once. Audited as `login_unlocked`.
    #[oai(path = "/admin/users/:id/unlock", method = "post")]
    async fn unlock_user(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
    ) -> Result<UnlockedResponse, ApiErrors<UserErrors>> {
        let admin = auth.0.admin()?;
        state
            .admin_users
            .unlock(admin.id, self::id(&id.0)?, client.0)
            .await?;
        Ok(UnlockedResponse::Unlocked)
    }

    /// Reset an account's second factors
    ///
    /// For an owner who lost both their authenticator and their recovery codes: every second
    /// factor, recovery code and trusted device of the account is removed, pending two-factor
    /// sign-ins end, and a mail tells the owner. The next sign-in needs the password alone,
    /// after which the owner can set two-factor sign-in up again. Audited as `mfa_reset`.
    #[oai(path = "/admin/users/:id/mfa/reset", method = "post")]
    async fn reset_second_factors(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
    ) -> Result<UserResponse, ApiErrors<UserErrors>> {
        let admin = auth.0.admin()?;
        let account = state
            .admin_users
            .reset_second_factors(admin.id, self::id(&id.0)?, client.0)
            .await?;
        Ok(UserResponse::Ok(Json(account)))
    }

    /// Mail an account a password reset code
    ///
    /// The owner finishes with `POST /auth/reset-password`. The per-address resend cooldown
    /// does not apply to admins (they may be helping the owner right after the owner's own
    /// try); the hourly per-address mail limit does (429 `rate_limited`). A disabled account,
    /// or one pending deletion, gets its 403 instead: its reset could not finish. Audited
    /// as `password_reset_requested`.
    #[oai(path = "/admin/users/:id/password-reset", method = "post")]
    async fn password_reset(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
    ) -> Result<ResetMailedResponse, ApiErrors<ResetErrors>> {
        let admin = auth.0.admin()?;
        let expires_in = state
            .admin_users
            .send_password_reset(admin.id, self::id(&id.0)?, client.0)
            .await?;
        Ok(ResetMailedResponse::Accepted(Json(ResetMailed {
            message: "A password reset code was mailed to the account's address.".into(),
            otp_expires_in: expires_in,
        })))
    }

    /// An account's sessions
    ///
    /// As `GET /auth/sessions` shows them to their owner; `current` is always false.
    #[oai(path = "/admin/users/:id/sessions", method = "get")]
    async fn user_sessions(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
    ) -> Result<UserSessionsResponse, ApiErrors<UserErrors>> {
        auth.0.admin()?;
        let sessions = state.admin_users.sessions(self::id(&id.0)?).await?;
        Ok(UserSessionsResponse::Ok(Json(sessions)))
    }

    /// End one of an account's sessions
    ///
    /// Its refresh token stops working at once. A session of another account, already ended
    /// or unknown is 404. Audited as `session_revocation`.
    #[oai(path = "/admin/users/:id/sessions/:sid", method = "delete")]
    async fn end_user_session(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The account's id.
        id: Path<String>,
        /// The session's id.
        sid: Path<String>,
    ) -> Result<EndedResponse, ApiErrors<UserErrors>> {
        let admin = auth.0.admin()?;
        state
            .admin_users
            .end_session(admin.id, self::id(&id.0)?, self::id(&sid.0)?, client.0)
            .await?;
        Ok(EndedResponse::Ended)
    }
}
