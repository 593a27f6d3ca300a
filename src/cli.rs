//! The command line: `serve` (default), `migrate`, `openapi`, `keys rotate`, `keys list`.

use std::{process::ExitCode, sync::Arc};

use crate::{
    api,
    app::AppState,
    clock::{Clock, SystemClock},
    config::Config,
    server::BoundServer,
    store, telemetry,
    tokens::keys,
};

const USAGE: &str = "usage: authgate [serve | migrate | openapi | keys rotate | keys list]";

pub async fn run(args: Vec<String>) -> ExitCode {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    if let ["openapi"] = words.as_slice() {
        println!("{}", api::openapi().spec());
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("authgate: {err}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(config.log_format);
    let result = match words.as_slice() {
        [] | ["serve"] => serve(config).await,
        ["migrate"] => migrate(&config).await,
        ["keys", "rotate"] => rotate_key(&config).await,
        ["keys", "list"] => list_keys(&config).await,
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("authgate: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let listen = config.listen.to_string();
    let grace = config.shutdown_grace;
    let state = AppState::build(config, Arc::new(SystemClock))
        .await
        .map_err(|err| err.to_string())?;
    let server = BoundServer::bind(state, &listen)
        .await
        .map_err(|err| err.to_string())?;
    tracing::info!(address = %listen, "authgate is listening; Swagger UI at /");
    server
        .serve(shutdown_signal(), grace)
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
    let kid = keys::rotate(&db, config.jwt_algorithm, &SystemClock)
        .await
        .map_err(|err| err.to_string())?;
    println!("new current key {kid} ({})", config.jwt_algorithm.as_str());
    Ok(())
}

async fn list_keys(config: &Config) -> Result<(), String> {
    let db = migrated_database(config).await?;
    let listing = keys::list(&db, config.access_ttl, SystemClock.now())
        .await
        .map_err(|err| err.to_string())?;
    println!(
        "{:<44} {:<6} {:<8} {:<26} {:<26} published until",
        "kid", "alg", "state", "created", "retired"
    );
    let time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or("-".to_string(), |t| t.to_rfc3339());
    for key in listing {
        println!(
            "{:<44} {:<6} {:<8} {:<26} {:<26} {}",
            key.kid,
            key.algorithm,
            key.state,
            key.created_at.to_rfc3339(),
            time(key.retired_at),
            time(key.published_until),
        );
    }
    Ok(())
}

async fn migrated_database(config: &Config) -> Result<sea_orm::DatabaseConnection, String> {
    let db = store::connect(config.database_url.expose())
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
