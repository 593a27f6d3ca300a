//! The end of an account (§10): its purge, and the erasure of its personal data that a purge
//! and an admin's anonymization share.
//!
//! A purge removes the user, profile, picture, sessions with their refresh tokens, codes,
//! two-factor data, trusted devices and the account's mail in the outbox; the address and username are free again. The account's
//! audit events stay (type, time, user id) without the email, IP and user agent, and one
//! `account_purged` event is added. Due purges are claimed with a compare-and-set, so however
//! many instances (and `authgate purge` runs) look at once, each account is purged once.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde_json::json;
use uuid::Uuid;

use super::{
    audit::{Action, AuditTrail, Event},
    client::ClientInfo,
    error::AuthError,
};
use crate::{
    clock::Clock,
    store::{
        self, avatars, codes, mfa_challenges, mfa_factors, outbox, recovery_codes, sessions,
        trusted_devices, users,
    },
};

/// Accounts looked at per query of a purge run.
const BATCH: u64 = 100;

/// What set a purge off, for its `account_purged` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeTrigger {
    /// The deletion grace ended (housekeeping or `authgate purge`).
    Schedule,
    /// The owner deleted the account with no grace configured (`AUTHGATE_DELETION_GRACE=0s`).
    Owner,
    /// An admin deleted it at once.
    Admin,
}

impl PurgeTrigger {
    fn as_str(self) -> &'static str {
        match self {
            PurgeTrigger::Schedule => "schedule",
            PurgeTrigger::Owner => "owner",
            PurgeTrigger::Admin => "admin",
        }
    }
}

pub struct Purge {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    audit: Arc<AuditTrail>,
}

impl Purge {
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>, audit: Arc<AuditTrail>) -> Purge {
        Purge { db, clock, audit }
    }

    /// Purges every account whose deletion grace has ended and that no other instance purges
    /// first; answers how many this call purged. Each account goes in a transaction of its
    /// own, so one purge that fails leaves the others done.
    pub async fn purge_due(&self) -> Result<usize, AuthError> {
        let mut purged = 0;
        loop {
            let now = self.clock.now();
            let due = users::due_for_purge(&self.db, now, BATCH).await?;
            for &id in &due {
                if self.purge_if_due(id, now).await? {
                    purged += 1;
                }
            }
            // A full batch may have more behind it; every account of this one is gone now,
            // purged here or elsewhere (or restored), so the next query moves on.
            if (due.len() as u64) < BATCH {
                return Ok(purged);
            }
        }
    }

    /// Purges one account if its deletion is still due and this instance wins it.
    async fn purge_if_due(
        &self,
        id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, AuthError> {
        let txn = store::begin(&self.db).await?;
        let Some(user) = users::find(&txn, id).await? else {
            return Ok(false);
        };
        // The claim: exactly one of the instances racing for the account deletes its row.
        if !users::delete_if_due(&txn, id, now).await? {
            return Ok(false);
        }
        self.after_deletion(
            &txn,
            &user,
            None,
            &ClientInfo::default(),
            PurgeTrigger::Schedule,
        )
        .await?;
        txn.commit().await?;
        tracing::debug!(user_id = %id, "purged an account whose deletion grace ended");
        Ok(true)
    }

    /// Purges, inside `txn`, an account whose row the caller holds locked: an admin's
    /// immediate deletion, or the owner's with no grace. `actor` is the admin, if one acts.
    pub async fn purge_now(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
        actor: Option<Uuid>,
        client: &ClientInfo,
        trigger: PurgeTrigger,
    ) -> Result<(), AuthError> {
        if !users::delete(txn, user.id).await? {
            return Err(AuthError::NotFound);
        }
        self.after_deletion(txn, user, actor, client, trigger).await
    }

    /// What follows the deletion of the user row: what it did not take along, and the record.
    async fn after_deletion(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
        actor: Option<Uuid>,
        client: &ClientInfo,
        trigger: PurgeTrigger,
    ) -> Result<(), AuthError> {
        self.erase_personal_data(txn, user).await?;
        let mut event = Event::new(Action::AccountPurged, Some(user.id), client)
            .with(json!({"trigger": trigger.as_str()}));
        if let Some(actor) = actor {
            event = event.by(actor);
        }
        self.audit.record(txn, event).await
    }

    /// Removes, inside `txn`, what an account leaves outside its own row: sessions and
    /// trusted devices (with their addresses and user agents), codes, second factors,
    /// recovery codes and waiting sign-ins, its mail waiting in the outbox, its picture, and
    /// the personal data in its audit events. A purge then deletes the row; an anonymization
    /// blanks it.
    pub async fn erase_personal_data(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
    ) -> Result<(), AuthError> {
        sessions::delete_all_of(txn, user.id).await?;
        codes::delete_of_user(txn, user.id, &user.email).await?;
        outbox::delete_of_user(txn, user.id).await?;
        avatars::delete(txn, user.id).await?;
        mfa_factors::delete_all_of(txn, user.id).await?;
        recovery_codes::delete_all_of(txn, user.id).await?;
        mfa_challenges::delete_all_of(txn, user.id).await?;
        trusted_devices::delete_all_of(txn, user.id).await?;
        self.audit.scrub_personal_data_of(txn, user.id).await
    }
}
