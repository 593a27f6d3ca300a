//! Signing in with email and password, under the login limits and the account lockout.

use std::sync::Arc;

use poem_openapi::Object;
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    clock::Clock,
    domain::{
        AuthError, ClientInfo, SignedIn,
        audit::{Action, AuditTrail, Event},
        email::Email,
        error::FieldErrors,
        hashing::Verification,
        limits::{LimitKind, Limiter},
        outbox::{Letter, Outbox},
        parts::Parts,
        password_policy::Password,
        passwords::Passwords,
        sessions::Sessions,
    },
    mail::templates,
    store::{self, users},
};

// No `Debug`: it carries the password.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

pub struct SignIn {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    limiter: Arc<Limiter>,
    audit: Arc<AuditTrail>,
    passwords: Arc<Passwords>,
    sessions: Arc<Sessions>,
    outbox: Arc<Outbox>,
}

impl SignIn {
    pub fn new(parts: &Parts) -> SignIn {
        SignIn {
            db: parts.db.clone(),
            clock: Arc::clone(&parts.clock),
            limiter: Arc::clone(&parts.limiter),
            audit: Arc::clone(&parts.audit),
            passwords: Arc::clone(&parts.passwords),
            sessions: Arc::clone(&parts.sessions),
            outbox: Arc::clone(&parts.outbox),
        }
    }

    /// Checks email and password and opens a session. Unknown emails cost a full password
    /// check too, so neither the answer nor its timing tells whether an account exists.
    pub async fn login(
        &self,
        request: LoginRequest,
        client: &ClientInfo,
    ) -> Result<SignedIn, AuthError> {
        let mut errors = FieldErrors::new();
        let email = errors.check("email", Email::parse(&request.email));
        if request.password.is_empty() {
            errors.add("password", "This field is required.");
        }
        let email = errors.finish(email)?;
        // Limits come before any hashing: a refused attempt costs almost nothing. The account
        // counter takes this attempt now, before the (slow) check, so a burst of parallel
        // guesses cannot all slip under the limit; a right password gives it back.
        self.limiter
            .hit(&self.db, LimitKind::LoginIp, &client.limit_subject())
            .await?;
        let attempts = self
            .limiter
            .hit(&self.db, LimitKind::LoginAccount, email.as_str())
            .await?;

        let user = users::find_by_email(&self.db, email.as_str()).await?;
        // No password over the size limit was ever accepted, so none can match.
        let verification = match Password::for_login(request.password) {
            Some(password) => {
                let stored = user.as_ref().map(|user| user.password_hash.expose());
                Some((self.passwords.verify(&password, stored).await?, password))
            }
            None => None,
        };
        let (user, verification, password) = match (user, verification) {
            (Some(user), Some((verification, password)))
                if verification != Verification::Mismatch =>
            {
                (user, verification, password)
            }
            (user, _) => {
                let user_id = user.map(|user| user.id);
                self.failed_login(&email, user_id, client, attempts).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.limiter
            .refund(&self.db, LimitKind::LoginAccount, email.as_str())
            .await?;
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        if !user.is_verified {
            return Err(AuthError::EmailNotVerified);
        }
        let upgraded_hash = match verification {
            Verification::MatchNeedsRehash => Some(self.passwords.hash(&password).await?),
            _ => None,
        };

        let txn = store::begin(&self.db).await?;
        // The password was checked outside the transaction; a reset or change that committed
        // meanwhile must win, or its session revocation (or new hash) would be undone.
        let unchanged = users::lock(&txn, user.id).await?.is_some_and(|current| {
            current.password_hash == user.password_hash && current.is_active && current.is_verified
        });
        if !unchanged {
            return Err(AuthError::InvalidCredentials);
        }
        let user = users::record_login(&txn, user.id, upgraded_hash, self.clock.now()).await?;
        self.sessions
            .sign_in(txn, &user, client, Action::Login)
            .await
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
        let event = Event::failure(Action::Login, user_id, client)
            .with(json!({"reason": "invalid_credentials"}));
        self.audit.record(&self.db, event).await?;
        let Some(limit) = self.limiter.limit(LimitKind::LoginAccount) else {
            return Ok(());
        };
        if failures != limit.count {
            return Ok(());
        }
        let event =
            Event::success(Action::Lockout, user_id, client).with(json!({"failures": failures}));
        self.audit.record(&self.db, event).await?;
        tracing::warn!(security_event = "lockout", user_id = ?user_id, "sign-in locked after failed logins");
        if let Some(user_id) = user_id {
            let notice = Letter {
                to: email.as_str(),
                mail: templates::account_locked(limit.window),
                user_id: Some(user_id),
                code: None,
            };
            self.outbox.enqueue(&self.db, notice).await?;
        }
        Ok(())
    }
}
