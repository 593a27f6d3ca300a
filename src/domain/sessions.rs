//! Signing in, refreshing and signing out.
//!
//! A session is one sign-in on one device. Its refresh token rotates on every use: the
//! presented token is marked rotated and a new one is minted. A rotated token presented again
//! within the reuse interval is a second app thread that refreshed at the same moment, and gets
//! a valid pair for the same session; later, it can only be a copy in someone else's hands, so
//! the whole session is revoked (RFC 9700 §4.14.2).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    AuthService, ClientInfo, SignedIn, TokenPair,
    audit::{Action, Outcome},
    email::Email,
    error::{AuthError, FieldErrors},
    hashing::Verification,
    limits::LimitKind,
    password::Password,
    profile::load_account,
    registration::find_user,
};
use serde_json::json;

use crate::{
    clock::{delta, seconds_until},
    mail::templates,
    store::{refresh_tokens, sessions, users},
    tokens::{access::Subject, refresh},
};

impl AuthService {
    /// Checks email and password and opens a session. Unknown emails cost a full password
    /// check too, so neither the answer nor its timing tells whether an account exists.
    pub async fn login(
        &self,
        email: &str,
        password: String,
        client: &ClientInfo,
    ) -> Result<SignedIn, AuthError> {
        let mut errors = FieldErrors::new();
        let email = errors.check("email", Email::parse(email));
        if password.is_empty() {
            errors.add("password", "This field is required.");
        }
        errors.into_result()?;
        let email =
            email.ok_or_else(|| AuthError::Internal("email check lost its value".into()))?;
        // Limits come before any hashing: a refused attempt costs almost nothing. The account
        // counter takes this attempt now, before the (slow) check, so a burst of parallel
        // guesses cannot all slip under the limit; a right password gives it back.
        self.hit(&self.db, LimitKind::LoginIp, &client.limit_subject())
            .await?;
        let attempts = self
            .hit(&self.db, LimitKind::LoginAccount, email.as_str())
            .await?;

        // No password over the size limit was ever accepted, so none can match.
        let password = Password::for_login(password);
        let user = find_user(&self.db, &email).await?;
        let verification = match (&password, &user) {
            (None, _) => Verification::Mismatch,
            (Some(password), Some(user)) => {
                self.hashing.verify(password, &user.password_hash).await?
            }
            (Some(password), None) => {
                self.hashing.verify_dummy(password).await?;
                Verification::Mismatch
            }
        };
        let (Some(user), Some(password)) = (user, password) else {
            self.failed_login(&email, None, client, attempts).await?;
            return Err(AuthError::InvalidCredentials);
        };
        if verification == Verification::Mismatch {
            self.failed_login(&email, Some(user.id), client, attempts)
                .await?;
            return Err(AuthError::InvalidCredentials);
        }
        self.refund(LimitKind::LoginAccount, email.as_str()).await?;
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        if !user.is_verified {
            return Err(AuthError::EmailNotVerified);
        }
        let upgraded_hash = match verification {
            Verification::MatchNeedsRehash => Some(self.hashing.hash(&password).await?),
            _ => None,
        };

        let txn = self.begin().await?;
        // The password was checked outside the transaction; a reset or change that committed
        // meanwhile must win, or its session revocation (or new hash) would be undone.
        let current = users::Entity::find_by_id(user.id)
            .lock_exclusive()
            .one(&txn)
            .await?;
        let Some(current) = current.filter(|current| {
            current.password_hash == user.password_hash && current.is_active && current.is_verified
        }) else {
            return Err(AuthError::InvalidCredentials);
        };
        let mut changes = current.into_active_model();
        changes.last_login_at = Set(Some(self.clock.now()));
        if let Some(hash) = upgraded_hash {
            changes.password_hash = Set(hash);
        }
        let user = changes.update(&txn).await?;
        let tokens = self.start_session(&txn, &user, client).await?;
        self.audit(
            &txn,
            Action::Login,
            Outcome::Success,
            Some(user.id),
            client,
            json!({}),
        )
        .await?;
        txn.commit().await?;
        let account = load_account(&self.db, user.id)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        Ok(SignedIn { account, tokens })
    }

    /// Records a failed login. The failure that uses up the account's allowance starts a
    /// lockout, and its owner (if the address has an account) is told, once per window.
    async fn failed_login(
        &self,
        email: &Email,
        user_id: Option<Uuid>,
        client: &ClientInfo,
        failures: u32,
    ) -> Result<(), AuthError> {
        self.audit(
            &self.db,
            Action::Login,
            Outcome::Failure,
            user_id,
            client,
            json!({"reason": "invalid_credentials"}),
        )
        .await?;
        let Some(limit) = self.config.limits.login_account else {
            return Ok(());
        };
        if failures == limit.count {
            self.audit(
                &self.db,
                Action::Lockout,
                Outcome::Success,
                user_id,
                client,
                json!({"failures": failures}),
            )
            .await?;
            tracing::warn!(security_event = "lockout", user_id = ?user_id, "sign-in locked after failed logins");
            if user_id.is_some() {
                // Sent in the background: waiting for the mail server would make this one
                // answer slower than those for addresses without an account.
                let mailer = Arc::clone(&self.mailer);
                let (to, notice) = (email.to_string(), templates::account_locked(limit.window));
                tokio::spawn(async move {
                    if let Err(err) = mailer.send(&to, notice).await {
                        tracing::error!(error = %err, "the lockout notice could not be mailed");
                    }
                });
            }
        }
        Ok(())
    }

