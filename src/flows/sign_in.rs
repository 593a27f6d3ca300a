//! Signing in with email and password, under the login limits and the account lockout.

use std::sync::Arc;

use poem_openapi::Object;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    clock::Clock,
    domain::{
        AuthError, ClientInfo, SignedIn,
        accounts::AccountStatus,
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
        usernames::Username,
    },
    mail::templates,
    store::{self, users},
};

// No `Debug`: it carries the password.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct LoginRequest {
    /// The account's address or username. Takes the place of `email`.
    #[oai(skip_serializing_if_is_empty)]
    pub login: String,
    /// The account's address; `login` does the same and also takes a username.
    #[oai(skip_serializing_if_is_empty)]
    pub email: String,
    pub password: String,
}

/// An account whose password was just proven, and its rehashed password when the stored
/// hash used outdated parameters.
struct Proven {
    user: users::Model,
    upgraded_hash: Option<String>,
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

    /// Checks the credentials and opens a session. Unknown addresses and names cost a full
    /// password check too, so neither the answer nor its timing tells whether an account
    /// exists.
    pub async fn login(
        &self,
        request: LoginRequest,
        client: &ClientInfo,
    ) -> Result<SignedIn, AuthError> {
        let proven = self.authenticate(request, client).await?;
        match AccountStatus::parse(&proven.user.status) {
            AccountStatus::Active => {}
            AccountStatus::Disabled => return Err(AuthError::AccountDisabled),
            AccountStatus::PendingDeletion => {
                return Err(AuthError::AccountPendingDeletion {
                    deletion_scheduled_for: proven
                        .user
                        .deletion_scheduled_for
                        .unwrap_or_else(|| self.clock.now()),
                });
            }
        }
        if !proven.user.is_verified {
            return Err(AuthError::EmailNotVerified);
        }
        let txn = self.begin_sign_in(&proven).await?;
        let user =
            users::record_login(&txn, proven.user.id, proven.upgraded_hash, self.clock.now())
                .await?;
        self.sessions
            .sign_in(txn, &user, client, Action::Login)
            .await
    }

    /// Signs in to an account pending deletion and keeps it: the deletion is cancelled and a
    /// mail confirms it. Only after a correct password does a live account get
    /// `NotPendingDeletion`.
    pub async fn restore(
        &self,
        request: LoginRequest,
        client: &ClientInfo,
    ) -> Result<SignedIn, AuthError> {
        let proven = self.authenticate(request, client).await?;
        if AccountStatus::parse(&proven.user.status) != AccountStatus::PendingDeletion {
            return Err(AuthError::NotPendingDeletion);
        }
        let txn = self.begin_sign_in(&proven).await?;
        let now = self.clock.now();
        users::set_status(&txn, proven.user.id, users::ACTIVE, None, now).await?;
        let user = users::record_login(&txn, proven.user.id, proven.upgraded_hash, now).await?;
        self.audit
            .record(
                &txn,
                Event::new(Action::DeletionCancelled, Some(user.id), client),
            )
            .await?;
        let notice = Letter {
            to: &user.email,
            mail: templates::deletion_cancelled(),
            user_id: Some(user.id),
            code: None,
        };
        self.outbox.enqueue(&txn, notice).await?;
        self.sessions
            .sign_in(txn, &user, client, Action::Login)
            .await
    }

    /// The account whose credentials these are, under the login limits and the lockout.
    async fn authenticate(
        &self,
        request: LoginRequest,
        client: &ClientInfo,
    ) -> Result<Proven, AuthError> {
        let mut errors = FieldErrors::new();
        // `login` (an address or a username) takes the place of `email`, which keeps working.
        let (field, identifier) = match request.login.trim() {
            "" => ("email", request.email.trim()),
            login => ("login", login),
        };
        let email = if field == "email" {
            errors.check("email", Email::parse(identifier)).map(Some)
        } else if identifier.is_empty() {
            errors.add("login", "This field is required.");
            None
        } else {
            Some(Email::parse(identifier).ok())
        };
        if request.password.is_empty() {
            errors.add("password", "This field is required.");
        }
        let email = errors.finish(email)?;
        // Limits come before any hashing: a refused attempt costs almost nothing.
        self.limiter
            .hit(&self.db, LimitKind::LoginIp, &client.limit_subject())
            .await?;
        let user = match &email {
            Some(email) => users::find_by_email(&self.db, email.as_str()).await?,
            None => match Username::parse(identifier) {
                Ok(name) => users::find_by_username_key(&self.db, &name.key()).await?,
                Err(_) => None,
            },
        };
        // The lockout counts per account, however it is named; an unknown name or address
        // counts under itself, alike.
        let subject = match &user {
            Some(user) => user.email.clone(),
            None => identifier.to_lowercase(),
        };
        // The account counter takes this attempt now, before the (slow) check, so a burst of
        // parallel guesses cannot all slip under the limit; a right password gives it back.
        let attempts = self
            .limiter
            .hit(&self.db, LimitKind::LoginAccount, &subject)
            .await?;
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
                let owner = user.map(|user| (user.id, user.email));
                self.failed_login(owner, client, attempts).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.limiter
            .refund(&self.db, LimitKind::LoginAccount, &subject)
            .await?;
        let upgraded_hash = match verification {
            Verification::MatchNeedsRehash => Some(self.passwords.hash(&password).await?),
            _ => None,
        };
        Ok(Proven {
            user,
            upgraded_hash,
        })
    }

    /// Starts the transaction that signs `proven` in. The password was checked outside it;
    /// a reset, change or status change that committed meanwhile must win, or its session
    /// revocation (or new hash) would be undone.
    async fn begin_sign_in(&self, proven: &Proven) -> Result<DatabaseTransaction, AuthError> {
        let txn = store::begin(&self.db).await?;
        let unchanged = users::lock(&txn, proven.user.id)
            .await?
            .is_some_and(|current| {
                current.password_hash == proven.user.password_hash
                    && current.status == proven.user.status
                    && current.is_verified == proven.user.is_verified
            });
        if !unchanged {
            return Err(AuthError::InvalidCredentials);
        }
        Ok(txn)
    }

    /// Records a failed login. The failure that uses up the account's allowance starts a
    /// lockout, and its owner (if there is an account) is told, once per window.
    async fn failed_login(
        &self,
        owner: Option<(Uuid, String)>,
        client: &ClientInfo,
        failures: u32,
    ) -> Result<(), AuthError> {
        let user_id = owner.as_ref().map(|(id, _)| *id);
        let event = Event::new(Action::LoginFailed, user_id, client)
            .with(json!({"reason": "invalid_credentials"}));
        self.audit.record(&self.db, event).await?;
        let Some(limit) = self.limiter.limit(LimitKind::LoginAccount) else {
            return Ok(());
        };
        if failures != limit.count {
            return Ok(());
        }
        let event =
            Event::new(Action::Lockout, user_id, client).with(json!({"failures": failures}));
        self.audit.record(&self.db, event).await?;
        tracing::warn!(security_event = "lockout", user_id = ?user_id, "sign-in locked after failed logins");
        if let Some((user_id, email)) = owner {
            let notice = Letter {
                to: &email,
                mail: templates::account_locked(limit.window),
                user_id: Some(user_id),
                code: None,
            };
            self.outbox.enqueue(&self.db, notice).await?;
        }
        Ok(())
    }
}
