//! What an operator does to an account's life (§10): disable and enable it, sign it out
//! everywhere, delete it (at once or with the grace), anonymize it. The admin API and the
//! command line (`authgate users disable|enable`) both come here.
//!
//! Every change locks the active admins' rows before its target's (see
//! [`Accounts::lock_active_admins`]), so the rule that some active admin always remains holds
//! however many changes race, and an admin who lost the role meanwhile cannot act.

use std::sync::Arc;

use poem_openapi::Object;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    clock::{Clock, delta},
    config::Config,
    domain::{
        Account, AuthError, ClientInfo,
        accounts::{ADMIN_ROLE, Accounts},
        audit::{Action, AuditTrail, Event},
        error::FieldErrors,
        outbox::{Letter, Outbox},
        parts::Parts,
        purge::{Purge, PurgeTrigger},
    },
    mail::templates,
    store::{profiles, sessions, users},
};

/// The longest reason an admin may give for disabling an account.
const MAX_REASON_CHARS: usize = 500;

/// Stands in for the password of an anonymized account. Not a PHC string, so no password
/// verifies against it (an unparsable hash is a mismatch): enabled again, the account still
/// cannot sign in, and its address (`…@anonymized.invalid`) receives no reset code.
const UNUSABLE_PASSWORD_HASH: &str = "!anonymized";

#[derive(Debug, Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct DisableRequest {
    /// Why, for the audit trail (at most 500 characters). Never shown to the account's owner.
    pub reason: Option<String>,
}

/// Who changes an account: an admin through the API, or an operator at the command line.
#[derive(Clone, Copy)]
pub enum Operator<'a> {
    Admin(&'a Account),
    CommandLine,
}

impl Operator<'_> {
    fn admin_id(self) -> Option<Uuid> {
        match self {
            Operator::Admin(admin) => Some(admin.id),
            Operator::CommandLine => None,
        }
    }

    /// The event of a change `action` to `user_id`, recorded as done by this operator.
    fn event<'c>(
        self,
        action: Action,
        user_id: Uuid,
        client: &'c ClientInfo,
        mut details: Value,
    ) -> Event<'c> {
        match self {
            Operator::Admin(admin) => Event::new(action, Some(user_id), client)
                .with(details)
                .by(admin.id),
            Operator::CommandLine => {
                if let Value::Object(fields) = &mut details {
                    fields.insert("via".into(), json!("command_line"));
                }
                Event::new(action, Some(user_id), client).with(details)
            }
        }
    }
}

/// How a deletion by an admin ended.
pub enum AdminDeletion {
    /// Purged at once.
    Purged,
    /// Scheduled with the grace; the account as it now is.
    Scheduled(Box<Account>),
}

pub struct AdminLifecycle {
    db: DatabaseConnection,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    accounts: Arc<Accounts>,
    audit: Arc<AuditTrail>,
    outbox: Arc<Outbox>,
    purge: Arc<Purge>,
}

impl AdminLifecycle {
    pub fn new(parts: &Parts) -> AdminLifecycle {
        AdminLifecycle {
            db: parts.db.clone(),
            config: Arc::clone(&parts.config),
            clock: Arc::clone(&parts.clock),
            accounts: Arc::clone(&parts.accounts),
            audit: Arc::clone(&parts.audit),
            outbox: Arc::clone(&parts.outbox),
            purge: Arc::clone(&parts.purge),
        }
    }

    /// Disables an account: it cannot sign in (403 `account_disabled`), its sessions are
    /// revoked and its access tokens refused. A deletion its owner asked for still happens.
    /// Disabling a disabled account changes nothing.
    pub async fn disable(
        &self,
        operator: Operator<'_>,
        user_id: Uuid,
        request: DisableRequest,
        client: &ClientInfo,
    ) -> Result<Account, AuthError> {
        let reason = request
            .reason
            .map(|reason| reason.trim().to_string())
            .filter(|reason| !reason.is_empty());
        if reason
            .as_ref()
            .is_some_and(|reason| reason.chars().count() > MAX_REASON_CHARS)
        {
            let mut errors = FieldErrors::new();
            errors.add("reason", format!("At most {MAX_REASON_CHARS} characters."));
            errors.into_result()?;
        }
        let (txn, user) = self.begin_on(operator, user_id, false).await?;
        if user.status != users::DISABLED {
            self.ensure_leaves_an_admin(&txn, &user).await?;
            let now = self.clock.now();
            users::set_status(
                &txn,
                user.id,
                users::DISABLED,
                user.deletion_scheduled_for,
                now,
            )
            .await?;
            let revoked = sessions::revoke_all_of(&txn, user.id, now).await?;
            let details = json!({"reason": reason, "sessions_revoked": revoked});
            let event = operator.event(Action::AccountDisabled, user.id, client, details);
            self.audit.record(&txn, event).await?;
        }
        txn.commit().await?;
        self.accounts.reload(user_id).await
    }

    /// Lifts a disable: the account is active again, or pending deletion if its owner had
    /// asked for that. Any other account is left as it is.
    pub async fn enable(
        &self,
        operator: Operator<'_>,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> Result<Account, AuthError> {
        let (txn, user) = self.begin_on(operator, user_id, true).await?;
        if user.status == users::DISABLED {
            let status = match user.deletion_scheduled_for {
                Some(_) => users::PENDING_DELETION,
                None => users::ACTIVE,
            };
            users::set_status(
                &txn,
                user.id,
                status,
                user.deletion_scheduled_for,
                self.clock.now(),
            )
            .await?;
            let event = operator.event(Action::AccountEnabled, user.id, client, json!({}));
            self.audit.record(&txn, event).await?;
        }
        txn.commit().await?;
        self.accounts.reload(user_id).await
    }

