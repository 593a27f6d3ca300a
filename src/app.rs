//! Start-up: wire configuration, database, keys, mail and hashing into one state, and serve.

use std::{sync::Arc, time::Duration};

use poem::{
    Server,
    listener::{Acceptor, Listener, TcpListener},
};
use sea_orm::{DatabaseConnection, DbErr};

use crate::{
    api,
    clock::Clock,
    config::Config,
    domain::{AuthService, error::AuthError, hashing::HashingPool},
    mail::{MailError, Mailer},
    store,
    tokens::{AccessTokens, KeyRing},
};

/// How often an instance rereads the signing keys, to pick up rotations made elsewhere (and
/// checks whether automatic rotation is due), and purges rate-limit counters whose window has
/// passed.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

/// Everything a request handler may need, built once.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub auth: AuthService,
    pub keys: Arc<KeyRing>,
    pub access_tokens: Arc<AccessTokens>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Mail(#[from] MailError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
}

impl AppState {
    /// Connects, migrates, loads or creates the signing key: ready to serve.
    pub async fn build(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<AppState>, StartupError> {
        let config = Arc::new(config);
        let db = store::connect(config.database_url.expose()).await?;
        store::migrate(&db).await?;
        let hashing = Arc::new(HashingPool::new(config.argon2)?);
        let mailer = Arc::new(Mailer::new(&config.mail, config.mail_from.clone())?);
        let keys = Arc::new(
            KeyRing::start(
                db.clone(),
                config.jwt_algorithm,
                config.access_ttl,
                Arc::clone(&clock),
            )
            .await?,
        );
        let access_tokens = Arc::new(AccessTokens::new(
            Arc::clone(&keys),
            config.public_url.clone(),
            config.audience.clone(),
            config.access_ttl,
            Arc::clone(&clock),
        ));
        let auth = AuthService::new(
            db.clone(),
            Arc::clone(&config),
            clock,
            hashing,
            mailer,
            Arc::clone(&access_tokens),
        );
        Ok(Arc::new(AppState {
            config,
            db,
            auth,
            keys,
            access_tokens,
        }))
    }
}

/// A bound, not yet serving, HTTP server: tests bind port 0 and read the address.
pub struct BoundServer {
    acceptor: poem::listener::TcpAcceptor,
    state: Arc<AppState>,
}

impl BoundServer {
    pub async fn bind(state: Arc<AppState>, address: &str) -> Result<BoundServer, StartupError> {
        let acceptor = TcpListener::bind(address.to_string())
            .into_acceptor()
            .await
            .map_err(|source| StartupError::Listen {
                address: address.into(),
                source,
            })?;
        Ok(BoundServer { acceptor, state })
    }

    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish for at most
    /// `grace`.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
        grace: Duration,
    ) -> std::io::Result<()> {
        let keys = Arc::clone(&self.state.keys);
        let rotation = self.state.config.key_rotation;
        let state = Arc::clone(&self.state);
        let housekeeping = tokio::spawn(async move {
            let mut interval = tokio::time::interval(HOUSEKEEPING_INTERVAL);
            interval.tick().await;
            loop {
                interval.tick().await;
                // Rotation due? One instance rotates; the reload inside picks up any rotation.
                let outcome = match rotation {
                    Some(max_age) => keys.rotate_if_older_than(max_age).await.map(|rotated| {
                        if let Some(kid) = rotated {
                            tracing::info!(kid, "rotated the signing key (AUTHGATE_KEY_ROTATION)");
                        }
                    }),
                    None => keys.reload().await,
                };
                if let Err(err) = outcome {
                    tracing::warn!(error = %err, "could not refresh signing keys");
                }
                if let Err(err) = state.auth.purge_expired_counters().await {
                    tracing::warn!(error = %err, "could not purge rate-limit counters");
                }
            }
        });
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(api::endpoint(self.state), shutdown, Some(grace))
            .await;
        housekeeping.abort();
        result
    }
}
