//! The flows a person goes through — registration, sign-in, password reset, managing their
//! own account, and the admin directory — each composed of the parts in `domain` and none
//! calling another. `account_edit` (writing an edit, whoever makes it), `cursor` and
//! `listing` (pagination) are shared pieces, not flows.
//!
//! A flow's inputs are defined here, once: the handlers deserialize requests straight into
//! them, and their OpenAPI schemas are derived from them.

pub mod account_edit;
pub mod admin_audit;
pub mod admin_lifecycle;
pub mod admin_stats;
pub mod admin_users;
pub mod avatars;
pub mod cursor;
pub mod deletion;
pub mod email_change;
pub mod listing;
pub mod me;
pub mod my_data;
pub mod password_reset;
pub mod registration;
pub mod sign_in;
pub mod two_factor;
pub mod usernames;

use poem_openapi::Object;
use serde::Deserialize;

use crate::domain::{AuthError, email::Email, error::FieldErrors};

/// An address and the code mailed to it.
// No `Debug`: it carries a secret.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct CodeRequest {
    pub email: String,
    /// The 6-digit code from the mail.
    pub otp: String,
}

impl CodeRequest {
    fn parse(&self) -> Result<(Email, &str), AuthError> {
        parse_code(&self.email, &self.otp)
    }
}

/// An address and a code as sent, or every problem with them.
fn parse_code<'a>(email: &str, otp: &'a str) -> Result<(Email, &'a str), AuthError> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(email));
    let code = otp.trim();
    if code.is_empty() {
        errors.add("otp", "This field is required.");
    }
    let email = errors.finish(email)?;
    Ok((email, code))
}

/// An address alone.
#[derive(Debug, Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct EmailRequest {
    pub email: String,
}
