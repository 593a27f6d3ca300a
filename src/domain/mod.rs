//! The parts the flows are made of, each owning its dependencies and one job: accounts,
//! limits, the audit trail, one-time codes, passwords (and their hashing) and sessions, with
//! the value types they parse (`Email`, `Password`, the account's fields). Nothing here knows
//! about HTTP; queries live in `store`.
//!
//! Types that cross the API boundary (the user object, token pairs, sessions) derive their
//! OpenAPI schema where they are defined, so the document cannot drift from the code.

pub mod account_cache;
pub mod accounts;
pub mod audit;
pub mod blocking_pool;
pub mod client;
pub mod codes;
pub mod email;
pub mod error;
pub mod fields;
pub mod hashing;
pub mod health;
pub mod limits;
pub mod outbox;
pub mod parts;
pub mod password_policy;
pub mod passwords;
pub mod pictures;
pub mod profile_schema;
pub mod purge;
pub mod reauthentication;
pub mod recovery_codes;
pub mod sealing;
pub mod second_factors;
pub mod sessions;
pub mod totp;
pub mod trusted_devices;
pub mod user_agents;
pub mod usernames;

pub use accounts::Account;
pub use client::ClientInfo;
pub use error::AuthError;
pub use sessions::{SignedIn, TokenPair};
