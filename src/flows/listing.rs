//! What the admin listings read from their query strings: page sizes, times, ids, flags and
//! cursors, each refused under its own parameter's name.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::cursor::{self, Cursor};
use crate::domain::error::FieldErrors;

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: u64 = 50;
/// The most rows one page may hold.
pub const MAX_LIMIT: u64 = 200;

/// `limit`: a whole number from 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(errors: &mut FieldErrors, raw: Option<&str>) -> u64 {
    let Some(raw) = raw else {
        return DEFAULT_LIMIT;
    };
    match raw.trim().parse::<u64>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
        _ => {
            errors.add(
                "limit",
                format!("Enter a whole number from 1 to {MAX_LIMIT}."),
            );
            DEFAULT_LIMIT
        }
    }
}

/// An RFC 3339 time, such as `2026-12-01T00:00:00Z`.
pub fn time(errors: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<DateTime<Utc>> {
    let raw = raw?;
    match DateTime::parse_from_rfc3339(raw.trim()) {
        Ok(time) => Some(time.to_utc()),
        Err(_) => {
            errors.add(
                field,
                "Enter a time in RFC 3339 form, like 2026-12-01T00:00:00Z.",
            );
            None
        }
    }
}

/// A UUID.
pub fn uuid(errors: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<Uuid> {
    let raw = raw?;
    match Uuid::parse_str(raw.trim()) {
        Ok(id) => Some(id),
        Err(_) => {
            errors.add(field, "Enter an id (a UUID).");
            None
        }
    }
}

/// `true` or `false`.
pub fn flag(errors: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<bool> {
    match raw?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            errors.add(field, "Enter true or false.");
            None
        }
    }
}

/// Trimmed text of at most `max_chars` characters and no control characters (nothing stored
/// and searched holds one); empty counts as absent.
pub fn text(
    errors: &mut FieldErrors,
    field: &str,
    raw: Option<&str>,
    max_chars: usize,
) -> Option<String> {
    let text = raw?.trim();
    if text.chars().count() > max_chars {
        errors.add(field, format!("At most {max_chars} characters."));
        return None;
    }
    if text.chars().any(char::is_control) {
        errors.add(field, "Contains control characters.");
        return None;
    }
    (!text.is_empty()).then(|| text.to_string())
}

/// A cursor this listing (`scope`) handed out as `next_cursor`.
pub fn cursor(errors: &mut FieldErrors, scope: &str, raw: Option<&str>) -> Option<Cursor> {
    let raw = raw?;
    match cursor::decode(scope, raw.trim()) {
        Ok(cursor) => Some(cursor),
        Err(err) => {
            errors.add("cursor", err.message());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded() {
        let mut errors = FieldErrors::new();
        assert_eq!(limit(&mut errors, None), DEFAULT_LIMIT);
        assert_eq!(limit(&mut errors, Some("1")), 1);
        assert_eq!(limit(&mut errors, Some("200")), 200);
        assert!(errors.is_empty());
        for bad in [
            "0",
            "201",
            "-1",
            "ten",
            "",
            "1e2",
            "99999999999999999999999",
        ] {
            let mut errors = FieldErrors::new();
            limit(&mut errors, Some(bad));
            assert!(errors.into_map().contains_key("limit"), "{bad}");
        }
    }

    #[test]
    fn values_are_refused_under_their_parameter() {
        let mut errors = FieldErrors::new();
        assert!(time(&mut errors, "since", Some("2026-12-01T00:00:00+01:00")).is_some());
        assert!(time(&mut errors, "since", Some("yesterday")).is_none());
        assert!(uuid(&mut errors, "user_id", Some("42")).is_none());
        assert!(flag(&mut errors, "verified", Some("yes")).is_none());
        assert!(text(&mut errors, "q", Some(&"x".repeat(300)), 254).is_none());
        assert_eq!(text(&mut errors, "q", Some("  "), 254), None);
        assert!(text(&mut errors, "ip", Some("a\u{1f}b"), 254).is_none());
        let fields = errors.into_map();
        for field in ["since", "user_id", "verified", "q", "ip"] {
            assert!(fields.contains_key(field), "{field}: {fields:?}");
        }
    }
}
