//! Opaque refresh tokens: 256 random bits, URL-safe, stored only as a SHA-256 hash.
//!
//! A fast hash is right here (unlike passwords): the token has full entropy, so nothing can be
//! guessed from its hash, and lookups stay one indexed equality query.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{RngCore, rngs::OsRng};
use sha2::{Digest, Sha256};

/// A freshly minted token: the plain value goes to the client once, the hash to the database.
pub struct NewRefreshToken {
    pub token: String,
    pub hash: String,
}

pub fn mint() -> NewRefreshToken {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    NewRefreshToken { token, hash }
}

pub fn hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let first = mint();
        let second = mint();
        assert_ne!(first.token, second.token);
        assert_eq!(first.token.len(), 43, "32 bytes in unpadded base64");
        assert!(
            first
                .token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(first.hash, hash(&first.token));
        assert_ne!(first.hash, first.token);
    }
}
