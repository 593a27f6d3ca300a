//! Keys and discovery for the services and client libraries that verify our tokens offline.

use std::{collections::BTreeSet, sync::Arc};

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json, types::Example};
use serde_json::Value;

use super::{
    ApiTags,
    error::{ApiErrors, error_set},
};
use crate::app::AppState;

#[derive(Default)]
pub struct KeysApi;

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

/// Authorization server metadata (RFC 8414). Every field is true of this service: it issues
/// access tokens at sign-in and refreshes them at `token_endpoint`; it has no authorization
/// endpoint and issues no ID tokens.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ServerMetadata {
    /// `AUTHGATE_PUBLIC_URL`: the `iss` of every access token.
    pub issuer: String,
    pub jwks_uri: String,
    /// `POST /oauth/token`, for the `refresh_token` grant (RFC 6749 §6).
    pub token_endpoint: String,
    /// `POST /oauth/revoke` (RFC 7009).
    pub revocation_endpoint: String,
    /// Only `refresh_token`: tokens are first issued by `/auth/login`, not by an OAuth grant.
    pub grant_types_supported: Vec<String>,
    /// Public clients (apps) need no client authentication: `none`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 8414 requires this field; with no authorization endpoint the only true value is
    /// `none` (the response type that issues nothing).
    pub response_types_supported: Vec<String>,
    /// The algorithms of the keys in the JWKS, which sign the access tokens (libraries that
    /// start from discovery read this field to know what to accept).
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// `sub` is the same account id for every client: `public`.
    pub subject_types_supported: Vec<String>,
}

impl Example for ServerMetadata {
    fn example() -> Self {
        metadata("https://auth.example.com", vec!["EdDSA".into()])
    }
}

fn metadata(issuer: &str, algorithms: Vec<String>) -> ServerMetadata {
    let list = |items: &[&str]| items.iter().map(|item| item.to_string()).collect();
    ServerMetadata {
        issuer: issuer.to_string(),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        token_endpoint: format!("{issuer}/oauth/token"),
        revocation_endpoint: format!("{issuer}/oauth/revoke"),
        grant_types_supported: list(&["refresh_token"]),
        token_endpoint_auth_methods_supported: list(&["none"]),
        revocation_endpoint_auth_methods_supported: list(&["none"]),
        response_types_supported: list(&["none"]),
        id_token_signing_alg_values_supported: algorithms,
        subject_types_supported: list(&["public"]),
    }
}

#[derive(ApiResponse)]
pub enum MetadataResponse {
    /// The service's metadata.
    #[oai(status = 200)]
    Ok(Json<ServerMetadata>),
}

error_set!(offline KeysErrors);

#[OpenApi(tag = "ApiTags::Keys")]
impl KeysApi {
    /// Public signing keys (JWKS)
    ///
    /// Verify access tokens offline with these keys: pick the key by the token's `kid`,
    /// check `alg`, `typ: at+jwt`, `iss`, `aud` and `exp`.
    #[oai(path = "/.well-known/jwks.json", method = "get")]
    async fn jwks(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<JwksResponse, ApiErrors<KeysErrors>> {
        Ok(JwksResponse::Ok(
            Json(Jwks {
                keys: state.keys.jwks(),
            }),
            "public, max-age=300".into(),
        ))
    }

    /// Discovery (OpenID configuration path)
    ///
    /// The same RFC 8414 metadata as `/.well-known/oauth-authorization-server`, at the path
    /// OpenID libraries look first.
    #[oai(path = "/.well-known/openid-configuration", method = "get")]
    async fn openid_configuration(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<MetadataResponse, ApiErrors<KeysErrors>> {
        Ok(MetadataResponse::Ok(Json(current_metadata(&state))))
    }

    /// Authorization server metadata (RFC 8414)
    #[oai(path = "/.well-known/oauth-authorization-server", method = "get")]
    async fn oauth_authorization_server(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<MetadataResponse, ApiErrors<KeysErrors>> {
        Ok(MetadataResponse::Ok(Json(current_metadata(&state))))
    }
}

fn current_metadata(state: &AppState) -> ServerMetadata {
    let algorithms: BTreeSet<String> = state
        .keys
        .jwks()
        .iter()
        .filter_map(|key| key["alg"].as_str().map(str::to_string))
        .collect();
    metadata(&state.config.public_url, algorithms.into_iter().collect())
}
