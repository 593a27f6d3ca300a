//! The command line (contract §1, §10): `serve` (the default), `migrate`, `openapi`,
//! `keys rotate`, `keys list`, `keys reencrypt`, `purge`, and `users …` (in `cli/users.rs`).
//! Every command but `openapi` takes the whole configuration, so its `--help` lists each
//! variable with its default. What a command did goes to stdout; logs, warnings and failures
//! go to stderr.

mod users;

use std::{ffi::OsString, process::ExitCode, sync::Arc};

use clap::{CommandFactory, Parser, Subcommand};

use crate::{
    api,
    app::AppState,
    clock::{Clock, SystemClock},
    config::{self, Config, ConfigError},
    domain::{error::chain, sealing},
    server::BoundServer,
    store::{self, Open},
    telemetry,
    tokens::keys,
    vault::Vault,
};

/// Stateless JWT authentication service with email one-time codes.
///
/// Configured by environment variables (a .env file is read if present); authgate serve
/// --help lists each with its default.
#[derive(Parser)]
#[command(name = "authgate", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate, then serve until SIGTERM or SIGINT (the default command)
    Serve(Config),
    /// Apply pending migrations and exit
    Migrate(Config),
    /// Print the OpenAPI document (JSON) to stdout; reads no configuration
    Openapi,
    /// Manage the signing keys
    #[command(subcommand)]
    Keys(Keys),
    /// Purge the accounts whose deletion grace has ended, once, and exit
    ///
    /// Prints how many were purged. Every running instance also does this each minute; an
    /// account is purged once, however many try at the same time.
    Purge(Config),
    /// Manage accounts: create the first admin, list accounts, change roles
    #[command(subcommand)]
    Users(users::Users),
}

#[derive(Subcommand)]
enum Keys {
    /// Make a new current signing key of AUTHGATE_JWT_ALG; the old one stays published while
    /// its tokens may live
    Rotate(Config),
    /// List keys with kid, algorithm, state, dates and how long each stays published
    List(Config),
    /// Seal every secret at rest (private signing keys, TOTP secrets, waiting mail) with the
    /// first key of AUTHGATE_ENCRYPTION_KEYS, so older keys can then be dropped
    Reencrypt(Config),
}

