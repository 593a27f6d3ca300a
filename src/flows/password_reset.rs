//! Forgotten passwords: a reset code by mail, checked, then exchanged for a new password.

use std::sync::Arc;

use poem_openapi::Object;
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{CodeRequest, EmailRequest};
use crate::{
    domain::{
        AuthError, ClientInfo,
        audit::Action,
        codes::{Codes, Purpose},
        email::Email,
        error::FieldErrors,
        limits::{LimitKind, Limiter},
        parts::Parts,
        passwords::{Passwords, REPLACEMENT_FIELDS},
    },
    store::users,
};

// No `Debug`: it carries the code and the password.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct ResetRequest {
    pub email: String,
    /// The 6-digit reset code from the mail.
    pub otp: String,
    /// The same rules as at registration.
    pub new_password: String,
    pub confirm_password: String,
}

pub struct PasswordReset {
    db: DatabaseConnection,
    limiter: Arc<Limiter>,
    codes: Arc<Codes>,
    passwords: Arc<Passwords>,
}

impl PasswordReset {
    pub fn new(parts: &Parts) -> PasswordReset {
        PasswordReset {
            db: parts.db.clone(),
            limiter: Arc::clone(&parts.limiter),
            codes: Arc::clone(&parts.codes),
            passwords: Arc::clone(&parts.passwords),
        }
    }

    /// Mails a reset code if the address has an active account, answering alike either way.
    pub async fn send_code(&self, request: &EmailRequest) -> Result<(), AuthError> {
        let email = Email::parse_field("email", &request.email)?;
        self.codes.send(&email, Purpose::PasswordReset).await
    }

    /// Checks a reset code without using it up: the reset itself needs it again.
    pub async fn verify_code(
        &self,
        request: &CodeRequest,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.limiter
            .hit(&self.db, LimitKind::OtpVerifyIp, &client.limit_subject())
            .await?;
        let (email, code) = request.parse()?;
        let (txn, _) = self
            .codes
            .check(&email, Purpose::PasswordReset, code, false)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Sets a new password with a reset code. The code is consumed, every session revoked
    /// (whoever knew the old password is signed out), the address counts as verified (the
    /// code proved it), and the owner is told by mail.
    pub async fn reset(&self, request: ResetRequest, client: &ClientInfo) -> Result<(), AuthError> {
        self.limiter
            .hit(&self.db, LimitKind::OtpVerifyIp, &client.limit_subject())
            .await?;
        let code_request = CodeRequest {
            email: request.email,
            otp: request.otp,
        };
        let (email, code) = code_request.parse()?;
        let mut errors = FieldErrors::new();
        let password = self.passwords.check_new(
            &mut errors,
            &REPLACEMENT_FIELDS,
            Some(&email),
            &request.new_password,
            &request.confirm_password,
        );
        let password = errors.finish(password)?;

        // Check the code before paying for a hash, then take it for good in the transaction
        // that changes the password.
        let (txn, _) = self
            .codes
            .check(&email, Purpose::PasswordReset, code, false)
            .await?;
        txn.commit().await?;
        let password_hash = self.passwords.hash(&password).await?;
        let (txn, recipient) = self
            .codes
            .check(&email, Purpose::PasswordReset, code, true)
            .await?;
        let user_id = recipient.ok_or(AuthError::InvalidOtp)?;
        let user = users::lock(&txn, user_id)
            .await?
            .filter(|user| user.is_active)
            .ok_or(AuthError::InvalidOtp)?;
        self.passwords
            .replace(&txn, user.id, password_hash, Action::PasswordReset, client)
            .await?;
        txn.commit().await?;
        Ok(())
    }
}
