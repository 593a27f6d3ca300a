//! Passwords: the policy a new password must meet, and a wrapper that keeps it out of logs.

use std::{collections::HashSet, fmt, sync::LazyLock};

use super::{email::Email, error::FieldErrors};

/// Passwords longer than this are refused outright, so nobody can make us hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common_passwords.txt").lines().collect());

/// A password as typed by a person. `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl Password {
    /// A password offered to log in: no policy applies (older passwords may predate it), only
    /// the size limit, which `None` reports.
    pub fn for_login(raw: String) -> Option<Password> {
        (raw.len() <= MAX_PASSWORD_BYTES).then_some(Password(raw))
    }

    /// A new password, checked against every rule at once so a person sees all problems.
    pub fn new_checked(
        raw: String,
        min_length: usize,
        email: &Email,
    ) -> Result<Password, Vec<String>> {
        if raw.is_empty() {
            return Err(vec!["This field is required.".into()]);
        }
        let mut problems = Vec::new();
        if raw.chars().count() < min_length {
            problems.push(format!(
                "This password is too short. It must contain at least {min_length} characters."
            ));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            problems.push(format!(
                "This password is too long: at most {MAX_PASSWORD_BYTES} bytes."
            ));
        }
        if raw.chars().all(|c| c.is_ascii_digit()) {
            problems.push("This password is entirely numeric.".into());
        }
        let lowered = raw.to_lowercase();
        if COMMON_PASSWORDS.contains(lowered.as_str()) {
            problems.push("This password is too common.".into());
        }
        if lowered == email.as_str() || lowered == email.local_part() {
            problems.push("This password is too similar to the email address.".into());
        }
        if problems.is_empty() {
            Ok(Password(raw))
        } else {
            Err(problems)
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Records a problem under `field` unless `confirmation` repeats `password`.
pub fn check_confirmation(
    errors: &mut FieldErrors,
    field: &str,
    password: &str,
    confirmation: &str,
) {
    if confirmation.is_empty() {
        errors.add(field, "This field is required.");
    } else if confirmation != password {
        errors.add(field, "The two password fields didn't match.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("jane.doe@example.com").unwrap()
    }

    fn problems(raw: &str) -> Vec<String> {
        Password::new_checked(raw.to_string(), 8, &email())
            .err()
            .unwrap_or_default()
    }

    #[test]
    fn a_sound_password_passes() {
        assert!(problems("correct horse battery").is_empty());
    }

    #[test]
    fn each_rule_has_its_message() {
        assert!(problems("Sh0rt!")[0].contains("too short"));
        assert!(problems("12345098765")[0].contains("numeric"));
        assert!(problems("Password123")[0].contains("too common"));
        assert!(problems("JANE.DOE")[0].contains("similar"));
        assert!(problems("jane.doe@example.com")[0].contains("similar"));
        assert!(problems(&"x".repeat(1025))[0].contains("too long"));
        assert_eq!(problems("")[0], "This field is required.");
    }

    #[test]
    fn every_failed_rule_is_reported() {
        assert_eq!(problems("1234567").len(), 3, "short, numeric and common");
    }

    #[test]
    fn multibyte_characters_count_as_characters() {
        assert!(problems("ééééééé").iter().any(|p| p.contains("too short")));
        assert!(problems("éééééééé").is_empty());
        // 400 four-byte characters are 1600 bytes: over the byte limit.
        assert!(
            problems(&"🦀".repeat(400))
                .iter()
                .any(|p| p.contains("too long"))
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let password = Password::for_login("hunter2hunter2".into()).unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
    }
}
