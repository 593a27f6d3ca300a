//! Wiring: configuration, database, keys, mail and hashing built once into the parts and the
//! flows the HTTP layer calls, plus the background work every instance does. Nothing here
//! knows a route or a handler.

pub mod housekeeping;

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbErr};

use crate::{
    clock::Clock,
    config::Config,
    domain::{
        AuthError,
        accounts::Accounts,
        error::chain,
        hashing::HashingPool,
        health::Health,
        limits::Limiter,
        outbox::Outbox,
        parts::{Foundations, Parts},
        profile_schema::ProfileSchema,
        purge::Purge,
        sealing::{self, Resealed},
        sessions::Sessions,
    },
    flows::{
        admin_audit::AdminAudit, admin_lifecycle::AdminLifecycle, admin_stats::AdminStats,
        admin_users::AdminUsers, avatars::Avatars, deletion::Deletion, email_change::EmailChange,
        me::Me, my_data::MyData, password_reset::PasswordReset, registration::Registration,
        sign_in::SignIn, two_factor::TwoFactor, usernames::UsernameLookup,
    },
    mail::{MailError, Mailer},
    store::{self, ConnectError, Open},
    tokens::{AccessTokens, KeyRing},
    vault::{Vault, VaultError},
};

/// Everything a request handler may call, built once.
pub struct AppState {
    pub config: Arc<Config>,
    /// For wiring and tests; handlers go through the parts and flows below.
    pub db: DatabaseConnection,
    pub keys: Arc<KeyRing>,
    pub access_tokens: Arc<AccessTokens>,
    pub accounts: Arc<Accounts>,
    pub sessions: Arc<Sessions>,
    pub limiter: Arc<Limiter>,
    pub outbox: Arc<Outbox>,
    pub purge: Arc<Purge>,
    pub health: Health,
    pub registration: Registration,
    pub sign_in: SignIn,
    pub password_reset: PasswordReset,
    pub me: Me,
    pub avatars: Avatars,
    pub username_lookup: UsernameLookup,
    pub admin_users: AdminUsers,
    pub admin_audit: AdminAudit,
    pub admin_stats: AdminStats,
    pub two_factor: TwoFactor,
    pub email_change: EmailChange,
    pub my_data: MyData,
    pub deletion: Deletion,
    pub admin_lifecycle: AdminLifecycle,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Connect(#[from] ConnectError),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("{}", chain(.0))]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Mail(#[from] MailError),
    #[error("{0}")]
    Vault(#[from] VaultError),
    #[error("invalid {variable}={value:?}: {problem}")]
    Config {
        variable: &'static str,
        value: String,
        problem: String,
    },
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
}

/// Seals what was stored before a key was configured (or under an older key); without keys,
/// says loudly that secrets are stored in clear.
async fn seal_secrets_at_rest(db: &DatabaseConnection, vault: &Vault) -> Result<(), StartupError> {
    if !vault.is_enabled() {
        tracing::warn!(
            "AUTHGATE_ENCRYPTION_KEYS is not set: private signing keys and TOTP secrets are stored \
             in clear, and one-time codes as plain hashes; set it in production"
        );
        return Ok(());
    }
    let resealed = sealing::reseal_all(db, vault).await?;
    if resealed != Resealed::default() {
        tracing::info!(
            ?resealed,
            "sealed secrets at rest with the first encryption key"
        );
    }
    Ok(())
}

/// The operator's profile schema, if one is configured.
fn profile_schema(config: &Config) -> Result<ProfileSchema, StartupError> {
    match &config.profile_schema {
        None => Ok(ProfileSchema::none()),
        Some(path) => ProfileSchema::load(path).map_err(|problem| StartupError::Config {
            variable: "AUTHGATE_PROFILE_SCHEMA",
            value: path.display().to_string(),
            problem,
        }),
    }
}

impl AppState {
    /// Connects, migrates, loads or creates the signing key: ready to serve.
    pub async fn build(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<AppState>, StartupError> {
        let config = Arc::new(config);
        crate::telemetry::metrics::install();
        let db = store::connect(config.database_url.expose(), Open::CreatingIfMissing).await?;
        store::migrate(&db).await?;
        let reads = store::connect_reads(config.database_url.expose(), &db).await?;
        let vault = Arc::new(Vault::from_spec(config.encryption_keys.expose())?);
        seal_secrets_at_rest(&db, &vault).await?;
        let hashing = Arc::new(HashingPool::new(config.argon2)?);
        let mailer = Arc::new(Mailer::new(&config.mail, config.mail_from.clone())?);
        let keys = Arc::new(
            KeyRing::start(
                db.clone(),
                Arc::clone(&vault),
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

        let parts = Parts::new(Foundations {
            db: db.clone(),
            reads,
            config: Arc::clone(&config),
            clock,
            vault,
            mailer,
            hashing,
            access_tokens: Arc::clone(&access_tokens),
            profile_schema: Arc::new(profile_schema(&config)?),
        });
        Ok(Arc::new(AppState {
            health: Health::new(db.clone(), Arc::clone(&parts.hashing)),
            registration: Registration::new(&parts),
            sign_in: SignIn::new(&parts),
            password_reset: PasswordReset::new(&parts),
            me: Me::new(&parts),
            avatars: Avatars::new(&parts),
            username_lookup: UsernameLookup::new(&parts),
            admin_users: AdminUsers::new(&parts),
            admin_audit: AdminAudit::new(&parts),
            admin_stats: AdminStats::new(&parts),
            two_factor: TwoFactor::new(&parts),
            email_change: EmailChange::new(&parts),
            my_data: MyData::new(&parts),
            deletion: Deletion::new(&parts),
            admin_lifecycle: AdminLifecycle::new(&parts),
            accounts: parts.accounts,
            sessions: parts.sessions,
            limiter: parts.limiter,
            outbox: parts.outbox,
            purge: parts.purge,
            config,
            db,
            keys,
            access_tokens,
        }))
    }
}
