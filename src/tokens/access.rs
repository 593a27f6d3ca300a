//! Access tokens: short-lived JWTs (RFC 9068 profile) signed with the current key.
//!
//! They are stateless: verification needs only the key set in memory, never the database.
//! Expiry is checked against the injected clock rather than inside jsonwebtoken, so tests can
//! move time and every instance judges a token by the same rule.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::KeyRing;
use crate::clock::Clock;

/// `typ` header of access tokens (RFC 9068 §2.1), so an ID token or any other JWT signed by
/// the same key can never pass as one.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Tolerated clock difference between instances for `nbf`: a token minted by an instance
/// whose clock runs slightly ahead is still usable at once. `exp` gets no leeway: a token
/// must not outlive its session's revocation by more than its stated lifetime.
const NOT_BEFORE_LEEWAY_SECONDS: i64 = 5;
/// How many verified tokens an instance remembers (a few hundred bytes each).
const VERIFIED_CAPACITY: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// The session (refresh token family) this token was minted for.
    pub sid: Uuid,
    pub email: String,
    pub email_verified: bool,
    pub role: String,
    /// How the session was authenticated (RFC 8176): `["pwd"]`, `["pwd", "mfa", "otp"]` or
    /// `["pwd", "mfa", "swk"]`. Tokens minted before two-factor sign-in lack it: password.
    #[serde(default = "password_only")]
    pub amr: Vec<String>,
}

fn password_only() -> Vec<String> {
    vec!["pwd".to_string()]
}

/// What an access token is minted for.
pub struct Subject<'a> {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub email: &'a str,
    pub email_verified: bool,
    pub role: &'a str,
    pub amr: &'a [String],
}

/// Why a token was refused. Callers answer 401 whatever the reason; the reason is for logs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenRejected {
    #[error("not a JWT, or not one of ours")]
    Malformed,
    #[error("the token is not an access token")]
    WrongType,
    #[error("the header names critical extensions (crit)")]
    CriticalExtension,
    #[error("no key with this kid")]
    UnknownKey,
    #[error("bad signature, issuer, audience or claims")]
    Invalid,
    #[error("the token has expired or is not valid yet")]
    OutsideLifetime,
}

pub struct AccessTokens {
    keys: Arc<KeyRing>,
    issuer: String,
    audience: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    verified: Mutex<HashMap<String, Verified>>,
}

/// A token whose header, signature, issuer and audience were checked, by its exact text: a
/// client sends the same access token with every request for its whole lifetime, and its
/// signature check and parsing are most of what a request to `/auth/me` costs. What can change
/// is still checked on every request: that the signing key is live, and the lifetime.
#[derive(Clone)]
struct Verified {
    kid: String,
    claims: AccessClaims,
}

impl AccessTokens {
    pub fn new(
        keys: Arc<KeyRing>,
        issuer: String,
        audience: String,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            keys,
            issuer,
            audience,
            ttl,
            clock,
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl_seconds(&self) -> u64 {
        self.ttl.as_secs()
    }

    pub fn issue(&self, subject: &Subject<'_>) -> Result<String, jsonwebtoken::errors::Error> {
        let key = self.keys.current();
        let now = self.clock.now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.user_id,
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs() as i64,
            jti: Uuid::new_v4(),
            sid: subject.session_id,
            email: subject.email.to_string(),
            email_verified: subject.email_verified,
            role: subject.role.to_string(),
            amr: subject.amr.to_vec(),
        };
        let mut header = Header::new(key.jwt_algorithm());
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        header.kid = Some(key.kid.clone());
        encode(&header, &claims, &key.encoding)
    }

    pub async fn verify(&self, token: &str) -> Result<AccessClaims, TokenRejected> {
        let known = self.verified().get(token).cloned();
        let claims = match known {
            Some(verified) => {
                self.keys
                    .find(&verified.kid)
                    .await
                    .ok_or(TokenRejected::UnknownKey)?;
                verified.claims
            }
            None => {
                let verified = self.check_signature(token).await?;
                self.remember(token, verified.clone());
                verified.claims
            }
        };
        let now = self.clock.now().timestamp();
        if now >= claims.exp || now + NOT_BEFORE_LEEWAY_SECONDS < claims.nbf {
            return Err(TokenRejected::OutsideLifetime);
        }
        Ok(claims)
    }

    /// Everything about a token that cannot change: its header, key, signature, issuer and
    /// audience.
    async fn check_signature(&self, token: &str) -> Result<Verified, TokenRejected> {
        let header = decode_header(token).map_err(|_| TokenRejected::Malformed)?;
        if has_crit(token)? {
            return Err(TokenRejected::CriticalExtension);
        }
        let typ = header
            .typ
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if typ != ACCESS_TOKEN_TYPE && typ != "application/at+jwt" {
            return Err(TokenRejected::WrongType);
        }
        let kid = header.kid.ok_or(TokenRejected::UnknownKey)?;
        let key = self
            .keys
            .find(&kid)
            .await
            .ok_or(TokenRejected::UnknownKey)?;
        // Only the key's own algorithm is accepted: no `none`, no algorithm confusion.
        let mut validation = Validation::new(key.jwt_algorithm());
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["iss", "aud", "sub", "exp", "nbf", "iat"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = decode::<AccessClaims>(token, &key.decoding, &validation)
            .map_err(|_| TokenRejected::Invalid)?
            .claims;
        Ok(Verified { kid, claims })
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, Verified>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a verified token; when full, expired tokens go, and if that frees nothing, all.
    fn remember(&self, token: &str, verified: Verified) {
        let now = self.clock.now().timestamp();
        let mut known = self.verified();
        if known.len() >= VERIFIED_CAPACITY {
            known.retain(|_, kept| now < kept.claims.exp);
            if known.len() >= VERIFIED_CAPACITY {
                known.clear();
            }
        }
        known.insert(token.to_string(), verified);
    }
}

/// Whether the protected header has a `crit` member, whatever its value. A recipient must
/// reject a JWS whose `crit` names an extension it does not understand (RFC 7515 §4.1.11),
/// and this verifier understands none: honouring a token that says "this header changes how
/// I must be checked" without doing so is how unencoded payloads (`b64`) and other
/// extensions get verified wrongly. jsonwebtoken parses `crit` but never acts on it, and reads
/// `"crit": null` as absent, so the header segment is read here as plain JSON.
fn has_crit(token: &str) -> Result<bool, TokenRejected> {
    let segment = token.split('.').next().unwrap_or_default();
    let json = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenRejected::Malformed)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&json).map_err(|_| TokenRejected::Malformed)?;
    Ok(header.contains_key("crit"))
}
