//! Signing in, refreshing, signing out, and the public keys other services verify with.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json, types::Example};
use serde::Deserialize;
use serde_json::Value;

use super::{
    ApiTags,
    error::{ApiError, ApiErrors, error_set},
    json::JsonBody,
};
use crate::{
    app::AppState,
    domain::{Account, ClientInfo, TokenPair},
    flows::sign_in::LoginRequest,
    telemetry::metrics,
};

#[derive(Default)]
pub struct TokensApi;

#[derive(Debug, Object)]
pub struct LoggedIn {
    pub message: String,
    pub user: Account,
    #[oai(flatten)]
    pub tokens: TokenPair,
}

#[derive(ApiResponse)]
pub enum LoginResponse {
    /// Signed in: a new session with its token pair.
    #[oai(status = 200)]
    Ok(Json<LoggedIn>),
}

// No `Debug`: it carries a secret.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct RefreshRequest {
    /// The refresh token of the latest pair.
    pub refresh: String,
}

impl Example for RefreshRequest {
    fn example() -> Self {
        Self {
            refresh: TokenPair::example().refresh,
        }
    }
}

#[derive(ApiResponse)]
pub enum RefreshResponse {
    /// A new pair for the same session; the presented refresh token stops working (apart
    /// from the short reuse interval for concurrent refreshes).
    #[oai(status = 200)]
    Ok(Json<TokenPair>),
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// The session of this refresh token is over (or never existed).
    #[oai(status = 204)]
    LoggedOut,
}

/// A JSON Web Key Set (RFC 7517).
#[derive(Debug, Object)]
pub struct Jwks {
    /// Public keys with `kty`, `kid`, `alg`, `use: "sig"` and their key members.
    pub keys: Vec<Value>,
}

#[derive(ApiResponse)]
pub enum JwksResponse {
    /// Every key whose tokens may still be live. Cache for up to 5 minutes; on a token
    /// with an unknown `kid`, fetch again.
    #[oai(status = 200)]
    Ok(Json<Jwks>, #[oai(header = "Cache-Control")] String),
}

/// OpenID Provider metadata, enough for JWT libraries to discover the keys.
#[derive(Debug, Object)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub claims_supported: Vec<String>,
}

#[derive(ApiResponse)]
pub enum DiscoveryResponse {
    #[oai(status = 200)]
    Ok(Json<Discovery>),
}

error_set!(LoginErrors[JSON_BODY]: InvalidCredentials, MfaRequired, AccountPendingDeletion, EmailNotVerified, AccountDisabled, Overloaded, RateLimited);
error_set!(RefreshErrors[JSON_BODY]: InvalidRefreshToken, RefreshTokenReused, RateLimited);
error_set!(LogoutErrors[JSON_BODY]);
error_set!(PublicErrors: InternalError);

