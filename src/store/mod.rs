//! Persistence, for SQLite and PostgreSQL alike: the connection, and one module per table
//! holding its sea-orm entity and every query on it, named for what it does. Nothing outside
//! this folder writes a query.

pub mod account_changes;
pub mod audit;
pub mod avatars;
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

use std::{str::FromStr, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, DeriveValueType,
    SqliteTransactionMode, SqlxPostgresConnector, SqlxSqliteConnector, TransactionOptions,
    TransactionTrait,
    sqlx::{
        self, ConnectOptions, Connection, Database,
        pool::PoolOptions,
        postgres::PgConnectOptions,
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
    },
};

/// How long opening a connection, or waiting for a free one, may take.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a pooled connection may sit idle and still be handed out without a check.
const TRUSTED_IDLE: Duration = Duration::from_secs(10);
/// How long the first connection may take before start-up gives up, naming the database.
const FIRST_CONNECTION_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether opening may create what is missing: the service and `migrate` create a SQLite
/// file (and its folder); read-only commands (`keys list`) never create anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    CreatingIfMissing,
    Existing,
}

/// Why the database could not be opened, naming it — its file, or its host and port — and
/// the cause, never the password.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the database {target}: {cause}")]
pub struct ConnectError {
    target: String,
    cause: String,
}

/// Opens the pool and, for a SQLite file when `open` allows it, creates the file and folder.
///
/// The pool is built with sqlx from the parsed URL and handed to sea-orm, rather than through
/// `sea_orm::Database::connect`: that function runs in a tracing span that records its
/// options, URL and password included, so `RUST_LOG=trace` (or debug) would print the
/// database password. A first connection is made on its own, so a refused or unreachable
/// database is reported with its cause instead of a pool timeout.
pub async fn connect(url: &str, open: Open) -> Result<DatabaseConnection, ConnectError> {
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|err| ConnectError {
                target: "(DATABASE_URL)".into(),
                cause: err.to_string(),
            })?
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode, NORMAL syncs the log at checkpoints instead of at every commit
            // (~3 ms each on the reference machine, which capped refreshes at a few hundred a
            // second on the one writer). The database stays consistent whatever happens; a
            // power cut, not a crash of the process, can lose the last commits. SQLite
            // recommends it for WAL, and the DRF reference design runs with it.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(POOL_TIMEOUT)
            .foreign_keys(true)
            .disable_statement_logging();
        let path = options.get_filename().display().to_string();
        let failed = |cause: String| ConnectError {
            target: format!("file {path}"),
            cause,
        };
        let options = match open {
            Open::CreatingIfMissing => {
                create_folder_of(options.get_filename()).map_err(failed)?;
                options
            }
            Open::Existing if !options.get_filename().exists() => {
                return Err(failed(
                    "no such file (this command creates nothing; `authgate migrate` does)".into(),
                ));
            }
            Open::Existing => options.create_if_missing(false),
        };
        first_connection(options.clone()).await.map_err(failed)?;
        // SQLite allows one writer at a time and fails, rather than waits, when a read
        // transaction has to upgrade to a write under another writer. One connection per
        // process makes every transaction serial, which is both correct and fast enough for
        // the embedded default; production runs on PostgreSQL.
        let pool = pool_options(1)
            .connect_with(options)
            .await
            .map_err(|err| failed(err.to_string()))?;
        Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
    } else {
        let options = PgConnectOptions::from_str(url)
            .map_err(|err| ConnectError {
                target: "(DATABASE_URL)".into(),
                cause: err.to_string(),
            })?
            .disable_statement_logging();
        let target = format!(
            "{} at {}:{}",
            options.get_database().unwrap_or("(default)"),
            options.get_host(),
            options.get_port()
        );
        let failed = |cause: String| ConnectError {
            target: target.clone(),
            cause,
        };
        first_connection(options.clone()).await.map_err(failed)?;
        let pool = pool_options(16)
            .connect_with(options)
            .await
            .map_err(|err| failed(err.to_string()))?;
        Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
    }
}

/// Connections for plain reads outside a transaction (the account behind every access token).
///
/// On a SQLite file, a pool of read-only connections beside the single writer of
/// [`connect`]: in WAL mode a reader sees every committed write, never waits for the writer
/// and never holds it up, so such reads no longer queue behind refreshes and sign-ins on the
/// one connection. PostgreSQL's pool serves both already, and an in-memory SQLite database
/// exists only on its own connection: both get `writer` back.
pub async fn connect_reads(
    url: &str,
    writer: &DatabaseConnection,
) -> Result<DatabaseConnection, ConnectError> {
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !url.starts_with("sqlite:") || in_memory {
        return Ok(writer.clone());
    }
    let failed = |cause: String| ConnectError {
        target: "(DATABASE_URL)".into(),
        cause,
    };
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|err| failed(err.to_string()))?
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(POOL_TIMEOUT)
        .disable_statement_logging();
    // A read holds its connection across the hand-offs to and from the connection's worker
    // thread and sqlx's check on release, not only while SQLite works: four per core keep
    // the cores busy (on 2 cores, /auth/me went from 6.1k to 6.8-7.7k requests/s).
    let readers = std::thread::available_parallelism().map_or(2, |cores| cores.get().max(2)) * 4;
    let pool = pool_options(readers as u32)
        .connect_with(options)
        .await
        .map_err(|err| failed(err.to_string()))?;
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}

/// One connection, opened and closed, to learn why a database cannot be reached.
async fn first_connection<O>(options: O) -> Result<(), String>
where
    O: ConnectOptions,
    O::Connection: Sized,
{
    match tokio::time::timeout(FIRST_CONNECTION_TIMEOUT, options.connect()).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(err)) => Err(describe_sqlx(&err)),
        Err(_) => Err(format!(
            "no answer within {} seconds",
            FIRST_CONNECTION_TIMEOUT.as_secs()
        )),
    }
}

/// sqlx's message with its cause (`Connection refused`, `unable to open database file`).
fn describe_sqlx(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

/// sqlx checks every connection it hands out by default: a round trip of its own (to the
/// server, or to SQLite's worker thread) before each query outside a transaction and each
/// transaction, which doubled the cost of `/auth/me`. A connection in steady use is known
/// to be alive; one that sat idle may have been dropped by the server or a proxy, so only
/// those are checked.
fn pool_options<DB: Database>(max_connections: u32) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(POOL_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|connection: &mut DB::Connection, metadata| {
            Box::pin(async move {
                if metadata.idle_for >= TRUSTED_IDLE {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
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

fn create_folder_of(file: &std::path::Path) -> Result<(), String> {
    match file.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => std::fs::create_dir_all(folder)
            .map_err(|err| format!("cannot create the folder {}: {err}", folder.display())),
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
