//! The signed-in user's second factors and trusted devices (contract §11).

use std::sync::Arc;

use poem_openapi::Object;
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::{
    Account, AuthError, ClientInfo,
    error::FieldErrors,
    parts::Parts,
    second_factors::{Enabled, Factor, MfaStatus, SecondFactors, TotpEnrolment},
    trusted_devices::{DeviceView, TrustedDevices},
};
use crate::store::users;

/// The password, confirming a change to the account's second factors.
// No `Debug`: it carries the password.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct PasswordConfirmation {
    pub password: String,
}

/// A code proving the new factor works.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct FactorCode {
    /// The 6-digit code from the app or the mail.
    pub code: String,
}

/// The password and a code of any factor (app, mail or recovery code).
// No `Debug`: it carries secrets.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct PasswordAndCode {
    pub password: String,
    /// A TOTP code, a mailed sign-in code or a recovery code.
    pub code: String,
}

pub struct TwoFactor {
    second_factors: Arc<SecondFactors>,
    devices: Arc<TrustedDevices>,
}

impl TwoFactor {
    pub fn new(parts: &Parts) -> TwoFactor {
        TwoFactor {
            second_factors: Arc::clone(&parts.second_factors),
            devices: Arc::clone(&parts.devices),
        }
    }

    pub async fn status(&self, account: &Account) -> Result<MfaStatus, AuthError> {
        self.second_factors.status(account.id).await
    }

    pub async fn start_totp(
        &self,
        account: &Account,
        request: &PasswordConfirmation,
    ) -> Result<TotpEnrolment, AuthError> {
        require("password", &request.password)?;
        self.second_factors
            .start_totp(account.id, &request.password)
            .await
    }

    pub async fn confirm_totp(
        &self,
        account: &Account,
        request: &FactorCode,
        client: &ClientInfo,
    ) -> Result<Enabled, AuthError> {
        require("code", &request.code)?;
        self.second_factors
            .confirm_totp(account.id, &request.code, client)
            .await
    }

    pub async fn start_email(
        &self,
        account: &Account,
        request: &PasswordConfirmation,
    ) -> Result<u64, AuthError> {
        require("password", &request.password)?;
        self.second_factors
            .start_email(account.id, &request.password)
            .await
    }

    pub async fn confirm_email(
        &self,
        account: &Account,
        request: &FactorCode,
        client: &ClientInfo,
    ) -> Result<Enabled, AuthError> {
        require("code", &request.code)?;
        self.second_factors
            .confirm_email(account.id, &request.code, client)
            .await
    }

    /// Turns the factor `method` names off; an unknown name is as unknown as a missing route.
    pub async fn disable(
        &self,
        account: &Account,
        method: &str,
        request: &PasswordAndCode,
        client: &ClientInfo,
    ) -> Result<Vec<String>, AuthError> {
        let factor = Factor::parse(method).ok_or(AuthError::NotFound)?;
        require_both(request)?;
        self.second_factors
            .disable(account.id, factor, &request.password, &request.code, client)
            .await
    }

    pub async fn new_recovery_codes(
        &self,
        account: &Account,
        request: &PasswordAndCode,
        client: &ClientInfo,
    ) -> Result<Vec<String>, AuthError> {
        require_both(request)?;
        self.second_factors
            .new_recovery_codes(account.id, &request.password, &request.code, client)
            .await
    }

    /// Mails a sign-in code to the signed-in user, for a change that asks for one.
    pub async fn mail_step_up_code(&self, account: &Account) -> Result<u64, AuthError> {
        let user = self.user(account).await?;
        if !SecondFactors::sign_in_methods(&user)
            .iter()
            .any(|method| method == "email")
        {
            let mut errors = FieldErrors::new();
            errors.add(
                "method",
                "This account does not receive sign-in codes by mail.",
            );
            return Err(AuthError::Validation(errors));
        }
        self.second_factors.mail_code(&user).await
    }

    pub async fn devices(
        &self,
        account: &Account,
        current: Option<Uuid>,
    ) -> Result<Vec<DeviceView>, AuthError> {
        self.devices.list(account.id, current).await
    }

    pub async fn forget_device(
        &self,
        account: &Account,
        device_id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.devices.revoke(account.id, device_id, client).await
    }

    pub async fn forget_all_devices(
        &self,
        account: &Account,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.devices.forget_all(account.id, client).await
    }

    async fn user(&self, account: &Account) -> Result<users::Model, AuthError> {
        self.second_factors.user(account.id).await
    }
}

fn require(field: &str, value: &str) -> Result<(), AuthError> {
    let mut errors = FieldErrors::new();
    if value.trim().is_empty() {
        errors.add(field, "This field is required.");
    }
    errors.into_result()
}

fn require_both(request: &PasswordAndCode) -> Result<(), AuthError> {
    let mut errors = FieldErrors::new();
    for (field, value) in [("password", &request.password), ("code", &request.code)] {
        if value.trim().is_empty() {
            errors.add(field, "This field is required.");
        }
    }
    errors.into_result()
}
