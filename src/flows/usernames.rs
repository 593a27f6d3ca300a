//! Whether a username is free, for forms that check while the person types.

use std::sync::Arc;

use poem_openapi::Object;
use sea_orm::DatabaseConnection;

use crate::{
    config::{Config, Usernames},
    domain::{
        AuthError, ClientInfo,
        limits::{LimitKind, Limiter},
        parts::Parts,
        usernames::{Refusal, Username},
    },
    store::users,
};

/// The answer for one name.
#[derive(Debug, Object)]
pub struct UsernameAvailability {
    /// The name as asked for.
    pub username: String,
    pub available: bool,
    /// Why it is not available: `taken`, `reserved` or `invalid`; `null` when it is.
    #[oai(nullable)]
    pub reason: Option<String>,
}

pub struct UsernameLookup {
    db: DatabaseConnection,
    config: Arc<Config>,
    limiter: Arc<Limiter>,
}

impl UsernameLookup {
    pub fn new(parts: &Parts) -> UsernameLookup {
        UsernameLookup {
            db: parts.db.clone(),
            config: Arc::clone(&parts.config),
            limiter: Arc::clone(&parts.limiter),
        }
    }

    /// Under its own per-IP limit, so the endpoint cannot list who is registered.
    pub async fn check(
        &self,
        username: &str,
        client: &ClientInfo,
    ) -> Result<UsernameAvailability, AuthError> {
        self.limiter
            .hit(&self.db, LimitKind::LookupIp, &client.limit_subject())
            .await?;
        let reason = match Username::parse(username) {
            _ if self.config.usernames == Usernames::Off => Some(Refusal::Invalid.reason()),
            Err(refusal) => Some(refusal.reason()),
            Ok(name) => users::find_by_username_key(&self.db, &name.key())
                .await?
                .map(|_| "taken"),
        };
        Ok(UsernameAvailability {
            username: username.to_string(),
            available: reason.is_none(),
            reason: reason.map(str::to_string),
        })
    }
}
