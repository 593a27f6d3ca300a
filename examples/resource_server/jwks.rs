//! Offline verification of authgate access tokens, for any Rust service.
//!
//! Copy this file (it needs `jsonwebtoken`, `reqwest`, `serde`, `serde_json` and `tokio`).
//! Keys come from authgate's JWKS and are cached; a token signed by a key not seen yet (authgate
//! rotated) triggers one refetch, but never more often than `min_refetch_interval`, so a flood
//! of tokens with made-up `kid`s cannot hammer authgate.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::Deserialize;

/// The claims of an authgate access token that most services need.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    pub role: String,
    /// The session; changes only on a new sign-in.
    pub sid: String,
    pub exp: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Not a JWT, not an access token, or no `kid`.
    Malformed,
    /// No key with this `kid`, even after refetching the JWKS.
    UnknownKey,
    /// Bad signature, wrong issuer or audience, expired.
    Invalid,
    /// authgate's JWKS could not be fetched.
    KeysUnavailable,
}

pub struct JwksVerifier {
    jwks_url: String,
    issuer: String,
    audience: String,
    min_refetch_interval: Duration,
    max_key_age: Duration,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    fetched_at: Option<Instant>,
}

impl JwksVerifier {
    /// `authgate_url` is where authgate serves (`/.well-known/jwks.json` is appended);
    /// `issuer` is its `AUTHGATE_PUBLIC_URL`, `audience` its `AUTHGATE_AUDIENCE`.
    pub fn new(authgate_url: &str, issuer: &str, audience: &str) -> Self {
        JwksVerifier {
            jwks_url: format!(
                "{}/.well-known/jwks.json",
                authgate_url.trim_end_matches('/')
            ),
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            min_refetch_interval: Duration::from_secs(10),
            // authgate allows caching the JWKS for 5 minutes.
            max_key_age: Duration::from_secs(300),
            http: reqwest::Client::new(),
            cache: Mutex::new(Cache::default()),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<AccessClaims, Rejected> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejected::Malformed)?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|typ| typ.eq_ignore_ascii_case("at+jwt"))
        {
            return Err(Rejected::Malformed);
        }
        let kid = header.kid.ok_or(Rejected::Malformed)?;
        let (algorithm, key) = match self.cached(&kid, false) {
            Some(found) => found,
            None => {
                self.refetch().await?;
                self.cached(&kid, true).ok_or(Rejected::UnknownKey)?
            }
        };
        // The algorithm comes from the JWK, never from the token: no `alg` confusion.
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|_| Rejected::Invalid)
    }

    /// The cached key for `kid`, unless the cache is stale (then `None` asks for a refetch).
    fn cached(&self, kid: &str, accept_stale: bool) -> Option<(Algorithm, DecodingKey)> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.max_key_age);
        if !fresh && !accept_stale {
            return None;
        }
        cache.keys.get(kid).cloned()
    }

    async fn refetch(&self) -> Result<(), Rejected> {
        {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache
                .fetched_at
                .is_some_and(|at| at.elapsed() < self.min_refetch_interval)
            {
                return Ok(());
            }
            // Claim the fetch before releasing the lock, so concurrent misses fetch once.
            cache.fetched_at = Some(Instant::now());
        }
        let set: JwkSet = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|_| Rejected::KeysUnavailable)?
            .json()
            .await
            .map_err(|_| Rejected::KeysUnavailable)?;
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let algorithm = jwk.common.key_algorithm?.to_string().parse().ok()?;
                Some((kid, (algorithm, DecodingKey::from_jwk(jwk).ok()?)))
            })
            .collect();
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys = keys;
        Ok(())
    }
}
