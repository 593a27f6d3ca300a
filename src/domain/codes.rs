//! One-time codes: the one place that issues, checks and burns the codes the service mails.
//!
//! One row per (address, purpose). Issuing replaces the row's code, which voids the older
//! one; a code only matches rows of its own purpose. Codes are stored as MACs salted with the
//! row id — keyed (HMAC-SHA-256) when encryption keys are set, since six digits are too few
//! for a plain hash to hide from whoever reads a backup — and compared in constant time. The
//! short lifetime and the attempt limit are what make six digits safe to guess at online.
//! The mail carrying a code is stored in the outbox in the transaction that issues it.

use std::{sync::Arc, time::Duration};

use rand::{Rng, rngs::OsRng};
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use uuid::Uuid;

use super::{
    email::Email,
    error::AuthError,
    limits::{LimitKind, Limiter},
    outbox::{Letter, Outbox},
};
use crate::{
    clock::{Clock, delta, seconds_until},
    config::Config,
    mail::{Mail, templates},
    store::{self, SecretText, codes, users},
    vault::Vault,
};

pub const OTP_LENGTH: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Registration,
    PasswordReset,
    /// A second factor by mail: turning it on, signing in, and confirming a sensitive change.
    SecondFactor,
    /// A new address for an account: the row is keyed by the new address and held for the
    /// account (`user_id`), which does not have that address yet.
    EmailChange,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Registration => "registration",
            Purpose::PasswordReset => "password_reset",
            Purpose::SecondFactor => "second_factor",
            Purpose::EmailChange => "email_change",
        }
    }

    /// The mail a code of this purpose goes out in when its owner asks for it.
    fn template(self) -> fn(&str, Duration) -> Mail {
        match self {
            Purpose::Registration => templates::verification_code,
            Purpose::PasswordReset => templates::password_reset_code,
            Purpose::SecondFactor => templates::sign_in_code,
            Purpose::EmailChange => templates::email_change_code,
        }
    }

    /// Whether a code of this purpose can serve `user`, the account holding the address it
    /// is mailed to: verification codes go to accounts still unverified, reset codes to any
    /// active account, second-factor codes to any account not disabled (restoring one
    /// pending deletion needs them too). Email-change codes go to an address no account
    /// holds yet, and only on a request that names its account, never through
    /// [`Codes::send`].
    fn serves(self, user: &users::Model) -> bool {
        match self {
            Purpose::Registration => user.is_active && !user.is_verified,
            Purpose::PasswordReset => user.is_active,
            Purpose::SecondFactor => user.status != users::DISABLED,
            Purpose::EmailChange => false,
        }
    }
}

/// How one code goes out: its purpose, the mail it travels in, and whether the resend cooldown
/// applies.
struct Sending {
    purpose: Purpose,
    mail: fn(&str, Duration) -> Mail,
    cooldown: bool,
}

/// A freshly drawn code, to be mailed once and then forgotten.
pub struct OtpCode(String);

