//! Leaving (§10): the owner deletes their account with their password and a typed
//! confirmation. During the grace (`AUTHGATE_DELETION_GRACE`) the account is
//! `pending_deletion`: every session is revoked, its tokens are refused, and signing in again
//! through `POST /auth/restore` keeps it. When the grace ends, the housekeeping of any instance
//! purges it; with no grace (`0s`) it is purged at once.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    clock::{Clock, delta},
    domain::{
        Account, AuthError, ClientInfo,
        accounts::{ADMIN_ROLE, AccountStatus, Accounts},
        audit::{Action, AuditTrail, Event},
        error::FieldErrors,
        outbox::{Letter, Outbox},
        parts::Parts,
        purge::{Purge, PurgeTrigger},
        reauthentication::Reauthentication,
    },
    mail::templates,
    store::{self, sessions, users},
};

/// What the owner must type, word for word, so that no client deletes an account by accident.
pub const CONFIRMATION: &str = "delete my account";

// No `Debug`: it carries the password.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct DeleteAccountRequest {
    /// The account's current password.
    pub password: String,
    /// Exactly `delete my account`.
    pub confirmation: String,
    /// With two-factor on: a TOTP, mailed (`POST /auth/mfa/challenge` with the bearer
    /// token) or recovery code. Without it, 403 `mfa_required` with `methods`.
    pub mfa_code: Option<String>,
}

/// Where the account stands after the request: always `pending_deletion`, the contract's
/// answer, even with no grace (`AUTHGATE_DELETION_GRACE=0s`), when the account is purged
/// before the answer and `deletion_scheduled_for` is that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum DeletionState {
    /// Deleted when the grace ends, unless restored before.
    PendingDeletion,
}

/// The answer to a deletion request.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(example)]
pub struct DeletionScheduled {
    pub status: DeletionState,
    /// When the account goes for good; with no grace, the moment it went.
    pub deletion_scheduled_for: DateTime<Utc>,
}

pub struct Deletion {
    db: DatabaseConnection,
    grace: Duration,
    clock: Arc<dyn Clock>,
    accounts: Arc<Accounts>,
    audit: Arc<AuditTrail>,
    outbox: Arc<Outbox>,
    reauthentication: Arc<Reauthentication>,
    purge: Arc<Purge>,
}

impl Deletion {
    pub fn new(parts: &Parts) -> Deletion {
        Deletion {
            db: parts.db.clone(),
            grace: parts.config.deletion_grace,
            clock: Arc::clone(&parts.clock),
            accounts: Arc::clone(&parts.accounts),
            audit: Arc::clone(&parts.audit),
            outbox: Arc::clone(&parts.outbox),
            reauthentication: Arc::clone(&parts.reauthentication),
            purge: Arc::clone(&parts.purge),
        }
    }

    /// Schedules the signed-in account's deletion (or, with no grace, purges it). The
    /// password is proven again, counted against the login lockout, and with two-factor on a
    /// second-factor code too: a stolen access token alone cannot delete an account. The last
    /// active admin cannot leave (`LastAdmin`).
    pub async fn request(
        &self,
        account: &Account,
        request: DeleteAccountRequest,
        client: &ClientInfo,
    ) -> Result<DeletionScheduled, AuthError> {
        let mut errors = FieldErrors::new();
        if request.password.is_empty() {
            errors.add("password", "This field is required.");
        }
        if request.confirmation.trim() != CONFIRMATION {
            errors.add(
                "confirmation",
                format!("Type exactly \"{CONFIRMATION}\" to confirm."),
            );
        }
        errors.into_result()?;
        // The password again, then, with two-factor on, the step-up code (§11).
        let proven = self
            .reauthentication
            .confirm(
                account,
                &request.password,
                request.mfa_code.as_deref(),
                Action::DeletionFailed,
                client,
            )
            .await?;

        let txn = store::begin(&self.db).await?;
        if account.role == ADMIN_ROLE {
            self.accounts.lock_active_admins(&txn).await?;
        }
        let user = users::lock(&txn, account.id)
            .await?
            .filter(|user| AccountStatus::parse(&user.status) == AccountStatus::Active)
            .ok_or(AuthError::Unauthorized)?;
        // A password change or reset that committed since the proof wins.
        if !proven.still_holds(&user) {
            return Err(AuthError::InvalidCredentials);
        }
        if user.role == ADMIN_ROLE {
            self.accounts
                .ensure_other_active_admin(&txn, user.id)
                .await?;
        }
        let now = self.clock.now();
        let on = now + delta(self.grace);
        let event = Event::new(Action::DeletionRequested, Some(user.id), client)
            .with(json!({"deletion_scheduled_for": on}));
        self.audit.record(&txn, event).await?;
        if self.grace.is_zero() {
            // Nothing the owner sent stays behind, their address included: the purge's own
            // event records no client.
            self.purge
                .purge_now(
                    &txn,
                    &user,
                    None,
                    &ClientInfo::default(),
                    PurgeTrigger::Owner,
                )
                .await?;
            txn.commit().await?;
            return Ok(DeletionScheduled {
                status: DeletionState::PendingDeletion,
                deletion_scheduled_for: now,
            });
        }
        users::set_status(&txn, user.id, users::PENDING_DELETION, Some(on), now).await?;
        sessions::revoke_all_of(&txn, user.id, now).await?;
        let notice = Letter {
            to: &user.email,
            mail: templates::deletion_scheduled(on),
            user_id: Some(user.id),
            code: None,
        };
        self.outbox.enqueue(&txn, notice).await?;
        txn.commit().await?;
        Ok(DeletionScheduled {
            status: DeletionState::PendingDeletion,
            deletion_scheduled_for: on,
        })
    }
}
