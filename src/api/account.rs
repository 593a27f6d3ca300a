//! The account over its life: usernames, and getting an account back from pending deletion.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, param::Query, payload::Json};

use super::{
    ApiTags,
    error::{ApiErrors, error_set},
    json::JsonBody,
    tokens::LoggedIn,
};
use crate::{
    app::AppState,
    domain::ClientInfo,
    flows::{sign_in::LoginRequest, usernames::UsernameAvailability},
};

#[derive(Default)]
pub struct AccountApi;

#[derive(ApiResponse)]
pub enum AvailabilityResponse {
    /// Whether the name can be taken now (someone may take it before you do).
    #[oai(status = 200)]
    Ok(Json<UsernameAvailability>),
}

#[derive(ApiResponse)]
pub enum RestoreResponse {
    /// The deletion is cancelled and the user signed in; a mail confirms it.
    #[oai(status = 200)]
    Ok(Json<LoggedIn>),
}

error_set!(AvailabilityErrors: RateLimited);
error_set!(RestoreErrors[JSON_BODY]: InvalidCredentials, MfaRequired, NotPendingDeletion, Overloaded, RateLimited);

#[OpenApi(tag = "ApiTags::Account")]
impl AccountApi {
    /// Is this username free?
    ///
    /// For forms that check while the person types. `reason` says why not: `taken`,
    /// `reserved` (names like `admin` or `support`) or `invalid` (3–30 letters, digits, `_`,
    /// `.` or `-`, starting with a letter or digit). Limited per client IP
    /// (`AUTHGATE_LIMIT_LOOKUP_IP`), so it cannot list who is registered.
    #[oai(path = "/auth/username-available", method = "get")]
    async fn username_available(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        /// The name to check.
        username: Query<String>,
    ) -> Result<AvailabilityResponse, ApiErrors<AvailabilityErrors>> {
        let answer = state.username_lookup.check(&username.0, client.0).await?;
        Ok(AvailabilityResponse::Ok(Json(answer)))
    }

    /// Keep an account that is pending deletion
    ///
    /// Signs in with `login` (address or username) and password like `/auth/login`, cancels
    /// the deletion and mails a confirmation. A wrong password is 401 `invalid_credentials`
    /// like any other; 409 `not_pending_deletion` comes only after a correct password. An
    /// account with a second factor answers 403 `mfa_required` with an `mfa_token`, exactly as
    /// `/auth/login` does; `/auth/mfa/verify` then restores and signs in: restoring never
    /// skips the second factor.
    #[oai(path = "/auth/restore", method = "post")]
    async fn restore(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<LoginRequest>,
    ) -> Result<RestoreResponse, ApiErrors<RestoreErrors>> {
        let signed_in = state.sign_in.restore(body.0, client.0).await?;
        Ok(RestoreResponse::Ok(Json(LoggedIn {
            message: "Your account was restored. You are signed in.".into(),
            user: signed_in.account,
            tokens: signed_in.tokens,
        })))
    }
}
