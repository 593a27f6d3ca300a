//! Sessions: starting them, refreshing them with reuse detection, listing and ending them.
//!
//! A session is one sign-in on one device. Its refresh token rotates on every use: the
//! presented token is marked rotated and a new one is minted. A rotated token presented again
//! within the reuse interval is a second app thread that refreshed at the same moment, and gets
//! a valid pair for the same session; later, it can only be a copy in someone else's hands, so
//! the whole session is revoked (RFC 9700 §4.14.2).

use std::{fmt, sync::Arc, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use poem_openapi::Object;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde_json::json;
use uuid::Uuid;

use super::{
    accounts::{Account, Accounts},
    audit::{Action, AuditTrail, Event},
    client::ClientInfo,
    error::AuthError,
    limits::{LimitKind, Limiter},
};
use crate::{
    clock::{Clock, delta, seconds_until},
    config::Config,
    store::{self, refresh_tokens, sessions, users},
    telemetry::metrics,
    tokens::{AccessTokens, access::Subject, refresh},
};

/// A fresh token pair.
#[derive(Clone, Object)]
#[oai(rename = "Tokens", example)]
pub struct TokenPair {
    /// Access JWT for `Authorization: Bearer`.
    pub access: String,
    /// Opaque refresh token for `/auth/token/refresh`; it changes on every refresh.
    pub refresh: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    /// Seconds the refresh token is valid.
    pub refresh_expires_in: u64,
}

/// Redacting: both tokens are bearer secrets.
impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access", &"[redacted]")
            .field("refresh", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A new session: the account and its first token pair.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub account: Account,
    pub tokens: TokenPair,
}

/// One signed-in device.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Session")]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// When the session ends unless refreshed again (never later than its absolute limit).
    pub expires_at: DateTime<Utc>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
    #[oai(nullable)]
    pub ip: Option<String>,
    /// True for the session of the access token making this request.
    pub current: bool,
}

pub struct Sessions {
    db: DatabaseConnection,
    refresh_ttl: Duration,
    max_age: Duration,
    reuse_interval: Duration,
    clock: Arc<dyn Clock>,
    access_tokens: Arc<AccessTokens>,
    accounts: Arc<Accounts>,
    limiter: Arc<Limiter>,
    audit: Arc<AuditTrail>,
}

impl Sessions {
    pub fn new(
        db: DatabaseConnection,
        config: &Config,
        clock: Arc<dyn Clock>,
        access_tokens: Arc<AccessTokens>,
        accounts: Arc<Accounts>,
        limiter: Arc<Limiter>,
        audit: Arc<AuditTrail>,
    ) -> Sessions {
        Sessions {
            db,
            refresh_ttl: config.refresh_ttl,
            max_age: config.session_max_age,
            reuse_interval: config.refresh_reuse_interval,
            clock,
            access_tokens,
            accounts,
            limiter,
            audit,
        }
    }

    /// Opens a session for `user` inside `txn` and mints its first token pair.
    pub async fn start(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
        client: &ClientInfo,
    ) -> Result<TokenPair, AuthError> {
        let now = self.clock.now();
        let new = sessions::NewSession {
            user_id: user.id,
            expires_at: now + delta(self.max_age),
            user_agent: client.user_agent.clone(),
            ip: client.ip.clone(),
        };
        let session = sessions::insert(txn, new, now).await?;
        self.mint_pair(txn, &session, user).await
    }

    /// The end of every way in: opens a session, records `action`, commits, and answers with
    /// the account as it now is.
    pub async fn sign_in(
        &self,
        txn: DatabaseTransaction,
        user: &users::Model,
        client: &ClientInfo,
        action: Action,
    ) -> Result<SignedIn, AuthError> {
        let tokens = self.start(&txn, user, client).await?;
        self.audit
            .record(&txn, Event::success(action, Some(user.id), client))
            .await?;
        txn.commit().await?;
        let account = self.accounts.reload(user.id).await?;
        Ok(SignedIn { account, tokens })
    }

