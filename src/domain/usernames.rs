//! Usernames: a public handle, kept as written and unique without regard to case.

use std::fmt;

use super::error::FieldErrors;
use crate::config::Usernames;

const MIN_LENGTH: usize = 3;
const MAX_LENGTH: usize = 30;

/// Names that would pass for the service, its staff or a route, refused whatever their case.
const RESERVED: &[&str] = &[
    "admin",
    "administrator",
    "root",
    "system",
    "support",
    "help",
    "authgate",
    "me",
    "null",
    "undefined",
    "api",
    "auth",
    "security",
    "staff",
    "moderator",
    "owner",
    "official",
    "postmaster",
    "webmaster",
    "hostmaster",
    "abuse",
    "noreply",
    "no-reply",
    "info",
    "contact",
    "everyone",
    "anonymous",
    "settings",
];

/// A username that passed every rule. Holding one means the checks were done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

/// Why a name cannot be a username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Invalid,
    Reserved,
}

impl Refusal {
    /// The sentence a person reads.
    pub fn message(self) -> String {
        match self {
            Refusal::Invalid => format!(
                "Use {MIN_LENGTH} to {MAX_LENGTH} letters, digits, '_', '.' or '-', starting with a letter or digit."
            ),
            Refusal::Reserved => "This username is reserved.".into(),
        }
    }

    /// The `reason` of `GET /auth/username-available`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid",
            Refusal::Reserved => "reserved",
        }
    }
}

impl Username {
    /// 3–30 ASCII letters, digits, `_`, `.` and `-`, starting with a letter or digit; not a
    /// reserved name. Surrounding spaces are trimmed; the case is kept.
    pub fn parse(raw: &str) -> Result<Username, Refusal> {
        let name = raw.trim();
        let valid = (MIN_LENGTH..=MAX_LENGTH).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(Refusal::Invalid);
        }
        if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(Refusal::Reserved);
        }
        Ok(Username(name.to_string()))
    }

    /// The form uniqueness is judged on.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form a field check records, for [`super::error::FieldErrors::check`].
    pub fn parse_field(raw: &str) -> Result<Username, Vec<String>> {
        Username::parse(raw).map_err(|refusal| vec![refusal.message()])
    }
}

/// Checks a `username` field as `policy` wants it, recording problems under `username`.
/// `sent` is `None` when the field was not sent and `Some(None)` when it was sent empty or
/// `null` (clearing it, where allowed); `creating` is true at registration, where a required
/// name must come. Returns the change to make: `None` to leave it, `Some(None)` to clear it.
pub fn check_field(
    policy: Usernames,
    errors: &mut FieldErrors,
    sent: Option<Option<&str>>,
    creating: bool,
) -> Option<Option<Username>> {
    let sent = sent.map(|value| value.map(str::trim).filter(|value| !value.is_empty()));
    match (policy, sent) {
        (Usernames::Off, Some(Some(_))) => {
            errors.add("username", "This service does not use usernames.");
            None
        }
        (Usernames::Off, _) => None,
        (Usernames::Required, None) if creating => {
            errors.add("username", "This field is required.");
            None
        }
        (Usernames::Required, Some(None)) => {
            errors.add("username", "A username is required.");
            None
        }
        (_, None) => None,
        (_, Some(None)) => Some(None),
        (_, Some(Some(raw))) => errors
            .check("username", Username::parse_field(raw))
            .map(Some),
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Username> for String {
    fn from(username: Username) -> String {
        username.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_keep_their_case_and_compare_without_it() {
        let name = Username::parse("  Jane.Doe_42 ").unwrap();
        assert_eq!(name.as_str(), "Jane.Doe_42");
        assert_eq!(name.key(), "jane.doe_42");
    }

    #[test]
    fn the_rules_hold() {
        for bad in [
            "ab",
            &"a".repeat(31),
            "_jane",
            ".jane",
            "-jane",
            "ja ne",
            "jäne",
            "jane!",
            "",
        ] {
            assert_eq!(Username::parse(bad), Err(Refusal::Invalid), "{bad:?}");
        }
        assert!(Username::parse("me").is_err());
        for reserved in ["admin", "ROOT", "Support", "null", "authgate"] {
            assert_eq!(
                Username::parse(reserved),
                Err(Refusal::Reserved),
                "{reserved}"
            );
        }
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(30)).is_ok());
        assert!(Username::parse("9lives").is_ok());
    }
}
