//! What the service holds about the signed-in account, for its owner: the whole of it as one
//! document to take along (GDPR art. 15 and 20), and the account's recent security events.

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use sea_orm::DatabaseConnection;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    clock::Clock,
    domain::{
        Account, AuthError,
        audit::Action,
        error::FieldErrors,
        parts::Parts,
        sessions::{SessionView, Sessions},
        trusted_devices::{DeviceView, TrustedDevices},
    },
    store::audit,
};

/// Events listed when `limit` is not sent.
pub const DEFAULT_EVENTS: u32 = 20;
/// The most events one request lists.
pub const MAX_EVENTS: u32 = 100;

/// One security event of the account.
#[derive(Debug, Clone, Object)]
pub struct SecurityEvent {
    pub id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened: `registration`, `verification`, `login`, `login_failed`, `lockout`,
    /// `refresh_reuse`, `password_reset`, `password_change`, `session_revocation`,
    /// `email_change_requested`, `email_changed`, `account_updated`, …
    pub event: String,
    /// The client's IP address.
    #[oai(nullable)]
    pub ip: Option<String>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
}

/// A security event as the export carries it: with what else was recorded about it.
#[derive(Debug, Clone, Object)]
pub struct ExportedEvent {
    #[oai(flatten)]
    pub event: SecurityEvent,
    /// What else matters about the event, such as the session it ended (never a secret).
    pub details: BTreeMap<String, Value>,
    /// For edits: `{"<field>": {"before": …, "after": …}}`.
    #[oai(nullable)]
    pub changes: Option<BTreeMap<String, Value>>,
}

/// Everything the service holds about an account that is its owner's to take: never a
/// password hash, code, token or key.
#[derive(Debug, Clone, Object)]
pub struct DataExport {
    /// When this document was made.
    pub exported_at: DateTime<Utc>,
    /// The user object, with its profile, `metadata` and `app_metadata`.
    pub user: Arc<Account>,
    /// The sessions that can still be refreshed, as `GET /auth/sessions` lists them.
    pub sessions: Vec<SessionView>,
    /// Devices remembered at two-factor sign-in.
    pub trusted_devices: Vec<DeviceView>,
    /// Every security event of the account, newest first.
    pub events: Vec<ExportedEvent>,
}

pub struct MyData {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    sessions: Arc<Sessions>,
    devices: Arc<TrustedDevices>,
}

impl MyData {
    pub fn new(parts: &Parts) -> MyData {
        MyData {
            db: parts.db.clone(),
            clock: Arc::clone(&parts.clock),
            sessions: Arc::clone(&parts.sessions),
            devices: Arc::clone(&parts.devices),
        }
    }

    /// The account's data as one document; `session_id` is the caller's session, marked
    /// `current` among the sessions.
    pub async fn export(
        &self,
        account: Arc<Account>,
        session_id: Uuid,
    ) -> Result<DataExport, AuthError> {
        let sessions = self.sessions.list(account.id, session_id).await?;
        let trusted_devices = self.devices.list(account.id, None).await?;
        let events = audit::of_user_newest_first(&self.db, account.id, None)
            .await?
            .into_iter()
            .map(|row| ExportedEvent {
                details: owner_details(&row),
                changes: row.changes.as_deref().and_then(json_object),
                event: security_event(row),
            })
            .collect();
        Ok(DataExport {
            exported_at: self.clock.now(),
            user: account,
            sessions,
            trusted_devices,
            events,
        })
    }

    /// The account's latest security events, newest first: `limit` of them (1 to
    /// [`MAX_EVENTS`], [`DEFAULT_EVENTS`] when not sent).
    pub async fn events(
        &self,
        user_id: Uuid,
        limit: Option<u32>,
    ) -> Result<Vec<SecurityEvent>, AuthError> {
        let limit = limit.unwrap_or(DEFAULT_EVENTS);
        if !(1..=MAX_EVENTS).contains(&limit) {
            let mut errors = FieldErrors::new();
            errors.add("limit", format!("Choose a number from 1 to {MAX_EVENTS}."));
            return Err(AuthError::Validation(errors));
        }
        let rows = audit::of_user_newest_first(&self.db, user_id, Some(limit.into())).await?;
        Ok(rows.into_iter().map(security_event).collect())
    }
}

fn security_event(row: audit::Model) -> SecurityEvent {
    SecurityEvent {
        id: row.id,
        at: row.occurred_at,
        event: row.action,
        ip: row.ip,
        user_agent: row.user_agent,
    }
}

/// A stored JSON object; `None` for anything else.
/// An event's details as its account's owner may see them: the note an admin wrote on why
/// the account was disabled stays with the admins.
fn owner_details(row: &audit::Model) -> BTreeMap<String, Value> {
    let mut details = json_object(&row.details).unwrap_or_default();
    if row.action == Action::AccountDisabled.as_str() {
        details.remove("reason");
    }
    details
}

fn json_object(stored: &str) -> Option<BTreeMap<String, Value>> {
    serde_json::from_str(stored).ok()
}
