//! The audit trail: every security event, written in the same transaction as the change it
//! records (or on its own when nothing changed, as for a failed login).

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde_json::Value;
use uuid::Uuid;

use super::{AuthService, ClientInfo, error::AuthError};
use crate::store::audit_events;

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

/// Whether the event was the attempt succeeding or being refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl AuthService {
    pub(super) async fn audit(
        &self,
        conn: &impl ConnectionTrait,
        action: Action,
        outcome: Outcome,
        user_id: Option<Uuid>,
        client: &ClientInfo,
        details: Value,
    ) -> Result<(), AuthError> {
        audit_events::Entity::insert(audit_events::ActiveModel {
            id: Set(Uuid::new_v4()),
            occurred_at: Set(self.clock.now()),
            action: Set(action.as_str().to_string()),
            outcome: Set(match outcome {
                Outcome::Success => "success",
                Outcome::Failure => "failure",
            }
            .to_string()),
            user_id: Set(user_id),
            ip: Set(client.ip.clone()),
            user_agent: Set(client.user_agent.clone()),
            details: Set(details.to_string()),
        })
        .exec(conn)
        .await?;
        Ok(())
    }
}