    /// Revokes every session of the account; access tokens already issued live out their
    /// short lifetime.
    pub async fn sign_out_everywhere(
        &self,
        admin: &Account,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let operator = Operator::Admin(admin);
        let (txn, user) = self.begin_on(operator, user_id, true).await?;
        let revoked = sessions::revoke_all_of(&txn, user.id, self.clock.now()).await?;
        let details = json!({"by": "admin", "sessions_revoked": revoked});
        let event = operator.event(Action::SessionRevocation, user.id, client, details);
        self.audit.record(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Deletes an account: purged at once, or with `grace` scheduled like its owner's own
    /// request (signed out, mailed, restorable until the grace ends). A disabled account
    /// stays disabled while it waits, so it cannot be restored. With no grace configured
    /// (`0s`) it is purged at once either way.
    pub async fn delete(
        &self,
        admin: &Account,
        user_id: Uuid,
        grace: bool,
        client: &ClientInfo,
    ) -> Result<AdminDeletion, AuthError> {
        let operator = Operator::Admin(admin);
        let (txn, user) = self.begin_on(operator, user_id, false).await?;
        self.ensure_leaves_an_admin(&txn, &user).await?;
        if !grace || self.config.deletion_grace.is_zero() {
            self.purge
                .purge_now(&txn, &user, Some(admin.id), client, PurgeTrigger::Admin)
                .await?;
            txn.commit().await?;
            return Ok(AdminDeletion::Purged);
        }
        // Already scheduled: the earlier schedule stands.
        if user.deletion_scheduled_for.is_none() {
            let now = self.clock.now();
            let on = now + delta(self.config.deletion_grace);
            let restorable = user.status != users::DISABLED;
            let status = if restorable {
                users::PENDING_DELETION
            } else {
                users::DISABLED
            };
            users::set_status(&txn, user.id, status, Some(on), now).await?;
            sessions::revoke_all_of(&txn, user.id, now).await?;
            let details = json!({"deletion_scheduled_for": on});
            let event = operator.event(Action::DeletionRequested, user.id, client, details);
            self.audit.record(&txn, event).await?;
            // Only an owner who can restore the account is told how.
            if restorable {
                let notice = Letter {
                    to: &user.email,
                    mail: templates::deletion_scheduled(on),
                    user_id: Some(user.id),
                    code: None,
                };
                self.outbox.enqueue(&txn, notice).await?;
            }
        }
        txn.commit().await?;
        Ok(AdminDeletion::Scheduled(Box::new(
            self.accounts.reload(user_id).await?,
        )))
    }

    /// Anonymizes an account: the id stays (other services may hold it); the address becomes
    /// `deleted-<id>@anonymized.invalid`; names, phone, username, metadata, profile and
    /// picture are cleared; the password can no longer be used; the account is disabled;
    /// sessions, second factors and trusted devices go; its audit events are scrubbed as in
    /// a purge. `app_metadata`, the
    /// operator's own fields, stays. A scheduled deletion still happens.
    pub async fn anonymize(
        &self,
        admin: &Account,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> Result<Account, AuthError> {
        let operator = Operator::Admin(admin);
        let (txn, user) = self.begin_on(operator, user_id, false).await?;
        self.ensure_leaves_an_admin(&txn, &user).await?;
        let now = self.clock.now();
        self.purge.erase_personal_data(&txn, &user).await?;
        let blank = users::AccountChanges {
            email: Some(format!("deleted-{}@anonymized.invalid", user.id)),
            first_name: Some(String::new()),
            last_name: Some(String::new()),
            phone_number: Some(None),
            username: Some(None),
            metadata: Some("{}".into()),
            ..Default::default()
        };
        users::update(&txn, user.id, blank, now).await?;
        users::set_password(&txn, user.id, UNUSABLE_PASSWORD_HASH.into(), false, now).await?;
        users::set_mfa_methods(&txn, user.id, &[]).await?;
        users::set_status(
            &txn,
            user.id,
            users::DISABLED,
            user.deletion_scheduled_for,
            now,
        )
        .await?;
        profiles::save(&txn, profiles::empty(user.id)).await?;
        // No `changes`: their `before` values are the very data being removed.
        let event = operator.event(Action::AccountAnonymized, user.id, client, json!({}));
        self.audit.record(&txn, event).await?;
        txn.commit().await?;
        self.accounts.reload(user_id).await
    }

    /// Starts the transaction of a change to `user_id` and locks it: the active admins'
    /// rows first (the acting admin must still be one), then the target's. An admin acting on
    /// their own account is refused unless `self_allowed`: they leave through
    /// `/auth/me/delete`, and must not lock themselves out.
    async fn begin_on(
        &self,
        operator: Operator<'_>,
        user_id: Uuid,
        self_allowed: bool,
    ) -> Result<(DatabaseTransaction, users::Model), AuthError> {
        if let Operator::Admin(admin) = operator
            && admin.id == user_id
            && !self_allowed
        {
            return Err(AuthError::CannotTargetSelf);
        }
        self.accounts
            .begin_admin_change_on(&self.db, operator.admin_id(), user_id)
            .await
    }

    /// Refuses a change that takes away the last active admin.
    async fn ensure_leaves_an_admin(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
    ) -> Result<(), AuthError> {
        if user.role == ADMIN_ROLE && user.status == users::ACTIVE {
            self.accounts
                .ensure_other_active_admin(txn, user.id)
                .await?;
        }
        Ok(())
    }
}