#[OpenApi(tag = "ApiTags::Tokens")]
impl TokensApi {
    /// Sign in with email (or username) and password
    ///
    /// Opens a session and returns its token pair. `login` takes an address or a username;
    /// `email` keeps working. An unknown address or name and a wrong password get the same
    /// 401 `invalid_credentials` in about the same time. The account's state is answered only
    /// after a correct password: 403 `email_not_verified` (with `can_resend_otp: true`), 403
    /// `account_disabled`, or 403 `account_pending_deletion` (with `deletion_scheduled_for`
    /// and `can_restore: true`: `POST /auth/restore` keeps the account).
    ///
    /// **Two-factor accounts sign in in two steps.**
    /// 1. This call, with the right password, answers **403 `mfa_required`** with
    ///    `mfa_token` (single use, valid `expires_in` seconds) and `methods` (the account's
    ///    factors plus `recovery_code`). No token is issued yet.
    /// 2. For `email`, `POST /auth/mfa/challenge {"mfa_token", "method": "email"}` mails a
    ///    code (an authenticator app or a recovery code needs no such call).
    /// 3. `POST /auth/mfa/verify {"mfa_token", "method", "code"}` answers like this
    ///    operation's 200. Add `"remember_device": true` to get a `device_token`; send it as
    ///    `device_token` with later logins on the same device and step 1 signs in at once.
    #[oai(path = "/auth/login", method = "post")]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<LoginRequest>,
    ) -> Result<LoginResponse, ApiErrors<LoginErrors>> {
        let outcome = state
            .sign_in
            .login(body.0, client.0)
            .await
            .map_err(ApiError::from);
        let label = outcome
            .as_ref()
            .map_or_else(|err| err.code.as_str(), |_| "success");
        ::metrics::counter!(metrics::LOGINS, "outcome" => label).increment(1);
        let signed_in = outcome?;
        Ok(LoginResponse::Ok(Json(LoggedIn {
            message: "Signed in.".into(),
            user: signed_in.account,
            tokens: signed_in.tokens,
        })))
    }

    /// Exchange a refresh token for a new pair
    ///
    /// Rotates the refresh token: the presented one stops working and a new one is returned
    /// with a fresh `AUTHGATE_REFRESH_TTL`, never past the session's absolute limit
    /// (`AUTHGATE_SESSION_MAX_AGE`). Presenting an already-rotated token within
    /// `AUTHGATE_REFRESH_REUSE_INTERVAL` of its rotation (two app threads refreshing at once)
    /// gets a valid pair for the same session; after that it counts as theft: 401
    /// `refresh_token_reused` and the whole session is revoked.
    #[oai(path = "/auth/token/refresh", method = "post")]
    async fn refresh(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<RefreshRequest>,
    ) -> Result<RefreshResponse, ApiErrors<RefreshErrors>> {
        let tokens = state.sessions.refresh(&body.0.refresh, client.0).await?;
        Ok(RefreshResponse::Ok(Json(tokens)))
    }

    /// Sign out of one session
    ///
    /// Revokes the session the refresh token belongs to. Idempotent: an unknown or already
    /// revoked token also gets 204. Access tokens of the session stay valid until they
    /// expire (at most `AUTHGATE_ACCESS_TTL`).
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: JsonBody<RefreshRequest>,
    ) -> Result<LogoutResponse, ApiErrors<LogoutErrors>> {
        state.sessions.logout(&body.0.refresh, client.0).await?;
        Ok(LogoutResponse::LoggedOut)
    }

    /// Public signing keys (JWKS)
    ///
    /// Verify access tokens offline with these keys: pick the key by the token's `kid`,
    /// check `alg`, `typ: at+jwt`, `iss`, `aud` and `exp`.
    #[oai(path = "/.well-known/jwks.json", method = "get", tag = "ApiTags::Keys")]
    async fn jwks(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<JwksResponse, ApiErrors<PublicErrors>> {
        Ok(JwksResponse::Ok(
            Json(Jwks {
                keys: state.keys.jwks(),
            }),
            "public, max-age=300".into(),
        ))
    }

    /// OpenID discovery document
    #[oai(
        path = "/.well-known/openid-configuration",
        method = "get",
        tag = "ApiTags::Keys"
    )]
    async fn openid_configuration(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<DiscoveryResponse, ApiErrors<PublicErrors>> {
        let config = &state.config;
        let base = &config.public_url;
        let strings = |items: &[&str]| items.iter().map(|item| item.to_string()).collect();
        Ok(DiscoveryResponse::Ok(Json(Discovery {
            issuer: base.clone(),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            token_endpoint: format!("{base}/auth/token/refresh"),
            id_token_signing_alg_values_supported: vec![config.jwt_algorithm.as_str().to_string()],
            token_endpoint_auth_methods_supported: strings(&["none"]),
            grant_types_supported: strings(&["password", "refresh_token"]),
            response_types_supported: strings(&["token"]),
            subject_types_supported: strings(&["public"]),
            claims_supported: strings(&[
                "iss",
                "aud",
                "sub",
                "iat",
                "nbf",
                "exp",
                "jti",
                "sid",
                "email",
                "email_verified",
                "role",
            ]),
        })))
    }
}