pub async fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    // Variables from .env reach clap through the environment, so the file loads first; whether
    // a malformed one matters depends on the command.
    let dotenv = config::load_dotenv();
    let command = match Cli::try_parse_from(serve_by_default(args)) {
        Ok(cli) => cli.command,
        Err(err) => return parse_failure(err, dotenv),
    };
    match execute(command, dotenv).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("authgate: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `authgate` alone serves; clap has no default subcommand of its own.
fn serve_by_default(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.len() == 1 {
        args.push("serve".into());
    }
    args
}

/// A bad configuration value is reported by its variable: clap's own message would name a flag
/// the operator never typed, and show the value even of a secret. Anything else (help, version,
/// an unknown command) is clap's to print.
fn parse_failure(err: clap::Error, dotenv: Result<(), ConfigError>) -> ExitCode {
    if let Some(invalid) = ConfigError::from_clap(&err, Cli::command()) {
        // A .env that stopped half-way is the likelier cause of a bad value.
        eprintln!("authgate: {}", dotenv.err().unwrap_or(invalid));
        return ExitCode::FAILURE;
    }
    let _ = err.print();
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}

async fn execute(command: Command, dotenv: Result<(), ConfigError>) -> Result<(), String> {
    match command {
        Command::Openapi => {
            println!("{}", api::document_and_ui().0);
            Ok(())
        }
        Command::Serve(config) => serve(ready(config, dotenv)?).await,
        Command::Migrate(config) => migrate(&ready(config, dotenv)?).await,
        Command::Keys(Keys::Rotate(config)) => rotate_key(&ready(config, dotenv)?).await,
        Command::Keys(Keys::List(config)) => list_keys(&ready(config, dotenv)?).await,
        Command::Keys(Keys::Reencrypt(config)) => reencrypt(&ready(config, dotenv)?).await,
        Command::Purge(config) => purge(config, dotenv).await,
        Command::Users(command) => users::run(command, dotenv).await,
    }
}

/// A command that reads the configuration runs only on a well-formed .env and on values that
/// agree with each other, and logs in the configured format.
fn ready(config: Config, dotenv: Result<(), ConfigError>) -> Result<Config, String> {
    dotenv
        .and_then(|()| config.validate())
        .map_err(|err| err.to_string())?;
    telemetry::init(config.log_format);
    Ok(config)
}

async fn serve(config: Config) -> Result<(), String> {
    let grace = config.shutdown_grace;
    let server = BoundServer::bind(config.listen, config.metrics_listen)
        .await
        .map_err(|err| err.to_string())?;
    let state = service(config).await?;
    if let Some(address) = server.local_addr() {
        tracing::info!(%address, "authgate is listening; Swagger UI at /");
    }
    if let Some(address) = server.metrics_addr() {
        tracing::info!(%address, "metrics at /metrics");
    }
    server
        .serve(state, shutdown_signal(), grace)
        .await
        .map_err(|err| format!("server: {err}"))
}

async fn migrate(config: &Config) -> Result<(), String> {
    migrated_database(config).await?;
    println!("migrations applied");
    Ok(())
}

async fn rotate_key(config: &Config) -> Result<(), String> {
    let db = migrated_database(config).await?;
    let vault = vault_of(config)?;
    let kid = keys::rotate(&db, &vault, config.jwt_algorithm, &SystemClock)
        .await
        .map_err(|err| err.to_string())?;
    println!("new current key {kid} ({})", config.jwt_algorithm.as_str());
    Ok(())
}

async fn list_keys(config: &Config) -> Result<(), String> {
    // Read-only: opens an existing database and neither creates nor migrates anything.
    let db = store::connect(config.database_url.expose(), Open::Existing)
        .await
        .map_err(|err| err.to_string())?;
    let listing = keys::list(&db, config.access_ttl, SystemClock.now())
        .await
        .map_err(|err| format!("cannot list the keys (is the database migrated?): {err}"))?;
    let time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or("-".to_string(), |t| t.to_rfc3339());
    let rows: Vec<Vec<String>> = listing
        .into_iter()
        .map(|key| {
            vec![
                key.kid,
                key.algorithm.to_string(),
                key.state.to_string(),
                key.created_at.to_rfc3339(),
                time(key.retired_at),
                time(key.published_until),
            ]
        })
        .collect();
    print_table(
        &[
            "kid",
            "alg",
            "state",
            "created",
            "retired",
            "published until",
        ],
        &rows,
    );
    Ok(())
}

/// Prints columns as wide as their widest cell, two spaces apart.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(column, header)| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

async fn reencrypt(config: &Config) -> Result<(), String> {
    let vault = vault_of(config)?;
    let first = vault
        .first_key_id()
        .ok_or("AUTHGATE_ENCRYPTION_KEYS is not set: there is no key to encrypt with")?
        .to_string();
    let db = migrated_database(config).await?;
    let resealed = sealing::reseal_all(&db, &vault)
        .await
        .map_err(|err| chain(&err))?;
    println!(
        "sealed with key {first}: {} signing keys, {} TOTP secrets, {} waiting mails",
        resealed.signing_keys, resealed.totp_secrets, resealed.mails
    );
    Ok(())
}

fn vault_of(config: &Config) -> Result<Vault, String> {
    Vault::from_spec(config.encryption_keys.expose()).map_err(|err| err.to_string())
}

async fn purge(config: Config, dotenv: Result<(), ConfigError>) -> Result<(), String> {
    let state = start(config, dotenv).await?;
    let purged = state
        .purge
        .purge_due()
        .await
        .map_err(|err| err.to_string())?;
    let plural = if purged == 1 { "" } else { "s" };
    println!("purged {purged} account{plural} whose deletion grace had ended");
    Ok(())
}

/// The whole service, as `serve` builds it, for commands that run its flows.
async fn start(config: Config, dotenv: Result<(), ConfigError>) -> Result<Arc<AppState>, String> {
    service(ready(config, dotenv)?).await
}

async fn service(config: Config) -> Result<Arc<AppState>, String> {
    AppState::build(config, Arc::new(SystemClock))
        .await
        .map_err(|err| err.to_string())
}

async fn migrated_database(config: &Config) -> Result<sea_orm::DatabaseConnection, String> {
    let db = store::connect(config.database_url.expose(), Open::CreatingIfMissing)
        .await
        .map_err(|err| err.to_string())?;
    store::migrate(&db).await.map_err(|err| err.to_string())?;
    Ok(db)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    /// Every variable of the contract (§1, §8–§12) with its default as written there.
    const CONTRACT: &[(&str, &str)] = &[
        ("AUTHGATE_LISTEN", "127.0.0.1:8080"),
        ("DATABASE_URL", "sqlite://data/authgate.db?mode=rwc"),
        ("AUTHGATE_PUBLIC_URL", "http://127.0.0.1:8080"),
        ("AUTHGATE_AUDIENCE", "authgate"),
        ("AUTHGATE_MAIL", "log"),
        ("AUTHGATE_MAIL_FROM", "authgate <no-reply@localhost>"),
        ("AUTHGATE_ACCESS_TTL", "5m"),
        ("AUTHGATE_REFRESH_TTL", "24h"),
        ("AUTHGATE_SESSION_MAX_AGE", "30d"),
        ("AUTHGATE_REFRESH_REUSE_INTERVAL", "10s"),
        ("AUTHGATE_JWT_ALG", "EdDSA"),
        ("AUTHGATE_KEY_ROTATION", "off"),
        ("AUTHGATE_OTP_TTL", "10m"),
        ("AUTHGATE_OTP_MAX_ATTEMPTS", "5"),
        ("AUTHGATE_OTP_RESEND_COOLDOWN", "60s"),
        ("AUTHGATE_ARGON2", "m=19456,t=2,p=1"),
        ("AUTHGATE_PASSWORD_MIN_LENGTH", "8"),
        ("AUTHGATE_ALLOWED_EMAIL_DOMAINS", ""),
        ("AUTHGATE_SELF_ASSIGNABLE_ROLES", "user"),
        ("AUTHGATE_LOG_FORMAT", "pretty"),
        ("AUTHGATE_LIMIT_LOGIN_IP", "30/5m"),
        ("AUTHGATE_LIMIT_LOGIN_ACCOUNT", "10/15m"),
        ("AUTHGATE_LIMIT_REGISTER_IP", "10/1h"),
        ("AUTHGATE_LIMIT_OTP_VERIFY_IP", "30/5m"),
        ("AUTHGATE_LIMIT_MAIL_ADDRESS", "5/1h"),
        ("AUTHGATE_LIMIT_REFRESH_SESSION", "60/1m"),
        ("AUTHGATE_TRUSTED_PROXIES", ""),
        ("AUTHGATE_CORS_ORIGINS", ""),
        ("AUTHGATE_SHUTDOWN_GRACE", "30s"),
        ("AUTHGATE_METRICS_LISTEN", "127.0.0.1:9464"),
        ("AUTHGATE_ROLES", "user,admin"),
        ("AUTHGATE_USERNAMES", "optional"),
        ("AUTHGATE_PROFILE_SCHEMA", ""),
        ("AUTHGATE_DELETION_GRACE", "7d"),
        ("AUTHGATE_AVATAR_MAX_BYTES", "5MiB"),
        ("AUTHGATE_LIMIT_LOOKUP_IP", "60/1m"),
        ("AUTHGATE_MFA_METHODS", "totp,email"),
        ("AUTHGATE_MFA_REQUIRED_ROLES", ""),
        ("AUTHGATE_MFA_TOKEN_TTL", "5m"),
        ("AUTHGATE_TRUSTED_DEVICE_TTL", "30d"),
        ("AUTHGATE_ENCRYPTION_KEYS", ""),
    ];

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        let args = std::iter::once("authgate").chain(args.iter().copied());
        Cli::try_parse_from(serve_by_default(args.map(OsString::from))).map(|cli| cli.command)
    }

    #[test]
    fn serve_help_lists_every_variable_with_its_default() {
        let help = parse(&["serve", "--help"]).err().unwrap();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        let help = help.to_string();
        for (variable, default) in CONTRACT {
            let (_, entry) = help
                .split_once(&format!("[env: {variable}"))
                .unwrap_or_else(|| panic!("{variable} missing from\n{help}"));
            let entry = entry.split("\n      --").next().unwrap_or_default();
            // clap quotes a default that is empty or has spaces.
            let shown = if default.is_empty() || default.contains(' ') {
                format!("{default:?}")
            } else {
                default.to_string()
            };
            assert!(entry.contains(&format!("[default: {shown}]")), "{entry}");
        }
        let documented = Cli::command()
            .find_subcommand("serve")
            .unwrap()
            .get_arguments()
            .filter(|arg| arg.get_env().is_some())
            .count();
        assert_eq!(documented, CONTRACT.len(), "a variable the contract lacks");
    }

    #[test]
    fn every_command_has_help_and_the_program_a_version() {
        for args in [
            &["--help"][..],
            &["serve", "--help"],
            &["migrate", "--help"],
            &["openapi", "--help"],
            &["keys", "--help"],
            &["keys", "rotate", "--help"],
            &["keys", "list", "--help"],
            &["help", "keys"],
            &["purge", "--help"],
            &["users", "--help"],
            &["users", "disable", "--help"],
            &["users", "enable", "--help"],
            &["help", "users"],
            &["users", "create", "--help"],
            &["users", "list", "--help"],
            &["users", "set-role", "--help"],
        ] {
            assert_eq!(
                parse(args).err().map(|err| err.kind()),
                Some(ErrorKind::DisplayHelp),
                "{args:?}"
            );
        }
        let version = parse(&["--version"]).err().unwrap();
        assert_eq!(version.kind(), ErrorKind::DisplayVersion);
        assert!(version.to_string().contains(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn an_unknown_command_is_named() {
        let error = parse(&["frobnicate"]).err().unwrap();
        assert_eq!(error.kind(), ErrorKind::InvalidSubcommand);
        assert_ne!(error.exit_code(), 0);
        assert!(error.to_string().contains("'frobnicate'"), "{error}");
        assert!(ConfigError::from_clap(&error, Cli::command()).is_none());
        let error = parse(&["keys", "burn"]).err().unwrap();
        assert!(error.to_string().contains("'burn'"), "{error}");
    }

    #[test]
    fn no_command_serves_and_openapi_reads_no_configuration() {
        assert!(matches!(parse(&[]), Ok(Command::Serve(_))));
        assert!(matches!(parse(&["openapi"]), Ok(Command::Openapi)));
        let openapi = Cli::command();
        let openapi = openapi.find_subcommand("openapi").unwrap();
        assert!(openapi.get_arguments().all(|arg| arg.get_env().is_none()));
    }

    #[test]
    fn a_rejected_value_is_reported_by_its_variable_in_any_command() {
        let error = parse(&["migrate", "--access-ttl=soon"]).err().unwrap();
        let invalid = ConfigError::from_clap(&error, Cli::command()).unwrap();
        assert_eq!(
            invalid.to_string(),
            "invalid AUTHGATE_ACCESS_TTL=\"soon\": expected a duration like 90s, 10m, 24h or 7d"
        );

        let error = parse(&["keys", "rotate", "--database-url=mysql://u:hunter2@db"])
            .err()
            .unwrap();
        let invalid = ConfigError::from_clap(&error, Cli::command()).unwrap();
        assert_eq!(invalid.variable, "DATABASE_URL");
        assert!(!invalid.to_string().contains("hunter2"), "{invalid}");
    }
}
