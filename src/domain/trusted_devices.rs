//! Trusted devices: "remember this device" at a second-factor sign-in. The device keeps an
//! opaque token (stored here only as a hash, bound to its account); a later sign-in from it
//! with the right password needs no second factor.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use super::{
    audit::{Action, AuditTrail, Event},
    client::ClientInfo,
    error::AuthError,
    user_agents,
};
use crate::{
    clock::{Clock, delta},
    store::{self, trusted_devices},
    tokens::refresh,
};

/// Longest device name kept.
const MAX_NAME_CHARS: usize = 100;

/// A device as its owner sees it.
#[derive(Debug, Clone, Object)]
#[oai(rename = "TrustedDevice")]
pub struct DeviceView {
    pub id: Uuid,
    /// The name given when it was trusted, if any.
    #[oai(nullable)]
    pub name: Option<String>,
    /// Read from the user agent, e.g. `Firefox 121`.
    #[oai(nullable)]
    pub browser: Option<String>,
    /// E.g. `iOS 17.1`.
    #[oai(nullable)]
    pub os: Option<String>,
    /// `desktop`, `mobile`, `tablet`, `bot` or `unknown`.
    pub device_type: String,
    #[oai(nullable)]
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// True for the device the caller's session signed in on.
    pub current: bool,
}

pub struct TrustedDevices {
    db: DatabaseConnection,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    audit: Arc<AuditTrail>,
}

impl TrustedDevices {
    pub fn new(
        db: DatabaseConnection,
        ttl: Duration,
        clock: Arc<dyn Clock>,
        audit: Arc<AuditTrail>,
    ) -> TrustedDevices {
        TrustedDevices {
            db,
            ttl,
            clock,
            audit,
        }
    }

    /// Trusts the device of `client` for `user_id`, inside the sign-in's transaction.
    /// Returns the device's id and its token, to be handed to the client once.
    pub async fn trust(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        name: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(Uuid, String), AuthError> {
        let now = self.clock.now();
        let described = user_agents::describe(client.user_agent.as_deref());
        // Same shape and strength as a refresh token: 256 random bits, stored as SHA-256.
        let minted = refresh::mint();
        let device = trusted_devices::NewDevice {
            user_id,
            token_hash: minted.hash,
            name: name
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(|name| {
                    name.chars()
                        .filter(|c| !c.is_control())
                        .take(MAX_NAME_CHARS)
                        .collect()
                }),
            browser: described.browser,
            os: described.os,
            device_type: described.device_type.as_str().to_string(),
            ip: client.ip.clone(),
            expires_at: now + delta(self.ttl),
        };
        let id = trusted_devices::insert(conn, device, now).await?;
        let event = Event::new(Action::DeviceTrusted, Some(user_id), client)
            .with(serde_json::json!({"device_id": id}));
        self.audit.record(conn, event).await?;
        Ok((id, minted.token))
    }

    /// The device a token names, if it is a live trusted device of this account.
    pub async fn recognise(&self, user_id: Uuid, token: &str) -> Result<Option<Uuid>, AuthError> {
        let now = self.clock.now();
        let found =
            trusted_devices::find_live(&self.db, user_id, &refresh::hash(token), now).await?;
        if let Some(device) = &found {
            trusted_devices::touch(&self.db, device.id, now).await?;
        }
        Ok(found.map(|device| device.id))
    }

    /// The account's live devices, most recently used first.
    pub async fn list(
        &self,
        user_id: Uuid,
        current: Option<Uuid>,
    ) -> Result<Vec<DeviceView>, AuthError> {
        let rows = trusted_devices::live_of(&self.db, user_id, self.clock.now()).await?;
        Ok(rows
            .into_iter()
            .map(|device| DeviceView {
                current: Some(device.id) == current,
                id: device.id,
                name: device.name,
                browser: device.browser,
                os: device.os,
                device_type: device.device_type,
                ip: device.ip,
                created_at: device.created_at,
                last_used_at: device.last_used_at,
                expires_at: device.expires_at,
            })
            .collect())
    }

    /// Forgets one device; another account's device is as unknown as a made-up id.
    pub async fn revoke(
        &self,
        user_id: Uuid,
        device_id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let txn = store::begin(&self.db).await?;
        if !trusted_devices::delete_of_user(&txn, user_id, device_id).await? {
            return Err(AuthError::NotFound);
        }
        let event = Event::new(Action::DeviceRevoked, Some(user_id), client)
            .with(serde_json::json!({"device_id": device_id}));
        self.audit.record(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Forgets every device of the account, on its own request.
    pub async fn forget_all(&self, user_id: Uuid, client: &ClientInfo) -> Result<(), AuthError> {
        let txn = store::begin(&self.db).await?;
        self.revoke_all(&txn, user_id, client).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Forgets every device of the account, inside the caller's transaction (a password
    /// change, the last factor turned off, an admin's reset).
    pub async fn revoke_all(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        if trusted_devices::delete_all_of(conn, user_id).await? > 0 {
            let event = Event::new(Action::DeviceRevoked, Some(user_id), client)
                .with(serde_json::json!({"all": true}));
            self.audit.record(conn, event).await?;
        }
        Ok(())
    }
}
