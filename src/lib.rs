//! authgate: a stateless JWT authentication service with email one-time codes.
//!
//! Dependencies point one way: `api` (HTTP, poem-openapi) → `flows` (registration, sign-in,
//! password reset, the user's own account) → `domain` (the parts: accounts, limits, audit,
//! codes, passwords, sessions) → `store` (tables and their queries), with `tokens` (keys,
//! JWTs, refresh tokens), `mail`, `config` and `clock` beside them. `app` wires the parts and
//! flows into one state and runs the housekeeping; `server` serves `api` on it; `cli` is the
//! command line.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod flows;
pub mod mail;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod vault;
