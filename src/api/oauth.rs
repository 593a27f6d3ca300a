//! OAuth 2.0 endpoints for client libraries: the refresh grant (RFC 6749 §6) at the token
//! endpoint and token revocation (RFC 7009), form-encoded, with RFC 6749 §5.2 errors. They
//! run the same rotation, reuse detection and revocation as `/auth/token/refresh` and
//! `/auth/logout`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, payload::Json};
use serde::Deserialize;

use super::{
    ApiTags,
    error::{ApiErrors, error_set},
    form::FormBody,
};
use crate::{
    app::AppState,
    domain::{AuthError, ClientInfo},
};

#[derive(Default)]
pub struct OAuthApi;

/// A token request (RFC 6749 §6).
// No `Debug`: it carries the refresh token.
#[derive(Default, Object, Deserialize)]
#[serde(default)]
pub struct TokenRequest {
    /// `refresh_token`, the only grant this endpoint serves.
    pub grant_type: Option<String>,
    /// The refresh token of the latest pair.
    pub refresh_token: Option<String>,
    /// Ignored: the session keeps the scope it was signed in with.
    pub scope: Option<String>,
    /// Ignored: apps are public clients (`token_endpoint_auth_methods_supported: ["none"]`).
    pub client_id: Option<String>,
}

/// A revocation request (RFC 7009).
// No `Debug`: it carries a token.
#[derive(Default, Object, Deserialize)]
#[serde(default)]
pub struct RevocationRequest {
    /// A refresh token (its session ends) or an access token (stateless: it lives out its
    /// few minutes; revoke the refresh token to end the session).
    pub token: Option<String>,
    /// `refresh_token` or `access_token`; a hint only.
    pub token_type_hint: Option<String>,
    /// Ignored: apps are public clients.
    pub client_id: Option<String>,
}

/// A fresh pair, in OAuth's words.
#[derive(Object)]
pub struct OAuthTokens {
    /// The access JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    /// The next refresh token; the one presented stops working.
    pub refresh_token: String,
}

/// RFC 6749 §5.2 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    /// A parameter is missing or sent twice, or the body is not a form.
    InvalidRequest,
    /// The refresh token is unknown, expired, revoked, or was used before (reuse: the session
    /// is revoked).
    InvalidGrant,
    /// Only `refresh_token` is served.
    UnsupportedGrantType,
}

/// An error as RFC 6749 §5.2 shapes it.
#[derive(Object)]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    /// A sentence for a person.
    pub error_description: String,
}

#[derive(ApiResponse)]
pub enum TokenResponse {
    /// A new pair; the presented refresh token stops working (apart from the short reuse
    /// interval for concurrent refreshes).
    #[oai(status = 200)]
    Ok(Json<OAuthTokens>, #[oai(header = "Pragma")] String),
    /// `invalid_request`, `invalid_grant` or `unsupported_grant_type`.
    #[oai(status = 400)]
    Refused(Json<OAuthError>),
}

#[derive(ApiResponse)]
pub enum RevocationResponse {
    /// Revoked, or nothing to revoke: unknown tokens are fine (RFC 7009 §2.2).
    #[oai(status = 200)]
    Revoked,
    /// `invalid_request`: no `token`.
    #[oai(status = 400)]
    Refused(Json<OAuthError>),
}

error_set!(OAuthErrors: UnsupportedMediaType, PayloadTooLarge, RateLimited);

fn refused(error: OAuthErrorCode, description: &str) -> Json<OAuthError> {
    Json(OAuthError {
        error,
        error_description: description.into(),
    })
}

#[OpenApi(tag = "ApiTags::Tokens")]
impl OAuthApi {
    /// OAuth token endpoint (refresh grant)
    ///
    /// For OAuth client libraries: `grant_type=refresh_token&refresh_token=…`, form-encoded.
    /// The same rotation and reuse rules as `/auth/token/refresh`. Errors are RFC 6749's:
    /// 400 with `{"error": "invalid_request" | "invalid_grant" | "unsupported_grant_type",
    /// "error_description": "…"}`.
    #[oai(path = "/oauth/token", method = "post")]
    async fn token(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: FormBody<TokenRequest>,
    ) -> Result<TokenResponse, ApiErrors<OAuthErrors>> {
        let request = match body.0 {
            Ok(request) => request,
            Err(problem) => {
                return Ok(TokenResponse::Refused(refused(
                    OAuthErrorCode::InvalidRequest,
                    &problem,
                )));
            }
        };
        let Some(grant_type) = request.grant_type.filter(|grant| !grant.is_empty()) else {
            return Ok(TokenResponse::Refused(refused(
                OAuthErrorCode::InvalidRequest,
                "grant_type is missing.",
            )));
        };
        if grant_type != "refresh_token" {
            return Ok(TokenResponse::Refused(refused(
                OAuthErrorCode::UnsupportedGrantType,
                "Only the refresh_token grant is served here; sign in with POST /auth/login.",
            )));
        }
        let Some(token) = request.refresh_token.filter(|token| !token.is_empty()) else {
            return Ok(TokenResponse::Refused(refused(
                OAuthErrorCode::InvalidRequest,
                "refresh_token is missing.",
            )));
        };
        match state.sessions.refresh(&token, client.0).await {
            Ok(pair) => Ok(TokenResponse::Ok(
                Json(OAuthTokens {
                    access_token: pair.access,
                    token_type: pair.token_type,
                    expires_in: pair.expires_in,
                    refresh_token: pair.refresh,
                }),
                // RFC 6749 §5.1, for HTTP/1.0 caches.
                "no-cache".into(),
            )),
            Err(AuthError::InvalidRefreshToken) => Ok(TokenResponse::Refused(refused(
                OAuthErrorCode::InvalidGrant,
                "The refresh token is unknown, expired or revoked.",
            ))),
            Err(AuthError::RefreshTokenReused) => Ok(TokenResponse::Refused(refused(
                OAuthErrorCode::InvalidGrant,
                "The refresh token was already used; the session was ended for safety.",
            ))),
            Err(err) => Err(err.into()),
        }
    }

    /// OAuth token revocation
    ///
    /// `token=…`, form-encoded (RFC 7009). A refresh token's session ends; access tokens are
    /// stateless and live out their few minutes. Unknown tokens are 200 too.
    #[oai(path = "/oauth/revoke", method = "post")]
    async fn revoke(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        body: FormBody<RevocationRequest>,
    ) -> Result<RevocationResponse, ApiErrors<OAuthErrors>> {
        let request = match body.0 {
            Ok(request) => request,
            Err(problem) => {
                return Ok(RevocationResponse::Refused(refused(
                    OAuthErrorCode::InvalidRequest,
                    &problem,
                )));
            }
        };
        let Some(token) = request.token.filter(|token| !token.is_empty()) else {
            return Ok(RevocationResponse::Refused(refused(
                OAuthErrorCode::InvalidRequest,
                "token is missing.",
            )));
        };
        state.sessions.logout(&token, client.0).await?;
        Ok(RevocationResponse::Revoked)
    }
}
