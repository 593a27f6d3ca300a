//! The audit trail: every security event, written in the same transaction as the change it
//! records (or on its own when nothing changed, as for a failed login).

use std::sync::Arc;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{client::ClientInfo, error::AuthError};
use crate::{clock::Clock, store::audit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Registration,
    Verification,
    Login,
    Lockout,
    RefreshReuse,
    PasswordReset,
    PasswordChange,
    SessionRevocation,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Registration => "registration",
            Action::Verification => "verification",
            Action::Login => "login",
            Action::Lockout => "lockout",
            Action::RefreshReuse => "refresh_reuse",
            Action::PasswordReset => "password_reset",
            Action::PasswordChange => "password_change",
            Action::SessionRevocation => "session_revocation",
        }
    }
}

/// One event to record: what happened, whether it succeeded, to whom, from where.
pub struct Event<'a> {
    action: Action,
    succeeded: bool,
    user_id: Option<Uuid>,
    client: &'a ClientInfo,
    details: Value,
}

impl<'a> Event<'a> {
    /// The attempt succeeded.
    pub fn success(action: Action, user_id: Option<Uuid>, client: &'a ClientInfo) -> Self {
        Event {
            action,
            succeeded: true,
            user_id,
            client,
            details: json!({}),
        }
    }

    /// The attempt was refused.
    pub fn failure(action: Action, user_id: Option<Uuid>, client: &'a ClientInfo) -> Self {
        Event {
            succeeded: false,
            ..Event::success(action, user_id, client)
        }
    }

    /// What else matters about the event (never a secret).
    pub fn with(self, details: Value) -> Self {
        Event { details, ..self }
    }
}

pub struct AuditTrail {
    clock: Arc<dyn Clock>,
}

impl AuditTrail {
    pub fn new(clock: Arc<dyn Clock>) -> AuditTrail {
        AuditTrail { clock }
    }

    pub async fn record(
        &self,
        conn: &impl ConnectionTrait,
        event: Event<'_>,
    ) -> Result<(), AuthError> {
        let row = audit::NewEvent {
            action: event.action.as_str(),
            outcome: if event.succeeded {
                "success"
            } else {
                "failure"
            },
            user_id: event.user_id,
            ip: event.client.ip.clone(),
            user_agent: event.client.user_agent.clone(),
            details: event.details.to_string(),
        };
        audit::insert(conn, row, self.clock.now()).await?;
        Ok(())
    }
}
