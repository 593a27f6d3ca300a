//! Email addresses, parsed once: trimmed, lowercased and syntactically checked.

use std::fmt;

use super::error::{AuthError, FieldErrors};

/// A syntactically valid, normalised address. Holding one means the checks were done.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

const MAX_LENGTH: usize = 254;
const MAX_LOCAL_LENGTH: usize = 64;

impl Email {
    /// Accepts the ASCII addresses of RFC 5321 that mail servers actually deliver to:
    /// dot-atom local part, a domain of letters, digits and hyphens with a dotted TLD.
    /// Internationalised addresses are refused rather than half-supported.
    pub fn parse(raw: &str) -> Result<Email, Vec<String>> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(vec!["This field is required.".into()]);
        }
        let invalid = || vec!["Enter a valid email address.".to_string()];
        if email.len() > MAX_LENGTH || !email.is_ascii() {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        if !is_valid_local_part(local) || !is_valid_domain(domain) {
            return Err(invalid());
        }
        Ok(Email(email))
    }

    /// Parses the one address a request is about, answering a validation error under `field`.
    pub fn parse_field(field: &str, raw: &str) -> Result<Email, AuthError> {
        let mut errors = FieldErrors::new();
        let email = errors.check(field, Email::parse(raw));
        errors.finish(email)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(local, _)| local)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }

    /// True when the domain is one of `allowed` or a subdomain of one; an empty list allows
    /// every domain.
    pub fn domain_is_allowed(&self, allowed: &[String]) -> bool {
        let domain = self.domain();
        allowed.is_empty()
            || allowed.iter().any(|allowed| {
                domain == allowed
                    || domain
                        .strip_suffix(allowed.as_str())
                        .is_some_and(|prefix| prefix.ends_with('.'))
            })
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_valid_local_part(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    !local.is_empty()
        && local.len() <= MAX_LOCAL_LENGTH
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || SPECIALS.contains(c))
}

fn is_valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let tld = labels.last().copied().unwrap_or_default();
    labels.len() >= 2
        && tld.len() >= 2
        // RFC 6761: `.invalid` never receives mail. It is also where anonymized accounts'
        // addresses live, so nobody can take one of them ahead of time.
        && tld != "invalid"
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserved_invalid_domain_is_refused() {
        assert!(Email::parse("deleted-1@anonymized.invalid").is_err());
        assert!(Email::parse("jane@example.invalid").is_err());
        assert!(Email::parse("jane@invalid.example.com").is_ok());
    }

    #[test]
    fn normalises_case_and_whitespace() {
        let email = Email::parse("  Jane.Doe@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "jane.doe@example.com");
        assert_eq!(email.local_part(), "jane.doe");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "jane@",
            "jane@example",
            "jane@@example.com",
            "jane..doe@example.com",
            ".jane@example.com",
            "jane@-example.com",
            "jane@example.c0m",
            "jane doe@example.com",
            "jäne@example.com",
            "jane@exa_mple.com",
            "jane\u{202e}@example.com",
            "jane@example.com\u{0}",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let too_long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&too_long).is_err());
    }

    #[test]
    fn subdomains_of_an_allowed_domain_are_allowed() {
        let allowed = vec!["ucla.edu".to_string()];
        assert!(
            Email::parse("a@ucla.edu")
                .unwrap()
                .domain_is_allowed(&allowed)
        );
        assert!(
            Email::parse("a@g.ucla.edu")
                .unwrap()
                .domain_is_allowed(&allowed)
        );
        assert!(
            !Email::parse("a@notucla.edu")
                .unwrap()
                .domain_is_allowed(&allowed)
        );
        assert!(
            !Email::parse("a@ucla.edu.evil.com")
                .unwrap()
                .domain_is_allowed(&allowed)
        );
        assert!(Email::parse("a@any.org").unwrap().domain_is_allowed(&[]));
    }
}
