//! Database schema for authgate, applied at start-up (or by `authgate migrate`).
//!
//! Every migration must run unchanged on SQLite and PostgreSQL, so only portable column
//! types are used: UUIDs, strings, integers, booleans and timestamps with time zone. The one
//! exception adds to PostgreSQL what SQLite has no counterpart for: the announcement of account
//! changes (migration 9).

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261122_000002_abuse_and_audit;
mod m20261203_000003_outbox_and_session_lineage;
mod m20261203_000004_accounts;
mod m20261203_000005_two_factor;
mod m20261203_000006_codes_by_account;
mod m20261203_000007_admin_directory;
mod m20261203_000008_fewer_indexes;
mod m20261203_000009_account_change_announcements;

/// The PostgreSQL channel on which every committed change to a user or profile row is
/// announced, with the account's id as the payload.
pub const ACCOUNT_CHANGES_CHANNEL: &str = "authgate_account_changes";

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261122_000002_abuse_and_audit::Migration),
            Box::new(m20261203_000003_outbox_and_session_lineage::Migration),
            Box::new(m20261203_000004_accounts::Migration),
            Box::new(m20261203_000005_two_factor::Migration),
            Box::new(m20261203_000006_codes_by_account::Migration),
            Box::new(m20261203_000007_admin_directory::Migration),
            Box::new(m20261203_000008_fewer_indexes::Migration),
            Box::new(m20261203_000009_account_change_announcements::Migration),
        ]
    }
}