    /// Exchanges a refresh token for a new pair; see the module documentation for the rules.
    pub async fn refresh(&self, token: &str, client: &ClientInfo) -> Result<TokenPair, AuthError> {
        let now = self.clock.now();
        let txn = store::begin(&self.db).await?;
        let (presented, session) = refresh_tokens::find_with_session(&txn, &refresh::hash(token))
            .await?
            .ok_or(AuthError::InvalidRefreshToken)?;
        if session.revoked_at.is_some() || now >= session.expires_at || now >= presented.expires_at
        {
            return Err(AuthError::InvalidRefreshToken);
        }
        // Counted in the transaction: a refused refresh changes nothing, this counter included.
        self.limiter
            .hit(&txn, LimitKind::RefreshSession, &session.id.to_string())
            .await?;
        let rotated_at = match presented.rotated_at {
            Some(rotated_at) => rotated_at,
            // Of two requests racing with the same live token, exactly one rotates it; the
            // other sees it as rotated just now.
            None if refresh_tokens::mark_rotated(&txn, presented.id, now).await? => now,
            None => now - TimeDelta::milliseconds(1),
        };
        if now - rotated_at > delta(self.reuse_interval) {
            sessions::revoke(&txn, session.id, now).await?;
            let event = Event::failure(Action::RefreshReuse, Some(session.user_id), client)
                .with(json!({"session_id": session.id, "rotated_at": rotated_at}));
            self.audit.record(&txn, event).await?;
            txn.commit().await?;
            ::metrics::counter!(metrics::REFRESH_REUSE).increment(1);
            tracing::warn!(
                security_event = "refresh_token_reused",
                session_id = %session.id,
                user_id = %session.user_id,
                "a rotated refresh token was replayed; the session is revoked"
            );
            return Err(AuthError::RefreshTokenReused);
        }
        let user = users::find(&txn, session.user_id)
            .await?
            .filter(|user| user.is_active)
            .ok_or(AuthError::InvalidRefreshToken)?;
        sessions::touch(&txn, session.id, now).await?;
        let tokens = self.mint_pair(&txn, &session, &user).await?;
        txn.commit().await?;
        Ok(tokens)
    }

    /// Ends the session a refresh token belongs to. Unknown tokens are fine: the result the
    /// client wants, no valid session for this token, already holds.
    pub async fn logout(&self, token: &str, client: &ClientInfo) -> Result<(), AuthError> {
        let now = self.clock.now();
        let txn = store::begin(&self.db).await?;
        if let Some((_, session)) =
            refresh_tokens::find_with_session(&txn, &refresh::hash(token)).await?
            && sessions::revoke(&txn, session.id, now).await?
        {
            let details = json!({"session_id": session.id, "by": "logout"});
            self.record_revocation(&txn, session.user_id, client, details)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The user's sessions that can still be refreshed, newest first; `current` marks the
    /// session of the caller's access token.
    pub async fn list(&self, user_id: Uuid, current: Uuid) -> Result<Vec<SessionView>, AuthError> {
        let now = self.clock.now();
        let rows = sessions::live_of(&self.db, user_id, now).await?;
        Ok(rows
            .into_iter()
            .map(|session| SessionView {
                // Every refresh mints a token with a fresh lifetime, so the newest token of a
                // session was minted when it was last used.
                expires_at: (session.last_used_at + delta(self.refresh_ttl))
                    .min(session.expires_at),
                current: session.id == current,
                id: session.id,
                created_at: session.created_at,
                last_used_at: session.last_used_at,
                user_agent: session.user_agent,
                ip: session.ip,
            })
            .filter(|session| session.expires_at > now)
            .collect())
    }

    /// Ends one of the user's own sessions. Someone else's session is as unknown as a
    /// made-up id: both are `NotFound`.
    pub async fn end(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let txn = store::begin(&self.db).await?;
        if !sessions::revoke_of_user(&txn, user_id, session_id, self.clock.now()).await? {
            return Err(AuthError::NotFound);
        }
        let details = json!({"session_id": session_id, "by": "session_delete"});
        self.record_revocation(&txn, user_id, client, details)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Ends every session of the user, on every device.
    pub async fn end_all(&self, user_id: Uuid, client: &ClientInfo) -> Result<(), AuthError> {
        let txn = store::begin(&self.db).await?;
        sessions::revoke_all_of(&txn, user_id, self.clock.now()).await?;
        self.record_revocation(&txn, user_id, client, json!({"by": "logout_all"}))
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Records that sessions of `user_id` were ended, in the transaction that ended them.
    async fn record_revocation(
        &self,
        txn: &DatabaseTransaction,
        user_id: Uuid,
        client: &ClientInfo,
        details: serde_json::Value,
    ) -> Result<(), AuthError> {
        let event = Event::success(Action::SessionRevocation, Some(user_id), client).with(details);
        self.audit.record(txn, event).await
    }

    /// A new refresh token for `session` and an access token for `user`.
    async fn mint_pair(
        &self,
        txn: &DatabaseTransaction,
        session: &sessions::Model,
        user: &users::Model,
    ) -> Result<TokenPair, AuthError> {
        let now = self.clock.now();
        let refresh_expires_at = (now + delta(self.refresh_ttl)).min(session.expires_at);
        let minted = refresh::mint();
        refresh_tokens::insert(txn, session.id, minted.hash, refresh_expires_at, now).await?;
        let access = self
            .access_tokens
            .issue(&Subject {
                user_id: user.id,
                session_id: session.id,
                email: &user.email,
                email_verified: user.is_verified,
                role: &user.role,
            })
            .map_err(|err| AuthError::internal_from("an access token could not be signed", err))?;
        Ok(TokenPair {
            access,
            refresh: minted.token,
            token_type: "Bearer".into(),
            expires_in: self.access_tokens.ttl_seconds(),
            refresh_expires_in: seconds_until(now, refresh_expires_at),
        })
    }
}
