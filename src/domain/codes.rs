//! One-time codes: six digits mailed to an address, for verification or password reset.
//!
//! One row per (address, purpose). Issuing replaces the row's code, which voids the older
//! one; a code only matches rows of its own purpose. Codes are stored as SHA-256 hashes salted
//! with the row id and compared in constant time. The short lifetime and the attempt limit
//! are what make six digits safe: a stolen hash is worthless minutes later.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use rand::{Rng, rngs::OsRng};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{self, Expr},
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{AuthService, email::Email, error::AuthError, limits::LimitKind};
use crate::clock::{delta, seconds_until};
use crate::store::{
    self,
    one_time_codes::{self, Entity as OneTimeCodes},
};

pub const OTP_LENGTH: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Registration,
    PasswordReset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Registration => "registration",
            Purpose::PasswordReset => "password_reset",
        }
    }
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

/// The outcome of issuing: the code to mail, or nothing when the address has no account the
/// code could serve (the caller answers alike either way).
pub struct Issued {
    pub code: Option<OtpCode>,
    row_id: Uuid,
}

/// The stored form of a code: SHA-256 over the row id (a per-row salt) and the digits.
pub fn hash_code(row_id: Uuid, code: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(row_id.as_bytes());
    hasher.update(code.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// Compares an offered code with a stored hash in constant time.
pub fn code_matches(row_id: Uuid, offered: &str, stored_hash: &str) -> bool {
    let offered = hash_code(row_id, offered.trim());
    offered.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

impl AuthService {
    /// Records that a code of `purpose` goes to `email` now, enforcing the resend cooldown
    /// whether or not an account exists. A code is drawn only when `recipient` names the
    /// account it is for.
    pub(super) async fn issue_code(
        &self,
        txn: &DatabaseTransaction,
        email: &Email,
        purpose: Purpose,
        recipient: Option<Uuid>,
    ) -> Result<Issued, AuthError> {
        let now = self.clock.now();
        let existing = find_locked(txn, email, purpose).await?;
        if let Some(sent_at) = existing.as_ref().and_then(|row| row.last_sent_at) {
            let allowed_at = sent_at + delta(self.config.otp_resend_cooldown);
            if now < allowed_at {
                return Err(AuthError::ResendTooSoon {
                    retry_after_seconds: seconds_until(now, allowed_at).max(1),
                });
            }
        }
        // Counted for every address alike, so the limit reveals nothing either.
        self.hit(txn, LimitKind::MailAddress, email.as_str())
            .await?;
        let row_id = existing.as_ref().map_or_else(Uuid::new_v4, |row| row.id);
        let code = recipient.map(|_| OtpCode::generate());
        let row = one_time_codes::ActiveModel {
            id: Set(row_id),
            email: Set(email.to_string()),
            purpose: Set(purpose.as_str().to_string()),
            user_id: Set(recipient),
            code_hash: Set(code.as_ref().map(|code| hash_code(row_id, code.expose()))),
            attempts: Set(0),
            created_at: Set(now),
            expires_at: Set(now + delta(self.config.otp_ttl)),
            consumed_at: Set(None),
            last_sent_at: Set(Some(now)),
        };
        if existing.is_some() {
            row.update(txn).await?;
        } else if let Err(err) = row.insert(txn).await {
            // A concurrent request for the same address won the insert: it is the one mailing.
            return Err(if store::is_unique_violation(&err) {
                AuthError::ResendTooSoon {
                    retry_after_seconds: self.config.otp_resend_cooldown.as_secs().max(1),
                }
            } else {
                err.into()
            });
        }
        Ok(Issued { code, row_id })
    }

    /// After a failed send, lifts the cooldown the issue set, so a resend works as soon as
    /// mail is back. The code itself stays valid.
    pub(super) async fn forget_send(&self, issued: &Issued) {
        let result = OneTimeCodes::update_many()
            .col_expr(
                one_time_codes::Column::LastSentAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(one_time_codes::Column::Id.eq(issued.row_id))
            .exec(&self.db)
            .await;
        if let Err(err) = result {
            tracing::error!(error = %err, "could not lift the resend cooldown after a mail failure");
        }
    }

    /// Checks `code` against the live code of `purpose` for `email`. A wrong guess is counted
    /// (and committed, even though the request fails); a right one is consumed if asked.
    /// Returns the transaction for the caller's further changes.
    pub(super) async fn check_code(
        &self,
        txn: DatabaseTransaction,
        email: &Email,
        purpose: Purpose,
        code: &str,
        consume: bool,
    ) -> Result<(DatabaseTransaction, one_time_codes::Model), AuthError> {
        let now = self.clock.now();
        let max_attempts = self.config.otp_max_attempts as i32;
        let Some(row) = find_locked(&txn, email, purpose).await? else {
            // No code was ever issued here. Guesses still count, on a placeholder row, so the
            // address locks exactly like a real code would: `otp_locked` must not tell which
            // addresses have accounts.
            let placeholder = one_time_codes::ActiveModel {
                id: Set(Uuid::new_v4()),
                email: Set(email.to_string()),
                purpose: Set(purpose.as_str().to_string()),
                user_id: Set(None),
                code_hash: Set(None),
                attempts: Set(1),
                created_at: Set(now),
                expires_at: Set(now),
                consumed_at: Set(None),
                last_sent_at: Set(None),
            };
            // Losing an insert race means a concurrent guess already counted.
            if placeholder.insert(&txn).await.is_ok() {
                txn.commit().await?;
            }
            return Err(AuthError::InvalidOtp);
        };
        if row.attempts >= max_attempts {
            return Err(AuthError::OtpLocked);
        }
        let usable = row.consumed_at.is_none() && now < row.expires_at;
        let stored_hash = row.code_hash.clone().filter(|_| usable);
        let Some(stored_hash) = stored_hash.filter(|hash| code_matches(row.id, code, hash)) else {
            // Every miss counts, whatever the reason, atomically so parallel guesses cannot
            // exceed the limit; the count is committed even though the request fails.
            OneTimeCodes::update_many()
                .col_expr(
                    one_time_codes::Column::Attempts,
                    sea_query::ExprTrait::add(Expr::col(one_time_codes::Column::Attempts), 1),
                )
                .filter(one_time_codes::Column::Id.eq(row.id))
                .filter(one_time_codes::Column::Attempts.lt(max_attempts))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            return Err(AuthError::InvalidOtp);
        };
        if consume {
            // Only one request can consume a code, however many race with the right one.
            let consumed = OneTimeCodes::update_many()
                .col_expr(one_time_codes::Column::ConsumedAt, Expr::value(now))
                .filter(one_time_codes::Column::Id.eq(row.id))
                .filter(one_time_codes::Column::ConsumedAt.is_null())
                .filter(one_time_codes::Column::CodeHash.eq(stored_hash))
                .exec(&txn)
                .await?;
            if consumed.rows_affected != 1 {
                return Err(AuthError::InvalidOtp);
            }
        }
        Ok((txn, row))
    }

    /// Starts a transaction and checks a code in it: the common first step of every flow
    /// that takes a code.
    pub(super) async fn begin_with_code(
        &self,
        email: &Email,
        purpose: Purpose,
        code: &str,
        consume: bool,
    ) -> Result<(DatabaseTransaction, one_time_codes::Model), AuthError> {
        let txn = crate::store::begin(&self.db).await?;
        self.check_code(txn, email, purpose, code, consume).await
    }
}

/// The code row of an address and purpose, locked for the rest of the transaction on
/// PostgreSQL (SQLite serialises transactions anyway).
async fn find_locked(
    txn: &impl ConnectionTrait,
    email: &Email,
    purpose: Purpose,
) -> Result<Option<one_time_codes::Model>, AuthError> {
    Ok(OneTimeCodes::find()
        .filter(one_time_codes::Column::Email.eq(email.as_str()))
        .filter(one_time_codes::Column::Purpose.eq(purpose.as_str()))
        .lock_exclusive()
        .one(txn)
        .await?)
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

    #[test]
    fn the_hash_depends_on_row_and_code() {
        let row = Uuid::new_v4();
        assert_eq!(hash_code(row, "123456"), hash_code(row, "123456"));
        assert_ne!(hash_code(row, "123456"), hash_code(row, "123457"));
        assert_ne!(
            hash_code(row, "123456"),
            hash_code(Uuid::new_v4(), "123456")
        );
    }
}
