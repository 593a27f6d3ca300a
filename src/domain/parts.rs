//! Every part, built once at start-up. Flows take the parts they need from here when they are
//! built, and hold only those.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::{
    accounts::Accounts, audit::AuditTrail, codes::Codes, hashing::HashingPool, limits::Limiter,
    outbox::Outbox, passwords::Passwords, pictures::PictureProcessor,
    profile_schema::ProfileSchema, purge::Purge, reauthentication::Reauthentication,
    second_factors::SecondFactors, sessions::Sessions, trusted_devices::TrustedDevices,
};
use crate::{clock::Clock, config::Config, mail::Mailer, tokens::AccessTokens, vault::Vault};

pub struct Parts {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub vault: Arc<Vault>,
    pub hashing: Arc<HashingPool>,
    pub outbox: Arc<Outbox>,
    pub accounts: Arc<Accounts>,
    pub limiter: Arc<Limiter>,
    pub audit: Arc<AuditTrail>,
    pub codes: Arc<Codes>,
    pub passwords: Arc<Passwords>,
    pub reauthentication: Arc<Reauthentication>,
    pub sessions: Arc<Sessions>,
    pub devices: Arc<TrustedDevices>,
    pub second_factors: Arc<SecondFactors>,
    pub purge: Arc<Purge>,
    pub pictures: Arc<PictureProcessor>,
}

/// What the parts are made from.
pub struct Foundations {
    pub db: DatabaseConnection,
    /// For plain reads outside a transaction (`store::connect_reads`).
    pub reads: DatabaseConnection,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub vault: Arc<Vault>,
    pub mailer: Arc<Mailer>,
    pub hashing: Arc<HashingPool>,
    pub access_tokens: Arc<AccessTokens>,
    pub profile_schema: Arc<ProfileSchema>,
}

impl Parts {
    pub fn new(base: Foundations) -> Parts {
        let Foundations {
            db,
            reads,
            config,
            clock,
            vault,
            mailer,
            hashing,
            access_tokens,
            profile_schema,
        } = base;
        let outbox = Arc::new(Outbox::new(
            db.clone(),
            Arc::clone(&clock),
            Arc::clone(&vault),
            mailer,
        ));
        let accounts = Arc::new(Accounts::new(
            reads,
            profile_schema,
            config.public_url.clone(),
        ));
        let limiter = Arc::new(Limiter::new(config.limits, Arc::clone(&clock)));
        let audit = Arc::new(AuditTrail::new(Arc::clone(&clock)));
        let codes = Arc::new(Codes::new(
            db.clone(),
            &config,
            Arc::clone(&clock),
            Arc::clone(&limiter),
            Arc::clone(&vault),
            Arc::clone(&outbox),
        ));
        let passwords = Arc::new(Passwords::new(
            db.clone(),
            Arc::clone(&hashing),
            Arc::clone(&limiter),
            config.password_min_length,
            Arc::clone(&clock),
            Arc::clone(&audit),
            Arc::clone(&outbox),
        ));
        let sessions = Arc::new(Sessions::new(
            db.clone(),
            &config,
            Arc::clone(&clock),
            access_tokens,
            Arc::clone(&accounts),
            Arc::clone(&limiter),
            Arc::clone(&audit),
        ));
        let devices = Arc::new(TrustedDevices::new(
            db.clone(),
            config.trusted_device_ttl,
            Arc::clone(&clock),
            Arc::clone(&audit),
        ));
        let second_factors = Arc::new(SecondFactors::new(
            db.clone(),
            Arc::clone(&config),
            Arc::clone(&clock),
            Arc::clone(&vault),
            Arc::clone(&codes),
            Arc::clone(&passwords),
            Arc::clone(&limiter),
            Arc::clone(&audit),
            Arc::clone(&outbox),
            Arc::clone(&devices),
        ));
        let reauthentication = Arc::new(Reauthentication::new(
            db.clone(),
            Arc::clone(&audit),
            Arc::clone(&passwords),
            Arc::clone(&second_factors),
        ));
        let purge = Arc::new(Purge::new(
            db.clone(),
            Arc::clone(&clock),
            Arc::clone(&audit),
        ));
        let pictures = Arc::new(PictureProcessor::new(config.avatar_max_bytes));
        Parts {
            db,
            config,
            clock,
            vault,
            hashing,
            outbox,
            accounts,
            limiter,
            audit,
            codes,
            passwords,
            reauthentication,
            sessions,
            devices,
            second_factors,
            purge,
            pictures,
        }
    }
}
