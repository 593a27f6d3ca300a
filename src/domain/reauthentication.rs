//! Proving, before a sensitive change to a signed-in account (its password, its address, its
//! deletion), that the caller is its owner and not someone holding a stolen access token: the
//! current password again, counted against the login lockout (§8), and, with two-factor
//! sign-in on, a second-factor code too (the step-up of §11).

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use serde_json::json;

use super::{
    accounts::Account,
    audit::{Action, AuditTrail, Event},
    client::ClientInfo,
    error::AuthError,
    passwords::Passwords,
    second_factors::SecondFactors,
    sessions::{Amr, WayIn},
};
use crate::store::users;

pub struct Reauthentication {
    db: DatabaseConnection,
    audit: Arc<AuditTrail>,
    passwords: Arc<Passwords>,
    second_factors: Arc<SecondFactors>,
}

/// The account's row as it was when the owner was proven. The proof is made outside the
/// transaction of the change (hashing is slow); [`Proven::still_holds`] confirms it inside.
pub struct Proven {
    user: users::Model,
    with_second_factor: bool,
}

impl Proven {
    /// Whether the password proven earlier is still the account's: a password change or
    /// reset committed meanwhile must win over a change authorised by the old password.
    pub fn still_holds(&self, current: &users::Model) -> bool {
        current.password_hash == self.user.password_hash
    }

    /// How a session opened on this proof was authenticated.
    pub fn way_in(&self) -> WayIn {
        match self.with_second_factor {
            true => WayIn::with(Amr::PasswordAndCode),
            false => WayIn::PASSWORD,
        }
    }
}

impl Reauthentication {
    pub fn new(
        db: DatabaseConnection,
        audit: Arc<AuditTrail>,
        passwords: Arc<Passwords>,
        second_factors: Arc<SecondFactors>,
    ) -> Reauthentication {
        Reauthentication {
            db,
            audit,
            passwords,
            second_factors,
        }
    }

    /// Checks `password` against the account's (a wrong one is recorded as `failure` and is
    /// `InvalidCredentials`), then, when the account has a second factor, `mfa_code` (without
    /// it `MfaRequired` with the account's methods; a wrong one `InvalidMfaCode`).
    pub async fn confirm(
        &self,
        account: &Account,
        password: &str,
        mfa_code: Option<&str>,
        failure: Action,
        client: &ClientInfo,
    ) -> Result<Proven, AuthError> {
        let user = users::find(&self.db, account.id)
            .await?
            .ok_or(AuthError::Unauthorized)?;
        if let Err(err) = self.passwords.confirm_current(&user, password).await {
            if matches!(err, AuthError::InvalidCredentials) {
                let event = Event::new(failure, Some(account.id), client)
                    .with(json!({"reason": "invalid_credentials"}));
                self.audit.record(&self.db, event).await?;
            }
            return Err(err);
        }
        let with_second_factor = !SecondFactors::sign_in_methods(&user).is_empty();
        self.second_factors.step_up(&user, mfa_code, client).await?;
        Ok(Proven {
            user,
            with_second_factor,
        })
    }
}
