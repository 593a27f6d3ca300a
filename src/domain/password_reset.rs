//! Forgotten passwords: a reset code by mail, checked, then exchanged for a new password.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, QuerySelect};

use serde_json::json;

use super::{
    AuthService, ClientInfo,
    audit::{Action, Outcome},
    codes::Purpose,
    error::{AuthError, FieldErrors},
    limits::LimitKind,
    registration::parse_email_and_code,
    sessions::revoke_sessions_of,
};
use crate::store::users;

/// What a person sends to set a new password with a reset code, unparsed.
/// No `Debug`: it carries the code and the password.
#[derive(Default)]
pub struct ResetForm {
    pub email: String,
    pub otp: String,
    pub new_password: String,
    pub confirm_password: String,
}

impl AuthService {
    /// Checks a reset code without using it up: the reset itself needs it again.
    pub async fn verify_reset_code(
        &self,
        email: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.hit(&self.db, LimitKind::OtpVerifyIp, &client.limit_subject())
            .await?;
        let (email, code) = parse_email_and_code(email, code)?;
        let (txn, _) = self
            .begin_with_code(&email, Purpose::PasswordReset, &code, false)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Sets a new password with a reset code. The code is consumed, every session revoked
    /// (whoever knew the old password is signed out), the address counts as verified (the
    /// code proved it), and the owner is told by mail.
    pub async fn reset_password(
        &self,
        form: ResetForm,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.hit(&self.db, LimitKind::OtpVerifyIp, &client.limit_subject())
            .await?;
        let (email, code) = parse_email_and_code(&form.email, &form.otp)?;
        let mut errors = FieldErrors::new();
        let password = self.check_new_password(
            &mut errors,
            &email,
            &form.new_password,
            &form.confirm_password,
        );
        errors.into_result()?;
        let password =
            password.ok_or_else(|| AuthError::Internal("password check lost its value".into()))?;

        // Check the code before paying for a hash, then take it for good in the transaction
        // that changes the password.
        let (txn, _) = self
            .begin_with_code(&email, Purpose::PasswordReset, &code, false)
            .await?;
        txn.commit().await?;
        let password_hash = self.hashing.hash(&password).await?;
        let (txn, code_row) = self
            .begin_with_code(&email, Purpose::PasswordReset, &code, true)
            .await?;
        let user_id = code_row.user_id.ok_or(AuthError::InvalidOtp)?;
        let user = users::Entity::find_by_id(user_id)
            .lock_exclusive()
            .one(&txn)
            .await?
            .filter(|user| user.is_active)
            .ok_or(AuthError::InvalidOtp)?;
        let now = self.clock.now();
        let mut user = user.into_active_model();
        user.password_hash = Set(password_hash);
        user.is_verified = Set(true);
        user.updated_at = Set(now);
        user.update(&txn).await?;
        revoke_sessions_of(&txn, user_id, now).await?;
        self.audit(
            &txn,
            Action::PasswordReset,
            Outcome::Success,
            Some(user_id),
            client,
            json!({}),
        )
        .await?;
        txn.commit().await?;

        self.notify_password_changed(email.as_str()).await;
        Ok(())
    }
}
