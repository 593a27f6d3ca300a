//! Page cursors for keyset pagination: the sort value and id of the last row of a page, and
//! the listing (with its order) they were made for, packed into one opaque, URL-safe string.
//!
//! A cursor grants nothing (whoever holds one may list anyway) and hides nothing; its checksum
//! is there so a cursor that was cut short, edited or made for another listing or order is
//! refused as such (400 under `fields.cursor`), rather than silently starting somewhere else.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Bytes of checksum after the payload: enough to catch any edit short of a deliberate one.
const TAG_BYTES: usize = 8;
/// Longer strings are refused unread; real cursors are a fraction of this.
const MAX_CURSOR_CHARS: usize = 1024;
/// Keeps these checksums apart from any other SHA-256 of the same bytes.
const DOMAIN: &[u8] = b"authgate page cursor v1\0";

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The last row's sort value, as the listing wrote it; `None` for a null.
    pub key: Option<String>,
    pub id: Uuid,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorError {
    /// Not a cursor this service made, or one changed since.
    Malformed,
    /// A cursor of another listing or order.
    OtherListing,
}

impl CursorError {
    /// The sentence a person reads under `fields.cursor`.
    pub fn message(self) -> &'static str {
        match self {
            CursorError::Malformed => {
                "This cursor is not one this service made: start again without it."
            }
            CursorError::OtherListing => {
                "This cursor belongs to another listing or sort order: start again without it."
            }
        }
    }
}

/// The cursor after the row `(key, id)` of the listing `scope` (which names its order too,
/// like `users:-created_at`).
pub fn encode(scope: &str, key: Option<&str>, id: Uuid) -> String {
    let mut bytes = serde_json::to_vec(&(scope, key, id)).unwrap_or_default();
    let tag = tag(&bytes);
    bytes.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads a cursor made by [`encode`] for `scope`.
pub fn decode(scope: &str, cursor: &str) -> Result<Cursor, CursorError> {
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(CursorError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| CursorError::Malformed)?;
    let split = bytes
        .len()
        .checked_sub(TAG_BYTES)
        .ok_or(CursorError::Malformed)?;
    let (payload, sent_tag) = bytes.split_at(split);
    if tag(payload) != sent_tag {
        return Err(CursorError::Malformed);
    }
    let (made_for, key, id): (String, Option<String>, Uuid) =
        serde_json::from_slice(payload).map_err(|_| CursorError::Malformed)?;
    if made_for != scope {
        return Err(CursorError::OtherListing);
    }
    Ok(Cursor { key, id })
}

fn tag(payload: &[u8]) -> [u8; TAG_BYTES] {
    let digest = Sha256::new()
        .chain_update(DOMAIN)
        .chain_update(payload)
        .finalize();
    let mut tag = [0; TAG_BYTES];
    tag.copy_from_slice(&digest[..TAG_BYTES]);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: &str = "users:-created_at";

    #[test]
    fn a_cursor_reads_back_what_was_written() {
        let id = Uuid::now_v7();
        for key in [
            Some("2026-12-03T10:13:51.123456Z"),
            Some("jane@example.com"),
            None,
        ] {
            let cursor = encode(SCOPE, key, id);
            assert!(
                cursor
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{cursor}"
            );
            assert_eq!(
                decode(SCOPE, &cursor),
                Ok(Cursor {
                    key: key.map(str::to_string),
                    id
                })
            );
        }
    }

    #[test]
    fn a_cursor_of_another_listing_or_order_is_refused() {
        let cursor = encode("users:email", Some("jane@example.com"), Uuid::nil());
        assert_eq!(decode(SCOPE, &cursor), Err(CursorError::OtherListing));
        assert_eq!(decode("audit", &cursor), Err(CursorError::OtherListing));
    }

    #[test]
    fn any_edit_is_refused() {
        let cursor = encode(SCOPE, Some("2026-12-03T10:13:51Z"), Uuid::now_v7());
        for position in 0..cursor.len() {
            let mut edited = cursor.clone().into_bytes();
            edited[position] = if edited[position] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(edited).unwrap();
            assert_eq!(
                decode(SCOPE, &edited),
                Err(CursorError::Malformed),
                "{edited}"
            );
        }
        assert_eq!(
            decode(SCOPE, &cursor[..cursor.len() - 1]),
            Err(CursorError::Malformed)
        );
        assert_eq!(
            decode(SCOPE, &format!("{cursor}A")),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn garbage_is_refused_never_a_panic() {
        let forged = URL_SAFE_NO_PAD.encode(br#"["users:-created_at",null,"nope"]12345678"#);
        for garbage in [
            "",
            "=",
            "not a cursor",
            "%00%01",
            "AAAA",
            "🦀",
            &"A".repeat(MAX_CURSOR_CHARS + 1),
            &forged,
        ] {
            assert_eq!(
                decode(SCOPE, garbage),
                Err(CursorError::Malformed),
                "{garbage}"
            );
        }
    }
}
