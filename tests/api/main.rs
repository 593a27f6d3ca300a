//! The integration tests: the real app, over HTTP, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL. One binary, a module per area.

#[macro_use]
mod helpers;

mod abuse;
mod accounts;
mod admin;
mod admin_lifecycle;
mod avatars;
mod cli;
mod console;
mod conventions;
mod deletion;
mod email_change;
mod instances;
mod keys;
mod login;
mod mail;
mod my_data;
mod oauth;
mod openapi;
mod operations;
mod password_reset;
mod profile;
mod registration;
mod secrets;
mod sessions;
mod tokens;
mod two_factor;
mod upgrade;