    /// Opens a session for `user` inside `txn` and mints its first token pair.
    pub(super) async fn start_session(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
        client: &ClientInfo,
    ) -> Result<TokenPair, AuthError> {
        let now = self.clock.now();
        let session = sessions::ActiveModel {
            id: Set(Uuid::new_v4()),
            user_id: Set(user.id),
            created_at: Set(now),
            last_used_at: Set(now),
            expires_at: Set(now + delta(self.config.session_max_age)),
            revoked_at: Set(None),
            user_agent: Set(client.user_agent.clone()),
            ip: Set(client.ip.clone()),
        }
        .insert(txn)
        .await?;
        self.mint_pair(txn, &session, user).await
    }

    /// Exchanges a refresh token for a new pair; see the module documentation for the rules.
    pub async fn refresh(&self, token: &str, client: &ClientInfo) -> Result<TokenPair, AuthError> {
        let now = self.clock.now();
        let txn = self.begin().await?;
        let (presented, session) = refresh_tokens::Entity::find()
            .filter(refresh_tokens::Column::TokenHash.eq(refresh::hash(token)))
            .find_also_related(sessions::Entity)
            .one(&txn)
            .await?
            .and_then(|(token, session)| session.map(|session| (token, session)))
            .ok_or(AuthError::InvalidRefreshToken)?;
        if session.revoked_at.is_some() || now >= session.expires_at || now >= presented.expires_at
        {
            return Err(AuthError::InvalidRefreshToken);
        }
        // Counted in the transaction: a refused refresh changes nothing, this counter included.
        self.hit(&txn, LimitKind::RefreshSession, &session.id.to_string())
            .await?;
        let rotated_at = match presented.rotated_at {
            Some(rotated_at) => rotated_at,
            None => {
                // Compare-and-set: of two requests racing with the same live token, exactly
                // one rotates it; the other sees it as rotated just now.
                let rotated = refresh_tokens::Entity::update_many()
                    .col_expr(refresh_tokens::Column::RotatedAt, Expr::value(now))
                    .filter(refresh_tokens::Column::Id.eq(presented.id))
                    .filter(refresh_tokens::Column::RotatedAt.is_null())
                    .exec(&txn)
                    .await?;
                if rotated.rows_affected == 1 {
                    now
                } else {
                    now - TimeDelta::milliseconds(1)
                }
            }
        };
        if now - rotated_at > delta(self.config.refresh_reuse_interval) {
            revoke_session(&txn, session.id, now).await?;
            let details = json!({"session_id": session.id, "rotated_at": rotated_at});
            self.audit(
                &txn,
                Action::RefreshReuse,
                Outcome::Failure,
                Some(session.user_id),
                client,
                details,
            )
            .await?;
            txn.commit().await?;
            crate::metrics::count("authgate_refresh_reuse_total", &[]);
            tracing::warn!(
                security_event = "refresh_token_reused",
                session_id = %session.id,
                user_id = %session.user_id,
                "a rotated refresh token was replayed; the session is revoked"
            );
            return Err(AuthError::RefreshTokenReused);
        }
        let user = users::Entity::find_by_id(session.user_id)
            .one(&txn)
            .await?
            .filter(|user| user.is_active)
            .ok_or(AuthError::InvalidRefreshToken)?;
        let mut touched = session.clone().into_active_model();
        touched.last_used_at = Set(now);
        let session = touched.update(&txn).await?;
        let tokens = self.mint_pair(&txn, &session, &user).await?;
        txn.commit().await?;
        Ok(tokens)
    }

