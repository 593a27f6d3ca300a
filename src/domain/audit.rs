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
    DeletionFailed,
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
            Action::DeletionFailed => "deletion_failed",
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
                | Action::DeletionFailed
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

/// Fields of the user object whose values say nothing about the person: a scrubbed event's
/// `changes` keeps these.
const IMPERSONAL_FIELDS: &[&str] = &["role", "is_verified"];

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

    /// Strips an account's events of personal data, as its purge or anonymization must
    /// (§10): each keeps its type, time, outcome, account and actor; the IP address and user
    /// agent go, so does every address in `details`, and `changes` keeps only the fields that
    /// say nothing about the person (role, verification). The values of the others would
    /// carry the data, and reverting the event would bring it back.
    pub async fn scrub_personal_data_of(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
    ) -> Result<(), AuthError> {
        audit::forget_clients_of(conn, user_id).await?;
        for event in audit::of_user_newest_first(conn, user_id, None).await? {
            let details = scrub_details(&event.details);
            let changes = event.changes.as_deref().and_then(scrub_changes);
            if details != event.details || changes != event.changes {
                audit::rewrite_payload(conn, event.id, details, changes).await?;
            }
        }
        Ok(())
    }
}

/// `details` without the addresses in it, nor the free text of an admin's `reason`; what
/// does not parse is dropped whole.
fn scrub_details(stored: &str) -> String {
    match serde_json::from_str::<Value>(stored) {
        Ok(mut details) => {
            if let Value::Object(fields) = &mut details {
                fields.remove("reason");
            }
            drop_addresses(&mut details);
            details.to_string()
        }
        Err(_) => json!({}).to_string(),
    }
}

/// Blanks every string that holds an `@`: an email address, wherever it sits.
fn drop_addresses(value: &mut Value) {
    match value {
        Value::String(text) if text.contains('@') => *value = Value::Null,
        Value::Array(items) => items.iter_mut().for_each(drop_addresses),
        Value::Object(fields) => fields.values_mut().for_each(drop_addresses),
        _ => {}
    }
}

/// `changes` reduced to [`IMPERSONAL_FIELDS`], or `None` when none is left.
fn scrub_changes(stored: &str) -> Option<String> {
    let Ok(Value::Object(changes)) = serde_json::from_str::<Value>(stored) else {
        return None;
    };
    let kept: Map<String, Value> = changes
        .into_iter()
        .filter(|(field, _)| IMPERSONAL_FIELDS.contains(&field.as_str()))
        .collect();
    (!kept.is_empty()).then(|| Value::Object(kept).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_drops_addresses_and_reasons_from_details_and_personal_fields_from_changes() {
        let details = json!({
            "reason": "Jane Roe keeps charging back, phone 555-0100",
            "old": "jane@example.com",
            "nested": {"to": ["jane@example.com", "kept"]},
            "count": 3,
        });
        let scrubbed: Value = serde_json::from_str(&scrub_details(&details.to_string())).unwrap();
        assert_eq!(
            scrubbed,
            json!({"old": null, "nested": {"to": [null, "kept"]}, "count": 3})
        );
        assert_eq!(scrub_details("not json"), "{}");

        let changes = json!({
            "email": {"before": "jane@example.com", "after": "j@example.com"},
            "first_name": {"before": "Jane", "after": "J"},
            "role": {"before": "user", "after": "admin"},
        });
        let kept: Value =
            serde_json::from_str(&scrub_changes(&changes.to_string()).unwrap()).unwrap();
        assert_eq!(kept, json!({"role": {"before": "user", "after": "admin"}}));
        let personal_only = json!({"username": {"before": "jane", "after": null}});
        assert_eq!(scrub_changes(&personal_only.to_string()), None);
    }
}
