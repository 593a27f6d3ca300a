//! authgate: a stateless JWT authentication service with email one-time codes.
//!
//! Layout: `api` (HTTP, poem-openapi) → `domain` (accounts, codes, passwords, sessions) →
//! `store` (sea-orm entities), with `tokens` (keys, JWTs, refresh tokens), `mail`, `config`
//! and `clock` beside them. `app` wires them together; `cli` is the command line.

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
pub mod mail;
pub mod metrics;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod vault;
