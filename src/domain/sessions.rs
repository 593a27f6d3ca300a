//! Sessions: starting them, refreshing them with reuse detection, listing and ending them.
//!
//! A session is one sign-in on one device. Its refresh token rotates on every use: the
//! presented token is marked rotated and a successor is minted. A rotated token presented again
//! within the reuse interval is a second app thread that refreshed at the same moment, and gets
//! a valid pair (another successor) for the same session; later, it can only be a copy in
//! someone else's hands, so the whole session is revoked (RFC 9700 §4.14.2). A session never
//! forks: of the successors of one token, the first used wins and the others are superseded,
//! so presenting one of them afterwards is reuse too — a thief holding a sibling cannot
//! refresh beside the owner.

use std::{fmt, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
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
    store::{self, profiles, refresh_tokens, sessions, users},
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

/// How a session was authenticated (RFC 8176 `amr`), kept for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amr {
    /// A password alone.
    Password,
    /// A password and a one-time code (TOTP, emailed or recovery code).
    PasswordAndCode,
    /// A password on a device the account trusts (a stored, hashed key: `swk`).
    PasswordAndTrustedDevice,
}

impl Amr {
    pub fn methods(self) -> &'static [&'static str] {
        match self {
            Amr::Password => &["pwd"],
            Amr::PasswordAndCode => &["pwd", "mfa", "otp"],
            Amr::PasswordAndTrustedDevice => &["pwd", "mfa", "swk"],
        }
    }

    /// The methods of an access token, read back.
    pub fn of_methods(methods: &[String]) -> Amr {
        let has = |method: &str| methods.iter().any(|m| m == method);
        match (has("mfa"), has("swk")) {
            (true, true) => Amr::PasswordAndTrustedDevice,
            (true, false) => Amr::PasswordAndCode,
            _ => Amr::Password,
        }
    }

    fn stored(self) -> String {
        serde_json::to_string(self.methods()).unwrap_or_default()
    }

    /// The methods a session row stored; sessions of earlier releases were password-only.
    fn parse(stored: &str) -> Vec<String> {
        serde_json::from_str(stored).unwrap_or_else(|_| vec!["pwd".to_string()])
    }
}

/// How a session came to be: its methods, and the trusted device it signed in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WayIn {
    pub amr: Amr,
    pub trusted_device: Option<Uuid>,
}

impl WayIn {
    /// A password (or, at verification, the mailed code) alone.
    pub const PASSWORD: WayIn = WayIn {
        amr: Amr::Password,
        trusted_device: None,
    };

    pub fn with(amr: Amr) -> WayIn {
        WayIn {
            amr,
            trusted_device: None,
        }
    }
}

