//! Recovery codes: the way back in when the authenticator app is lost.
//!
//! A set is ten codes of ten characters, shown once as `xxxxx-xxxxx` and stored hashed; each
//! works once. The alphabet leaves out characters that read alike on paper or screen (`0`/`o`,
//! `1`/`l`/`i`), so a code copied by hand comes back as written. Ten characters from 31 give
//! about 49 bits: far past guessing once attempts are limited, and a hash worth nothing to
//! whoever steals it.
//!
//! Hashing belongs to the caller: [`RecoveryCode::canonical`] at issue and [`canonicalize`]
//! of what a person types give the same text for the same code.

use std::fmt;

use rand::{Rng, rngs::OsRng};

/// Codes in a set.
const CODES_PER_SET: usize = 10;
/// Characters in a code.
const CODE_LENGTH: usize = 10;
/// Digits and lowercase letters without `0`, `1`, `i`, `l` and `o`.
const ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// One recovery code, in its canonical form. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

impl RecoveryCode {
    /// Ten characters drawn uniformly from the alphabet with the operating system's CSPRNG.
    fn generate() -> RecoveryCode {
        RecoveryCode(
            (0..CODE_LENGTH)
                .map(|_| char::from(ALPHABET[OsRng.gen_range(0..ALPHABET.len())]))
                .collect(),
        )
    }

    /// The code as shown to the person: two groups of five, `abcde-fghjk`, easier to copy.
    pub fn display(&self) -> String {
        let (first, second) = self.0.split_at(CODE_LENGTH / 2);
        format!("{first}-{second}")
    }

    /// The ten characters without the hyphen: the text to hash and store.
    pub fn canonical(&self) -> &str {
        &self.0
    }
}

/// A new set of ten distinct codes.
pub fn generate_set() -> Vec<RecoveryCode> {
    let mut codes = Vec::with_capacity(CODES_PER_SET);
    while codes.len() < CODES_PER_SET {
        // A repeat is all but impossible; drawing again keeps "ten codes" true regardless.
        let code = RecoveryCode::generate();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// The canonical form of a code as a person typed it: case is ignored, and so are spaces and
/// hyphens wherever they fall. `None` when the rest is not ten characters of the alphabet,
/// so the caller can refuse without hashing.
pub fn canonicalize(input: &str) -> Option<String> {
    let mut canonical = String::with_capacity(CODE_LENGTH);
    for byte in input.bytes().filter(|byte| !matches!(byte, b' ' | b'-')) {
        let byte = byte.to_ascii_lowercase();
        if canonical.len() == CODE_LENGTH || !ALPHABET.contains(&byte) {
            return None;
        }
        canonical.push(char::from(byte));
    }
    (canonical.len() == CODE_LENGTH).then_some(canonical)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn a_set_is_ten_codes_of_two_groups_of_five() {
        let codes = generate_set();
        assert_eq!(codes.len(), 10);
        for code in &codes {
            let shown = code.display();
            assert_eq!(shown.len(), 11, "{shown}");
            assert_eq!(shown.as_bytes()[5], b'-', "{shown}");
            assert_eq!(shown.replace('-', ""), code.canonical());
            assert_eq!(code.canonical().len(), 10);
        }
    }

    #[test]
    fn codes_use_only_characters_that_cannot_be_misread() {
        for code in generate_set() {
            for byte in code.canonical().bytes() {
                assert!(ALPHABET.contains(&byte), "{byte}");
                assert!(!b"01ilo".contains(&byte), "{byte}");
            }
        }
        assert_eq!(
            ALPHABET.iter().collect::<HashSet<_>>().len(),
            ALPHABET.len()
        );
        assert!(
            ALPHABET
                .iter()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
    }

    #[test]
    fn codes_within_a_set_are_distinct() {
        let codes = generate_set();
        let distinct: HashSet<_> = codes.iter().map(RecoveryCode::canonical).collect();
        assert_eq!(distinct.len(), codes.len());
    }

    #[test]
    fn what_a_person_types_comes_back_canonical() {
        for code in generate_set() {
            let shown = code.display();
            assert_eq!(canonicalize(&shown).as_deref(), Some(code.canonical()));
            assert_eq!(
                canonicalize(&shown.to_uppercase()).as_deref(),
                Some(code.canonical())
            );
            assert_eq!(
                canonicalize(code.canonical()).as_deref(),
                Some(code.canonical())
            );
        }
        assert_eq!(canonicalize(" ABCDE fghjk ").as_deref(), Some("abcdefghjk"));
        assert_eq!(
            canonicalize("ab-cd-ef-gh-jk").as_deref(),
            Some("abcdefghjk")
        );
    }

    #[test]
    fn anything_that_cannot_be_a_code_is_refused() {
        for bad in [
            "",
            "abcde",
            "abcde-fghj",
            "abcde-fghjkm",
            "abcde-fghj0",
            "abcde-fghj1",
            "abcde-fghji",
            "abcde-fghjl",
            "abcde-fghjo",
            "abcde_fghjk",
            "abcde.fghjk",
            "abcdé-fghjk",
            "abcde\tfghjk",
        ] {
            assert_eq!(canonicalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_code() {
        let code = RecoveryCode("abcdefghjk".into());
        assert_eq!(format!("{code:?}"), "RecoveryCode([redacted])");
    }
}
