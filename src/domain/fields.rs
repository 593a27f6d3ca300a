//! The free-text fields of an account (names, phone, bio, picture URL, date of birth), each
//! parsed once into the form it is stored in.

use chrono::NaiveDate;

const MAX_NAME_CHARS: usize = 150;
const MAX_BIO_CHARS: usize = 1000;
const MAX_URL_BYTES: usize = 2048;

/// Characters that render as nothing or reorder text: in a name they only serve to spoof.
fn is_invisible_or_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// A first or last name: trimmed, at most 150 characters, nothing invisible. Empty clears.
pub fn parse_name(raw: &str) -> Result<String, Vec<String>> {
    let name = raw.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(vec![format!(
            "Ensure this field has no more than {MAX_NAME_CHARS} characters."
        )]);
    }
    if name.chars().any(is_invisible_or_control) {
        return Err(vec!["Contains control or invisible characters.".into()]);
    }
    Ok(name.to_string())
}

/// A phone number in international form: an optional `+` and 7 to 15 digits. Empty clears.
pub fn parse_phone(raw: &str) -> Result<Option<String>, Vec<String>> {
    let phone = raw.trim();
    if phone.is_empty() {
        return Ok(None);
    }
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    if (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(Some(phone.to_string()))
    } else {
        Err(vec![
            "Enter a phone number like +15551234567 (7 to 15 digits).".into(),
        ])
    }
}

pub fn parse_bio(raw: &str) -> Result<String, Vec<String>> {
    if raw.chars().count() > MAX_BIO_CHARS {
        return Err(vec![format!(
            "Ensure this field has no more than {MAX_BIO_CHARS} characters."
        )]);
    }
    if raw
        .chars()
        .any(|c| c != '\n' && c != '\t' && is_invisible_or_control(c))
    {
        return Err(vec!["Contains control or invisible characters.".into()]);
    }
    Ok(raw.trim().to_string())
}

/// A picture URL set by hand: an absolute `https://` or `http://` URL with a host, at most
/// 2,048 bytes, parsed by the `url` crate (so `javascript:` and relative paths are refused)
/// and stored in its normalised form. Characters RFC 3986 does not allow in a URL (quotes,
/// angle brackets, spaces, …) are refused rather than escaped: they are how markup gets in.
/// Empty clears.
pub fn parse_avatar_url(raw: &str) -> Result<Option<String>, Vec<String>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let refused = || {
        vec![format!(
            "Enter an absolute http(s) URL of at most {MAX_URL_BYTES} bytes."
        )]
    };
    const URL_PUNCTUATION: &str = "-._~:/?#[]@!$&'()*+,;=%";
    let allowed = |c: char| c.is_ascii_alphanumeric() || URL_PUNCTUATION.contains(c);
    if raw.len() > MAX_URL_BYTES || !raw.chars().all(allowed) {
        return Err(refused());
    }
    let url = url::Url::parse(raw).map_err(|_| refused())?;
    let web = matches!(url.scheme(), "https" | "http")
        && url.host_str().is_some_and(|host| !host.is_empty());
    // Normalisation percent-encodes what a browser would: the stored form must still fit.
    if !web || url.as_str().len() > MAX_URL_BYTES {
        return Err(refused());
    }
    Ok(Some(url.into()))
}

pub fn parse_date_of_birth(raw: &str, today: NaiveDate) -> Result<Option<NaiveDate>, Vec<String>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| vec!["Enter a date as YYYY-MM-DD.".to_string()])?;
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    if date < earliest || date > today {
        return Err(vec!["Enter a date between 1900-01-01 and today.".into()]);
    }
    Ok(Some(date))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_spoofing_characters() {
        assert_eq!(parse_name("  Zoë  ").unwrap(), "Zoë");
        assert_eq!(parse_name("李小龍").unwrap(), "李小龍");
        assert!(parse_name("Eve\u{202E}lin").is_err());
        assert!(parse_name("Ad\u{200B}min").is_err());
        assert!(parse_name("a\u{0}b").is_err());
        assert!(parse_name(&"x".repeat(151)).is_err());
    }

    #[test]
    fn phones_are_international_digits() {
        assert_eq!(
            parse_phone("+15551234567").unwrap().as_deref(),
            Some("+15551234567")
        );
        assert_eq!(parse_phone("").unwrap(), None);
        for bad in ["+1", "555-1234-567", "phone", "+١٢٣٤٥٦٧٨"] {
            assert!(parse_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_and_urls() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert!(parse_date_of_birth("1990-02-28", today).is_ok());
        assert!(parse_date_of_birth("1990-02-30", today).is_err());
        assert!(parse_date_of_birth("2026-11-23", today).is_err());
        assert!(parse_avatar_url("https://cdn.example.com/a.png").is_ok());
        for bad in [
            "javascript:alert(1)",
            "https://",
            "/relative/a.png",
            "data:image/png;base64,AAAA",
            "ftp://example.com/a.png",
            "https://x/\"><script>",
        ] {
            assert!(parse_avatar_url(bad).is_err(), "{bad}");
        }
        assert!(parse_avatar_url("https://x/\"><script>").is_err());
        assert!(parse_avatar_url("https://x.example/a b.png").is_err());
        assert!(parse_avatar_url(&format!("https://x.example/{}", "a".repeat(2048))).is_err());
    }
}