impl OtpCode {
    /// Six digits, uniform, from the operating system's CSPRNG.
    pub fn generate() -> OtpCode {
        OtpCode(format!("{:06}", OsRng.gen_range(0..1_000_000u32)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

pub struct Codes {
    db: DatabaseConnection,
    ttl: Duration,
    max_attempts: i32,
    resend_cooldown: Duration,
    clock: Arc<dyn Clock>,
    limiter: Arc<Limiter>,
    vault: Arc<Vault>,
    outbox: Arc<Outbox>,
}

impl Codes {
    pub fn new(
        db: DatabaseConnection,
        config: &Config,
        clock: Arc<dyn Clock>,
        limiter: Arc<Limiter>,
        vault: Arc<Vault>,
        outbox: Arc<Outbox>,
    ) -> Codes {
        Codes {
            db,
            ttl: config.otp_ttl,
            max_attempts: i32::try_from(config.otp_max_attempts).unwrap_or(i32::MAX),
            resend_cooldown: config.otp_resend_cooldown,
            clock,
            limiter,
            vault,
            outbox,
        }
    }

    /// Seconds a code lives.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl.as_secs()
    }

    /// Records that a code of `purpose` goes to `email` now, enforcing the resend cooldown
    /// whether or not an account exists. A code is drawn, and its mail stored in the outbox,
    /// only when `recipient` names the account it is for: the caller answers alike either way.
    pub async fn issue(
        &self,
        txn: &DatabaseTransaction,
        email: &Email,
        purpose: Purpose,
        recipient: Option<Uuid>,
    ) -> Result<(), AuthError> {
        let sending = Sending {
            purpose,
            mail: purpose.template(),
            cooldown: true,
        };
        self.issue_as(txn, email, sending, recipient).await
    }

    /// Mails a reset code to the account `recipient` at `email` because an admin asked:
    /// `mail` is the reset mail, or the invitation of an account created without a password.
    /// The resend cooldown does not apply: it keeps anonymous callers from mailing an address
    /// over and over, whereas this caller is signed in, holds `admin` and is audited, and may
    /// be helping the owner right after the owner's own attempt. The per-address mail limit
    /// (`AUTHGATE_LIMIT_MAIL_ADDRESS`) still applies, so not even a stolen admin token can
    /// flood an inbox.
    pub async fn issue_for_admin(
        &self,
        txn: &DatabaseTransaction,
        email: &Email,
        recipient: Uuid,
        mail: fn(&str, Duration) -> Mail,
    ) -> Result<(), AuthError> {
        let sending = Sending {
            purpose: Purpose::PasswordReset,
            mail,
            cooldown: false,
        };
        self.issue_as(txn, email, sending, Some(recipient)).await
    }

    async fn issue_as(
        &self,
        txn: &DatabaseTransaction,
        email: &Email,
        sending: Sending,
        recipient: Option<Uuid>,
    ) -> Result<(), AuthError> {
        let Sending {
            purpose,
            mail,
            cooldown,
        } = sending;
        let now = self.clock.now();
        let existing = codes::lock(txn, email.as_str(), purpose.as_str()).await?;
        if let Some(sent_at) = existing
            .as_ref()
            .and_then(|row| row.last_sent_at)
            .filter(|_| cooldown)
        {
            let allowed_at = sent_at + delta(self.resend_cooldown);
            if now < allowed_at {
                return Err(AuthError::ResendTooSoon {
                    retry_after_seconds: seconds_until(now, allowed_at).max(1),
                });
            }
        }
        // Counted for every address alike, so the limit reveals nothing either.
        self.limiter
            .hit(txn, LimitKind::MailAddress, email.as_str())
            .await?;
        let row_id = existing.as_ref().map_or_else(Uuid::new_v4, |row| row.id);
        let code = recipient.map(|_| OtpCode::generate());
        let code_hash = code
            .as_ref()
            .map(|code| self.vault.mac(row_id.as_bytes(), code.expose()));
        let row = codes::Model {
            id: row_id,
            email: email.to_string(),
            purpose: purpose.as_str().to_string(),
            user_id: recipient,
            code_hash: code_hash.clone().map(Into::into),
            attempts: 0,
            created_at: now,
            expires_at: now + delta(self.ttl),
            consumed_at: None,
            last_sent_at: Some(now),
        };
        match codes::save(txn, row, existing.is_some()).await {
            Ok(()) => {}
            // A concurrent request for the same address won the insert: it is the one mailing.
            Err(err) if store::is_unique_violation(&err) => return Err(self.resend_refusal()),
            Err(err) => return Err(err.into()),
        }
        if let (Some(code), Some(code_hash)) = (code, code_hash) {
            let letter = Letter {
                to: email.as_str(),
                mail: mail(code.expose(), self.ttl),
                user_id: recipient,
                code: Some((row_id, code_hash)),
            };
            self.outbox.enqueue(txn, letter).await?;
        }
        Ok(())
    }

    /// Mails a new code of `purpose` to `email` if the address has an account the code can
    /// serve, and answers the same either way.
    pub async fn send(&self, email: &Email, purpose: Purpose) -> Result<(), AuthError> {
        let txn = store::begin(&self.db).await?;
        let recipient = users::find_by_email(&txn, email.as_str())
            .await?
            .filter(|user| purpose.serves(user));
        self.issue(&txn, email, purpose, recipient.map(|user| user.id))
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The answer for a second code racing the first one to the same address.
    pub fn resend_refusal(&self) -> AuthError {
        AuthError::ResendTooSoon {
            retry_after_seconds: self.resend_cooldown.as_secs().max(1),
        }
    }

    /// Checks `code` against the live code of `purpose` for `email` in a new transaction. A
    /// wrong guess is counted (and committed, even though the request fails); a right one is
    /// consumed if asked. Returns the transaction, for the caller's further changes, and the
    /// account the code was issued to.
    pub async fn check(
        &self,
        email: &Email,
        purpose: Purpose,
        code: &str,
        consume: bool,
    ) -> Result<(DatabaseTransaction, Option<Uuid>), AuthError> {
        let txn = store::begin(&self.db).await?;
        self.check_in(txn, email, purpose, Some(code), consume)
            .await
    }

    /// [`Codes::check`] inside a transaction the caller began (and may have locked rows in).
    /// `offered: None` is a guess already known to be wrong (the request failed another
    /// check that counts like a wrong code): it is counted like one.
    pub async fn check_in(
        &self,
        txn: DatabaseTransaction,
        email: &Email,
        purpose: Purpose,
        offered: Option<&str>,
        consume: bool,
    ) -> Result<(DatabaseTransaction, Option<Uuid>), AuthError> {
        let now = self.clock.now();
        let Some(row) = codes::lock(&txn, email.as_str(), purpose.as_str()).await? else {
            // No code was ever issued here. Guesses still count, on a placeholder row, so the
            // address locks exactly like a real code would: `otp_locked` must not tell which
            // addresses have accounts.
            let placeholder = codes::Model {
                id: Uuid::new_v4(),
                email: email.to_string(),
                purpose: purpose.as_str().to_string(),
                user_id: None,
                code_hash: None,
                attempts: 1,
                created_at: now,
                expires_at: now,
                consumed_at: None,
                last_sent_at: None,
            };
            // Losing an insert race means a concurrent guess already counted.
            if codes::save(&txn, placeholder, false).await.is_ok() {
                txn.commit().await?;
            }
            return Err(AuthError::InvalidOtp);
        };
        if row.attempts >= self.max_attempts {
            return Err(AuthError::OtpLocked);
        }
        let usable = row.consumed_at.is_none() && now < row.expires_at;
        let stored_hash = row.code_hash.clone().filter(|_| usable);
        let matches = |hash: &SecretText| {
            offered.is_some_and(|code| {
                self.vault
                    .mac_matches(row.id.as_bytes(), code.trim(), hash.expose())
            })
        };
        let Some(stored_hash) = stored_hash.filter(matches) else {
            // Every miss counts, whatever the reason; the count is committed even though the
            // request fails.
            codes::count_miss(&txn, row.id, self.max_attempts).await?;
            txn.commit().await?;
            return Err(AuthError::InvalidOtp);
        };
        if consume && !codes::consume(&txn, row.id, stored_hash.expose(), now).await? {
            return Err(AuthError::InvalidOtp);
        }
        Ok((txn, row.user_id))
    }

    /// Checks and consumes `code` against the live code of `purpose` held for `user_id`,
    /// wherever it was mailed: for codes keyed by an address the account does not have yet
    /// (a new address). Returns the transaction and that address. Misses count like any other.
    pub async fn check_held(
        &self,
        txn: DatabaseTransaction,
        user_id: Uuid,
        purpose: Purpose,
        code: &str,
    ) -> Result<(DatabaseTransaction, Email), AuthError> {
        let Some(row) = codes::lock_held_by(&txn, user_id, purpose.as_str()).await? else {
            // Nothing pending for this account: there is no code to guess at.
            return Err(AuthError::InvalidOtp);
        };
        let address = Email::parse(&row.email)
            .map_err(|_| AuthError::internal("the address of a stored code no longer parses"))?;
        let (txn, holder) = self
            .check_in(txn, &address, purpose, Some(code), true)
            .await?;
        // The row was locked above, so it cannot have passed to another account meanwhile.
        if holder != Some(user_id) {
            return Err(AuthError::InvalidOtp);
        }
        Ok((txn, address))
    }

    /// Voids the live codes held for an account, of one purpose or (`None`) of all, keeping
    /// each row's resend cooldown: they stop working at once, and their mails still waiting
    /// in the outbox are dropped.
    pub async fn void_held_by(
        &self,
        txn: &DatabaseTransaction,
        user_id: Uuid,
        purpose: Option<Purpose>,
    ) -> Result<(), AuthError> {
        codes::void_held_by(txn, user_id, purpose.map(Purpose::as_str)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..200 {
            let code = OtpCode::generate();
            assert_eq!(code.expose().len(), OTP_LENGTH);
            assert!(code.expose().chars().all(|c| c.is_ascii_digit()));
        }
    }
}
