//! The audit trail: every security event and every change to an account, written in the same
//! transaction as the change it records (or on its own when nothing changed, as for a failed
//! login), with who did it and, for edits, each field's value before and after.

use std::sync::Arc;

use sea_orm::ConnectionTrait;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{accounts::Account, client::ClientInfo, error::AuthError};
use crate::{clock::Clock, store::audit};

/// What happened. The name is the `event` of `GET /admin/audit` and `GET /auth/me/events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Registration,
    Verification,
    Login,
    LoginFailed,
    Lockout,
    LoginUnlocked,
    RefreshReuse,
    PasswordReset,
    PasswordResetRequested,
    PasswordChange,
    PasswordChangeFailed,
    SessionRevocation,
    AccountCreated,
    AccountUpdated,
    EmailChangeRequested,
    EmailChangeFailed,
    EmailChanged,
    AvatarChanged,
    DeletionRequested,
    DeletionCancelled,
    AccountPurged,
    AccountDisabled,
    AccountEnabled,
    AccountAnonymized,
    MfaEnabled,
    MfaDisabled,
    MfaChallengeFailed,
    MfaReset,
    RecoveryCodeUsed,
    DeviceTrusted,
    DeviceRevoked,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Registration => "registration",
            Action::Verification => "verification",
            Action::Login => "login",
            Action::LoginFailed => "login_failed",
            Action::Lockout => "lockout",
            Action::LoginUnlocked => "login_unlocked",
            Action::RefreshReuse => "refresh_reuse",
            Action::PasswordReset => "password_reset",
            Action::PasswordResetRequested => "password_reset_requested",
            Action::PasswordChange => "password_change",
            Action::PasswordChangeFailed => "password_change_failed",
            Action::SessionRevocation => "session_revocation",
            Action::AccountCreated => "account_created",
            Action::AccountUpdated => "account_updated",
            Action::EmailChangeRequested => "email_change_requested",
            Action::EmailChangeFailed => "email_change_failed",
            Action::EmailChanged => "email_changed",
            Action::AvatarChanged => "avatar_changed",
            Action::DeletionRequested => "deletion_requested",
            Action::DeletionCancelled => "deletion_cancelled",
            Action::AccountPurged => "account_purged",
            Action::AccountDisabled => "account_disabled",
            Action::AccountEnabled => "account_enabled",
            Action::AccountAnonymized => "account_anonymized",
            Action::MfaEnabled => "mfa_enabled",
            Action::MfaDisabled => "mfa_disabled",
            Action::MfaChallengeFailed => "mfa_challenge_failed",
            Action::MfaReset => "mfa_reset",
            Action::RecoveryCodeUsed => "recovery_code_used",
            Action::DeviceTrusted => "device_trusted",
            Action::DeviceRevoked => "device_revoked",
        }
    }

    /// Attempts that were refused, for the trail's `outcome` column.
    fn is_failure(self) -> bool {
        matches!(
            self,
            Action::LoginFailed
                | Action::PasswordChangeFailed
                | Action::EmailChangeFailed
                | Action::RefreshReuse
                | Action::MfaChallengeFailed
        )
    }
}

/// One event to record: what happened, to whom, by whom, from where.
pub struct Event<'a> {
    action: Action,
    user_id: Option<Uuid>,
    actor_id: Option<Uuid>,
    client: &'a ClientInfo,
    details: Value,
    changes: Option<Value>,
}

impl<'a> Event<'a> {
    pub fn new(action: Action, user_id: Option<Uuid>, client: &'a ClientInfo) -> Self {
        Event {
            action,
            user_id,
            actor_id: None,
            client,
            details: json!({}),
            changes: None,
        }
    }

    /// What else matters about the event (never a secret).
    pub fn with(self, details: Value) -> Self {
        Event { details, ..self }
    }

    /// Who did it, when not the account itself acting unprompted (an admin, say).
    pub fn by(self, actor_id: Uuid) -> Self {
        Event {
            actor_id: Some(actor_id),
            ..self
        }
    }

    /// [`Event::by`] when someone acted; `None` (the command line, say) leaves it alone.
    pub fn by_any(self, actor: Option<Uuid>) -> Self {
        match actor {
            Some(actor) => self.by(actor),
            None => self,
        }
    }

    /// `{"<field>": {"before": …, "after": …}}` of an edit.
    pub fn with_changes(self, changes: Value) -> Self {
        Event {
            changes: Some(changes),
            ..self
        }
    }
}

/// The fields of the user object an edit may change, as `PATCH /admin/users/{id}` names them.
pub const EDITABLE_FIELDS: &[&str] = &[
    "email",
    "username",
    "first_name",
    "last_name",
    "phone_number",
    "role",
    "is_verified",
    "metadata",
    "app_metadata",
    "profile",
];

/// The edited fields with their values before and after, or `None` when nothing changed.
pub fn changes(before: &Account, after: &Account) -> Option<Value> {
    let (Ok(Value::Object(before)), Ok(Value::Object(after))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return None;
    };
    let changed: Map<String, Value> = EDITABLE_FIELDS
        .iter()
        .filter(|field| before.get(**field) != after.get(**field))
        .map(|field| {
            let pair = json!({"before": before.get(*field), "after": after.get(*field)});
            (field.to_string(), pair)
        })
        .collect();
    (!changed.is_empty()).then_some(Value::Object(changed))
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
            outcome: if event.action.is_failure() {
                "failure"
            } else {
                "success"
            },
            user_id: event.user_id,
            actor_id: event.actor_id,
            ip: event.client.ip.clone(),
            user_agent: event.client.user_agent.clone(),
            details: event.details.to_string(),
            changes: event.changes.map(|changes| changes.to_string()),
        };
        audit::insert(conn, row, self.clock.now()).await?;
        Ok(())
    }
}
