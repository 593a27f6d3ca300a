//! Proving, before a sensitive change to a signed-in account (its password, its address), that
//! the caller is its owner and not someone holding a stolen access token: the current password
//! again, counted against the login lockout (§8). With two-factor sign-in (§11), the step-up
//! code (`mfa_code`) is checked here too, so every sensitive change gets it at once.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use serde_json::json;

use super::{
    accounts::Account,
    audit::{Action, AuditTrail, Event},
    client::ClientInfo,
    error::AuthError,
    hashing::Verification,
    limits::{LimitKind, Limiter},
    password_policy::Password,
    passwords::Passwords,
};
use crate::store::users;

pub struct Reauthentication {
    db: DatabaseConnection,
    limiter: Arc<Limiter>,
    audit: Arc<AuditTrail>,
    passwords: Arc<Passwords>,
}

/// The account's row as it was when its password was proven. The proof is made outside the
/// transaction of the change (hashing is slow); [`Proven::still_holds`] confirms it inside.
pub struct Proven(users::Model);

impl Proven {
    /// Whether the password proven earlier is still the account's: a password change or
    /// reset committed meanwhile must win over a change authorised by the old password.
    pub fn still_holds(&self, current: &users::Model) -> bool {
        current.password_hash == self.0.password_hash
    }
}

impl Reauthentication {
    pub fn new(
        db: DatabaseConnection,
        limiter: Arc<Limiter>,
        audit: Arc<AuditTrail>,
        passwords: Arc<Passwords>,
    ) -> Reauthentication {
        Reauthentication {
            db,
            limiter,
            audit,
            passwords,
        }
    }

    /// Checks `password` against the account's. A wrong one is recorded as `failure` and is
    /// `InvalidCredentials`. Every attempt counts against the account's login allowance, so a
    /// stolen access token is no way around the lockout; a right one gives it back.
    pub async fn confirm(
        &self,
        account: &Account,
        password: String,
        failure: Action,
        client: &ClientInfo,
    ) -> Result<Proven, AuthError> {
        self.limiter
            .hit(&self.db, LimitKind::LoginAccount, &account.email)
            .await?;
        let stored = users::find(&self.db, account.id)
            .await?
            .ok_or(AuthError::Unauthorized)?;
        // No password over the size limit was ever accepted, so none can match.
        let verification = match Password::for_login(password) {
            Some(password) => {
                self.passwords
                    .verify(&password, Some(stored.password_hash.expose()))
                    .await?
            }
            None => Verification::Mismatch,
        };
        if verification == Verification::Mismatch {
            let event = Event::new(failure, Some(account.id), client)
                .with(json!({"reason": "invalid_credentials"}));
            self.audit.record(&self.db, event).await?;
            return Err(AuthError::InvalidCredentials);
        }
        self.limiter
            .refund(&self.db, LimitKind::LoginAccount, &account.email)
            .await?;
        // Two-factor step-up (§11) goes here: with a second factor on, `mfa_code` is needed
        // too (403 `mfa_required` without it, 400 `invalid_mfa_code` when wrong).
        Ok(Proven(stored))
    }
}
