//! Passwords as a service: the policy for new ones, hashing and verifying off the async
//! threads, and the tail every password replacement shares (store, sign out everywhere,
//! audit, tell the owner).

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction};
use uuid::Uuid;

use super::{
    audit::{Action, AuditTrail, Event},
    client::ClientInfo,
    email::Email,
    error::{AuthError, FieldErrors},
    hashing::{HashingPool, Verification},
    limits::{LimitKind, Limiter},
    outbox::{Letter, Outbox},
    password_policy::{Password, check_confirmation},
};
use crate::{
    clock::Clock,
    mail::templates,
    store::{mfa_challenges, sessions, trusted_devices, users},
};

pub struct Passwords {
    db: DatabaseConnection,
    hashing: Arc<HashingPool>,
    limiter: Arc<Limiter>,
    min_length: usize,
    clock: Arc<dyn Clock>,
    audit: Arc<AuditTrail>,
    outbox: Arc<Outbox>,
}

/// Where a new password and its confirmation were sent: `password`/`password2` at
/// registration, `new_password`/`confirm_password` elsewhere.
pub struct NewPasswordFields {
    pub password: &'static str,
    pub confirmation: &'static str,
}

pub const REGISTRATION_FIELDS: NewPasswordFields = NewPasswordFields {
    password: "password",
    confirmation: "password2",
};

pub const REPLACEMENT_FIELDS: NewPasswordFields = NewPasswordFields {
    password: "new_password",
    confirmation: "confirm_password",
};

impl Passwords {
    pub fn new(
        db: DatabaseConnection,
        hashing: Arc<HashingPool>,
        limiter: Arc<Limiter>,
        min_length: usize,
        clock: Arc<dyn Clock>,
        audit: Arc<AuditTrail>,
        outbox: Arc<Outbox>,
    ) -> Passwords {
        Passwords {
            db,
            hashing,
            limiter,
            min_length,
            clock,
            audit,
            outbox,
        }
    }

    pub fn hashing(&self) -> &HashingPool {
        &self.hashing
    }

    /// Checks a new password and its confirmation, recording every problem under `fields`:
    /// the same rules wherever a password is chosen. Without a valid `email` the policy (which
    /// compares against the address) waits until the address is fixed.
    pub fn check_new(
        &self,
        errors: &mut FieldErrors,
        fields: &NewPasswordFields,
        email: Option<&Email>,
        password: &str,
        confirmation: &str,
    ) -> Option<Password> {
        let password_ok = self.check_chosen(errors, fields.password, email, password);
        check_confirmation(errors, fields.confirmation, password, confirmation);
        password_ok
    }

    /// Checks a new password sent without a confirmation (an admin setting one), recording
    /// its problems under `field`.
    pub fn check_chosen(
        &self,
        errors: &mut FieldErrors,
        field: &str,
        email: Option<&Email>,
        password: &str,
    ) -> Option<Password> {
        let checked = match email {
            Some(email) => Some(Password::new_checked(
                password.to_string(),
                self.min_length,
                email,
            )),
            None if password.is_empty() => Some(Err(vec!["This field is required.".into()])),
            // Judged once the address is valid; the address's problem is already recorded.
            None => None,
        };
        checked.and_then(|checked| errors.check(field, checked))
    }

    pub async fn hash(&self, password: &Password) -> Result<String, AuthError> {
        self.hashing.hash(password).await
    }

    /// Checks a password against a stored hash. Without one (an unknown account) a dummy hash
    /// is verified instead, so the answer takes as long as for a real account.
    pub async fn verify(
        &self,
        password: &Password,
        stored_hash: Option<&str>,
    ) -> Result<Verification, AuthError> {
        match stored_hash {
            Some(hash) => self.hashing.verify(password, hash).await,
            None => {
                self.hashing.verify_dummy(password).await?;
                Ok(Verification::Mismatch)
            }
        }
    }

    /// Checks the password a signed-in user typed to confirm a sensitive change. A stolen
    /// access token must not become a way around the login lockout, so each attempt counts
    /// against the account's login allowance, and a right password gives it back.
    pub async fn confirm_current(
        &self,
        user: &users::Model,
        offered: &str,
    ) -> Result<(), AuthError> {
        self.limiter
            .hit(&self.db, LimitKind::LoginAccount, &user.email)
            .await?;
        // No password over the size limit was ever accepted, so none can match.
        let verification = match Password::for_login(offered.to_string()) {
            Some(offered) => {
                self.verify(&offered, Some(user.password_hash.expose()))
                    .await?
            }
            None => Verification::Mismatch,
        };
        if verification == Verification::Mismatch {
            return Err(AuthError::InvalidCredentials);
        }
        self.limiter
            .refund(&self.db, LimitKind::LoginAccount, &user.email)
            .await
    }

    /// Stores a new password hash inside `txn`, ends every session of the account (whoever
    /// knew the old password is signed out), records `action` and tells the owner by mail.
    pub async fn replace(
        &self,
        txn: &DatabaseTransaction,
        user_id: Uuid,
        new_hash: String,
        action: Action,
        client: &ClientInfo,
    ) -> Result<users::Model, AuthError> {
        let now = self.clock.now();
        // A reset code proves the address as well as a verification code does.
        let proves_address = action == Action::PasswordReset;
        let user = users::set_password(txn, user_id, new_hash, proves_address, now).await?;
        sessions::revoke_all_of(txn, user_id, now).await?;
        // A device trusted by whoever knew the old password is no longer trusted either, and
        // a sign-in that proved the old password cannot finish with its second factor.
        trusted_devices::delete_all_of(txn, user_id).await?;
        mfa_challenges::delete_all_of(txn, user_id).await?;
        self.audit
            .record(txn, Event::new(action, Some(user_id), client))
            .await?;
        let notice = Letter {
            to: &user.email,
            mail: templates::password_changed(),
            user_id: Some(user_id),
            code: None,
        };
        self.outbox.enqueue(txn, notice).await?;
        Ok(user)
    }
}