/// How stale `last_seen_at` may get before a refresh writes it again.
const LAST_SEEN_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

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
        way_in: WayIn,
    ) -> Result<TokenPair, AuthError> {
        let now = self.clock.now();
        let new = sessions::NewSession {
            user_id: user.id,
            expires_at: now + delta(self.max_age),
            user_agent: client.user_agent.clone(),
            ip: client.ip.clone(),
            amr: way_in.amr.stored(),
            trusted_device_id: way_in.trusted_device,
        };
        let session = sessions::insert(txn, new, now).await?;
        self.mint_pair(txn, &session, None, user).await
    }

    /// The end of every way in: opens a session, records `action`, commits, and answers with
    /// the account as it now is: `user` and `profile` as `txn` last wrote or read them (the
    /// user's row locked), so no second read is needed.
    pub async fn sign_in(
        &self,
        txn: DatabaseTransaction,
        (user, profile): (users::Model, Option<profiles::Model>),
        client: &ClientInfo,
        action: Action,
        way_in: WayIn,
    ) -> Result<SignedIn, AuthError> {
        let tokens = self.start(&txn, &user, client, way_in).await?;
        self.audit
            .record(&txn, Event::new(action, Some(user.id), client))
            .await?;
        txn.commit().await?;
        let account = self.accounts.of_rows(user, profile);
        Ok(SignedIn { account, tokens })
    }

    /// Exchanges a refresh token for a new pair; see the module documentation for the rules.
    ///
    /// The usual case is five statements: the session touched (which locks it), the token
    /// rotated, its siblings superseded, the user read, the successor inserted. A refusal
    /// rolls back whatever was written before it.
    pub async fn refresh(&self, token: &str, client: &ClientInfo) -> Result<TokenPair, AuthError> {
        let now = self.clock.now();
        let token_hash = refresh::hash(token);
        let txn = store::begin(&self.db).await?;
        // From here on this session's refreshes run one at a time, so the decisions below see
        // every earlier refresh of it.
        let session = sessions::touch_by_token(&txn, &token_hash, now)
            .await?
            .filter(|session| now < session.expires_at)
            .ok_or(AuthError::InvalidRefreshToken)?;
        let rotated = refresh_tokens::rotate_live(&txn, &token_hash, now).await?;
        let rotated_now = rotated.is_some();
        let presented = match rotated {
            Some(token) => token,
            None => refresh_tokens::find_by_hash(&txn, &token_hash)
                .await?
                .ok_or(AuthError::InvalidRefreshToken)?,
        };
        if now >= presented.expires_at {
            return Err(AuthError::InvalidRefreshToken);
        }
        // Counted in the transaction: a refused refresh changes nothing, this counter included.
        self.limiter
            .hit(&txn, LimitKind::RefreshSession, &session.id.to_string())
            .await?;
        let live = if rotated_now {
            refresh_tokens::supersede_siblings(&txn, &presented, now).await?;
            true
        } else {
            match (presented.superseded_at, presented.rotated_at) {
                // Another thread of the app refreshed with this token a moment ago: it gets a
                // pair too, unless a successor was already used (the session moved on).
                (None, Some(rotated_at)) => {
                    now - rotated_at <= delta(self.reuse_interval)
                        && !refresh_tokens::has_used_successor(&txn, presented.id).await?
                }
                // A sibling was used first: this token is a fork.
                _ => false,
            }
        };
        if !live {
            return self
                .revoke_for_reuse(txn, &session, &presented, client)
                .await;
        }
        let user = users::find(&txn, session.user_id)
            .await?
            .filter(|user| user.is_active)
            .ok_or(AuthError::InvalidRefreshToken)?;
        let tokens = self
            .mint_pair(&txn, &session, Some(presented.id), &user)
            .await?;
        txn.commit().await?;
        self.note_seen(&user, now).await;
        Ok(tokens)
    }

    /// Records a refresh as the account's `last_seen_at` (§10: the last login or refresh), at
    /// most once a minute, so most refreshes of a busy account write nothing more. After the
    /// commit, in a statement of its own: inside the refresh it would lock the user's row after
    /// the session's, the reverse of the order in which a password change takes them. The new
    /// pair is answered whatever this does; a missed mark only makes the time older.
    async fn note_seen(&self, user: &users::Model, now: DateTime<Utc>) {
        let stale = now - LAST_SEEN_RESOLUTION;
        if user.last_seen_at.is_some_and(|seen| seen >= stale) {
            return;
        }
        if let Err(err) = users::touch_last_seen(&self.db, user.id, now, stale).await {
            tracing::warn!(error = %err, user_id = %user.id, "last_seen_at not recorded");
        }
    }

    /// A token replayed after its time, or a fork: it can only be a copy in someone else's
    /// hands, so the whole session ends.
    async fn revoke_for_reuse(
        &self,
        txn: DatabaseTransaction,
        session: &sessions::Model,
        presented: &refresh_tokens::Model,
        client: &ClientInfo,
    ) -> Result<TokenPair, AuthError> {
        sessions::revoke(&txn, session.id, self.clock.now()).await?;
        let details = json!({
            "session_id": session.id,
            "rotated_at": presented.rotated_at,
            "superseded_at": presented.superseded_at,
        });
        let event = Event::new(Action::RefreshReuse, Some(session.user_id), client).with(details);
        self.audit.record(&txn, event).await?;
        txn.commit().await?;
        ::metrics::counter!(metrics::REFRESH_REUSE).increment(1);
        tracing::warn!(
            security_event = "refresh_token_reused",
            session_id = %session.id,
            user_id = %session.user_id,
            "a rotated refresh token was replayed; the session is revoked"
        );
        Err(AuthError::RefreshTokenReused)
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

    /// The trusted device a session signed in on, if any.
    pub async fn trusted_device_of(&self, session_id: Uuid) -> Result<Option<Uuid>, AuthError> {
        Ok(sessions::find(&self.db, session_id)
            .await?
            .and_then(|session| session.trusted_device_id))
    }

    /// Ends one session of the user, at their own request or, with `actor`, an admin's.
    /// Another user's session is as unknown as a made-up id: both are `NotFound`.
    pub async fn end(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        actor: Option<Uuid>,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let txn = store::begin(&self.db).await?;
        if !sessions::revoke_of_user(&txn, user_id, session_id, self.clock.now()).await? {
            return Err(AuthError::NotFound);
        }
        let details = json!({"session_id": session_id, "by": "session_delete"});
        let event = Event::new(Action::SessionRevocation, Some(user_id), client)
            .with(details)
            .by_any(actor);
        self.audit.record(&txn, event).await?;
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
        let event = Event::new(Action::SessionRevocation, Some(user_id), client).with(details);
        self.audit.record(txn, event).await
    }

    /// A new refresh token for `session`, succeeding `parent_id`, and an access token for
    /// `user`.
    async fn mint_pair(
        &self,
        txn: &DatabaseTransaction,
        session: &sessions::Model,
        parent_id: Option<Uuid>,
        user: &users::Model,
    ) -> Result<TokenPair, AuthError> {
        let now = self.clock.now();
        let refresh_expires_at = (now + delta(self.refresh_ttl)).min(session.expires_at);
        let minted = refresh::mint();
        let token = refresh_tokens::NewToken {
            session_id: session.id,
            parent_id,
            token_hash: minted.hash,
            expires_at: refresh_expires_at,
        };
        refresh_tokens::insert(txn, token, now).await?;
        let access = self
            .access_tokens
            .issue(&Subject {
                user_id: user.id,
                session_id: session.id,
                email: &user.email,
                email_verified: user.is_verified,
                role: &user.role,
                amr: &Amr::parse(&session.amr),
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
