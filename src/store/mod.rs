//! Persistence, for SQLite and PostgreSQL alike: the connection, and one module per table
//! holding its sea-orm entity and every query on it, named for what it does. Nothing outside
//! this folder writes a query.

pub mod audit;
pub mod codes;
pub mod limits;
pub mod mfa_challenges;
pub mod mfa_factors;
pub mod outbox;
pub mod profiles;
pub mod recovery_codes;
pub mod refresh_tokens;
pub mod sessions;
pub mod signing_keys;
pub mod trusted_devices;
pub mod users;

use std::{str::FromStr, sync::Arc, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, DeriveValueType, RuntimeErr,
    SqliteTransactionMode, SqlxPostgresConnector, SqlxSqliteConnector, TransactionOptions,
    TransactionTrait,
    sqlx::{
        self, ConnectOptions, Database,
        pool::PoolOptions,
        postgres::PgConnectOptions,
        sqlite::{SqliteConnectOptions, SqliteJournalMode},
    },
};

/// How long opening a connection, or waiting for a free one, may take.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the pool and, for a SQLite file, creates the folder it lives in.
///
/// The pool is built with sqlx from the parsed URL and handed to sea-orm, rather than through
/// `sea_orm::Database::connect`: that function runs in a tracing span that records its
/// options, URL and password included, so `RUST_LOG=trace` (or debug) would print the
/// database password.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("sqlite:") {
        create_sqlite_folder(url)?;
        let options = SqliteConnectOptions::from_str(url)
            .map_err(connection_error)?
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(POOL_TIMEOUT)
            .foreign_keys(true)
            .disable_statement_logging();
        // SQLite allows one writer at a time and fails, rather than waits, when a read
        // transaction has to upgrade to a write under another writer. One connection per
        // process makes every transaction serial, which is both correct and fast enough for
        // the embedded default; production runs on PostgreSQL.
        let pool = pool_options(1)
            .connect_with(options)
            .await
            .map_err(connection_error)?;
        Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
    } else {
        let options = PgConnectOptions::from_str(url)
            .map_err(connection_error)?
            .disable_statement_logging();
        let pool = pool_options(16)
            .connect_with(options)
            .await
            .map_err(connection_error)?;
        Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
    }
}

fn pool_options<DB: Database>(max_connections: u32) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(POOL_TIMEOUT)
}

/// A URL that does not parse or a database that cannot be reached, as sea-orm reports it.
fn connection_error(err: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(Arc::new(err)))
}

/// The type of every column that holds a secret: a password or code hash, a refresh token's
/// hash, private key material. sea-orm derives `Debug` for each table's `ActiveModel` with no
/// way to leave a field out, so the column's own `Debug` keeps the value out of any log line
/// that prints a row or a change set (a hash of six digits, or of a weak password, gives the
/// secret away).
#[derive(Clone, PartialEq, Eq, DeriveValueType)]
pub struct SecretText(String);

impl SecretText {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretText {
    fn from(value: String) -> Self {
        SecretText(value)
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Starts a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a
/// deferred transaction that reads and then writes fails outright, instead of waiting, when
/// another connection (another instance on the same file) wrote in between.
pub async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// A round trip to the database, for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

fn create_sqlite_folder(url: &str) -> Result<(), DbErr> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    match std::path::Path::new(path).parent() {
        Some(folder) if !folder.as_os_str().is_empty() => std::fs::create_dir_all(folder)
            .map_err(|err| DbErr::Custom(format!("cannot create {}: {err}", folder.display()))),
        _ => Ok(()),
    }
}

/// True when the error means the database could not be reached (as opposed to a query that
/// went wrong), which the API reports as 503 rather than 500.
pub fn is_unreachable(err: &DbErr) -> bool {
    matches!(err, DbErr::ConnectionAcquire(_) | DbErr::Conn(_))
}

/// True when an insert lost a race on a unique index.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