    /// Ends the session a refresh token belongs to. Unknown tokens are fine: the result the
    /// client wants, no valid session for this token, already holds.
    pub async fn logout(&self, token: &str, client: &ClientInfo) -> Result<(), AuthError> {
        let now = self.clock.now();
        let txn = self.begin().await?;
        let found = refresh_tokens::Entity::find()
            .filter(refresh_tokens::Column::TokenHash.eq(refresh::hash(token)))
            .find_also_related(sessions::Entity)
            .one(&txn)
            .await?;
        if let Some((_, Some(session))) = found
            && session.revoked_at.is_none()
        {
            revoke_session(&txn, session.id, now).await?;
            let details = json!({"session_id": session.id, "by": "logout"});
            self.audit_revocation(&txn, session.user_id, client, details)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// A new refresh token for `session` and an access token for `user`.
    async fn mint_pair(
        &self,
        txn: &DatabaseTransaction,
        session: &sessions::Model,
        user: &users::Model,
    ) -> Result<TokenPair, AuthError> {
        let now = self.clock.now();
        let refresh_expires_at: DateTime<Utc> =
            (now + delta(self.config.refresh_ttl)).min(session.expires_at);
        let minted = refresh::mint();
        refresh_tokens::ActiveModel {
            id: Set(Uuid::new_v4()),
            session_id: Set(session.id),
            token_hash: Set(minted.hash),
            created_at: Set(now),
            expires_at: Set(refresh_expires_at),
            rotated_at: Set(None),
        }
        .insert(txn)
        .await?;
        let access = self
            .access_tokens
            .issue(&Subject {
                user_id: user.id,
                session_id: session.id,
                email: &user.email,
                email_verified: user.is_verified,
                role: &user.role,
            })
            .map_err(|err| AuthError::Internal(format!("signing an access token: {err}")))?;
        Ok(TokenPair {
            access,
            refresh: minted.token,
            expires_in: self.access_tokens.ttl_seconds(),
            refresh_expires_in: seconds_until(now, refresh_expires_at),
        })
    }
}

/// A live session as its owner sees it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// When the session's newest refresh token expires, unless it is refreshed again.
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// What a signed-in user sends to change their password, unparsed.
/// No `Debug`: it carries passwords.
#[derive(Default)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
    pub confirm_password: String,
}

impl AuthService {
    /// The user's sessions that can still be refreshed, newest first.
    pub async fn sessions_of(&self, user_id: Uuid) -> Result<Vec<SessionView>, AuthError> {
        self.current_account(user_id).await?;
        let now = self.clock.now();
        let rows = sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user_id))
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::ExpiresAt.gt(now))
            .order_by_desc(sessions::Column::LastUsedAt)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|session| SessionView {
                // Every refresh mints a token with a fresh lifetime, so the newest token of a
                // session was minted when it was last used.
                expires_at: (session.last_used_at + delta(self.config.refresh_ttl))
                    .min(session.expires_at),
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
    /// made-up id: both are 404.
    pub async fn end_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.current_account(user_id).await?;
        let now = self.clock.now();
        let txn = self.begin().await?;
        let revoked = sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(now))
            .filter(sessions::Column::Id.eq(session_id))
            .filter(sessions::Column::UserId.eq(user_id))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if revoked.rows_affected == 0 {
            return Err(AuthError::NotFound);
        }
        let details = json!({"session_id": session_id, "by": "session_delete"});
        self.audit_revocation(&txn, user_id, client, details)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Ends every session of the user, on every device.
    pub async fn end_all_sessions(
        &self,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.current_account(user_id).await?;
        let txn = self.begin().await?;
        revoke_sessions_of(&txn, user_id, self.clock.now()).await?;
        let details = json!({"by": "logout_all"});
        self.audit_revocation(&txn, user_id, client, details)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Changes the password of a signed-in user. Every session ends, and this device gets a
    /// new one: whoever else knew the old password is signed out everywhere.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        change: PasswordChange,
        client: &ClientInfo,
    ) -> Result<TokenPair, AuthError> {
        let account = self.current_account(user_id).await?;
        let email = Email::parse(&account.user.email)
            .map_err(|_| AuthError::Internal("a stored email no longer parses".into()))?;
        let mut errors = FieldErrors::new();
        if change.current_password.is_empty() {
            errors.add("current_password", "This field is required.");
        }
        let new_password = self.check_new_password(
            &mut errors,
            &email,
            &change.new_password,
            &change.confirm_password,
        );
        errors.into_result()?;
        let new_password = new_password
            .ok_or_else(|| AuthError::Internal("password check lost its value".into()))?;
        // A stolen access token must not become a way around the login lockout: wrong current
        // passwords count against the same allowance.
        self.hit(&self.db, LimitKind::LoginAccount, email.as_str())
            .await?;
        let current =
            Password::for_login(change.current_password).ok_or(AuthError::InvalidCredentials)?;
        if self
            .hashing
            .verify(&current, &account.user.password_hash)
            .await?
            == Verification::Mismatch
        {
            let details = json!({"reason": "invalid_credentials"});
            self.audit(
                &self.db,
                Action::PasswordChange,
                Outcome::Failure,
                Some(user_id),
                client,
                details,
            )
            .await?;
            return Err(AuthError::InvalidCredentials);
        }
        self.refund(LimitKind::LoginAccount, email.as_str()).await?;
        let new_hash = self.hashing.hash(&new_password).await?;

        let txn = self.begin().await?;
        let now = self.clock.now();
        let mut user = account.user.into_active_model();
        user.password_hash = Set(new_hash);
        user.updated_at = Set(now);
        let user = user.update(&txn).await?;
        revoke_sessions_of(&txn, user_id, now).await?;
        let tokens = self.start_session(&txn, &user, client).await?;
        self.audit(
            &txn,
            Action::PasswordChange,
            Outcome::Success,
            Some(user_id),
            client,
            json!({}),
        )
        .await?;
        txn.commit().await?;

        self.notify_password_changed(&user.email).await;
        Ok(tokens)
    }
}

/// Marks a session revoked; its refresh tokens stop working with it.
pub(super) async fn revoke_session(
    txn: &DatabaseTransaction,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .filter(sessions::Column::Id.eq(session_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

/// Revokes every live session of a user.
pub(super) async fn revoke_sessions_of(
    txn: &DatabaseTransaction,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}
