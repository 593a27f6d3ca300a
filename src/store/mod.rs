//! Persistence, for SQLite and PostgreSQL alike: the connection, and one module per table
//! holding its sea-orm entity and every query on it, named for what it does. Nothing outside
//! this folder writes a query.

pub mod audit;
pub mod codes;
pub mod limits;
pub mod outbox;
pub mod profiles;
pub mod refresh_tokens;
pub mod sessions;
pub mod signing_keys;
pub mod users;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode},
};

/// Opens the pool and, for a SQLite file, creates the folder it lives in.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        create_sqlite_folder(url)?;
        // SQLite allows one writer at a time and fails, rather than waits, when a read
        // transaction has to upgrade to a write under another writer. One connection per
        // process makes every transaction serial, which is both correct and fast enough for
        // the embedded default; production runs on PostgreSQL.
        options.max_connections(1).min_connections(1);
        options.map_sqlx_sqlite_opts(|opts: SqliteConnectOptions| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    } else {
        options.max_connections(16).min_connections(1);
    }
    Database::connect(options).await
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
