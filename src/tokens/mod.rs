//! Tokens: signing keys and the JWKS, access JWTs, opaque refresh tokens.

pub mod access;
pub mod keys;
pub mod refresh;

pub use access::{AccessClaims, AccessTokens, TokenRejected};
pub use keys::KeyRing;
