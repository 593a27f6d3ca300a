//! Changing the signed-in account's address: the password proves the owner, a code mailed to
//! the new address proves the new inbox, and the old address is told once it is done.

use std::sync::Arc;

use poem_openapi::Object;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    clock::Clock,
    config::Config,
    domain::{
        Account, AuthError, ClientInfo, SignedIn,
        accounts::Accounts,
        audit,
        audit::{Action, AuditTrail, Event},
        codes::{Codes, Purpose},
        email::Email,
        error::FieldErrors,
        outbox::{Letter, Outbox},
        parts::Parts,
        reauthentication::Reauthentication,
        sessions::{Amr, Sessions, WayIn},
    },
    mail::templates,
    store::{self, sessions, users},
};

/// The address to change to, and the password that shows the request is the owner's.
// No `Debug`: it carries the password.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct EmailChangeRequest {
    /// Trimmed and lowercased before use; it must differ from the current address.
    pub new_email: String,
    /// The account's current password.
    pub password: String,
    /// With two-factor on: a TOTP, mailed (`POST /auth/mfa/challenge` with the bearer
    /// token) or recovery code. Without it, 403 `mfa_required` with `methods`.
    pub mfa_code: Option<String>,
}

/// The code mailed to the new address.
// No `Debug`: it carries the code.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct EmailChangeConfirmation {
    /// The 6-digit code from the mail to the new address.
    pub otp: String,
}

/// A code is on its way to the new address.
#[derive(Debug, Object)]
pub struct EmailChangeStarted {
    /// Always true.
    pub otp_sent: bool,
    /// Seconds the code is valid.
    pub otp_expires_in: u64,
}

pub struct EmailChange {
    db: DatabaseConnection,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    accounts: Arc<Accounts>,
    audit: Arc<AuditTrail>,
    codes: Arc<Codes>,
    outbox: Arc<Outbox>,
    reauthentication: Arc<Reauthentication>,
    sessions: Arc<Sessions>,
}

impl EmailChange {
    pub fn new(parts: &Parts) -> EmailChange {
        EmailChange {
            db: parts.db.clone(),
            config: Arc::clone(&parts.config),
            clock: Arc::clone(&parts.clock),
            accounts: Arc::clone(&parts.accounts),
            audit: Arc::clone(&parts.audit),
            codes: Arc::clone(&parts.codes),
            outbox: Arc::clone(&parts.outbox),
            reauthentication: Arc::clone(&parts.reauthentication),
            sessions: Arc::clone(&parts.sessions),
        }
    }

    /// Mails a code to the new address once the password is proven. The account's earlier
    /// pending change, if any, is voided: only the newest request can be confirmed.
    pub async fn request(
        &self,
        account: &Account,
        request: EmailChangeRequest,
        client: &ClientInfo,
    ) -> Result<EmailChangeStarted, AuthError> {
        let mut errors = FieldErrors::new();
        let new_email = errors.check("new_email", Email::parse(&request.new_email));
        if new_email
            .as_ref()
            .is_some_and(|new| new.as_str() == account.email)
        {
            errors.add("new_email", "This is already your address.");
        }
        if request.password.is_empty() {
            errors.add("password", "This field is required.");
        }
        let new_email = errors.finish(new_email)?;
        if !new_email.domain_is_allowed(&self.config.allowed_email_domains) {
            return Err(AuthError::EmailDomainNotAllowed);
        }
        // The password before whether the address is taken: an access token alone must not
        // tell which addresses have accounts.
        let proven = self
            .reauthentication
            .confirm(
                account,
                &request.password,
                request.mfa_code.as_deref(),
                Action::EmailChangeFailed,
                client,
            )
            .await?;

        // The account row is locked first, in the order confirmation takes the rows, so two
        // requests of one account run one after the other and cannot deadlock.
        let txn = store::begin(&self.db).await?;
        let user = users::lock(&txn, account.id)
            .await?
            .filter(|user| user.status == users::ACTIVE)
            .ok_or(AuthError::Unauthorized)?;
        if !proven.still_holds(&user) {
            return Err(AuthError::InvalidCredentials);
        }
        // Any account holding the address blocks it, an unverified one too: registering again
        // may take an unverified address over, a change may not take it from under someone.
        if users::find_by_email(&txn, new_email.as_str())
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        self.codes
            .void_held_by(&txn, user.id, Some(Purpose::EmailChange))
            .await?;
        // Inside the new address's cooldown this fails and the transaction is dropped: the
        // older pending change stays as it was.
        self.codes
            .issue(&txn, &new_email, Purpose::EmailChange, Some(user.id))
            .await?;
        let event = Event::new(Action::EmailChangeRequested, Some(user.id), client)
            .with(json!({"new_email": new_email.as_str()}));
        self.audit.record(&txn, event).await?;
        txn.commit().await?;
        Ok(EmailChangeStarted {
            otp_sent: true,
            otp_expires_in: self.codes.ttl_seconds(),
        })
    }

    /// Takes the new address with the code mailed to it. The address counts as verified (the
    /// code proved it); every session ends and this device gets a new one; the codes still
    /// out for the account stop working (a reset code mailed to the old address must not
    /// reach the account any more); the old address is told.
    pub async fn confirm(
        &self,
        account: &Account,
        confirmation: EmailChangeConfirmation,
        signed_in_with: &[String],
        client: &ClientInfo,
    ) -> Result<SignedIn, AuthError> {
        let code = confirmation.otp.trim();
        if code.is_empty() {
            let mut errors = FieldErrors::new();
            errors.add("otp", "This field is required.");
            return Err(AuthError::Validation(errors));
        }
        let txn = store::begin(&self.db).await?;
        let user = users::lock(&txn, account.id)
            .await?
            .filter(|user| user.status == users::ACTIVE)
            .ok_or(AuthError::Unauthorized)?;
        let (txn, new_email) = self
            .codes
            .check_held(txn, user.id, Purpose::EmailChange, code)
            .await?;
        // Someone may have taken the address since the code was mailed.
        if users::find_by_email(&txn, new_email.as_str())
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        let before = self.load(&txn, user.id).await?;
        let now = self.clock.now();
        let changes = users::AccountChanges {
            email: Some(new_email.to_string()),
            is_verified: Some(true),
            ..Default::default()
        };
        let changed = users::update(&txn, user.id, changes, now)
            .await
            .map_err(email_or_other)?;
        self.codes.void_held_by(&txn, user.id, None).await?;
        sessions::revoke_all_of(&txn, user.id, now).await?;
        // The new session keeps how the caller's was authenticated.
        let way_in = WayIn::with(Amr::of_methods(signed_in_with));
        let tokens = self.sessions.start(&txn, &changed, client, way_in).await?;
        let after = self.load(&txn, user.id).await?;
        let mut event = Event::new(Action::EmailChanged, Some(user.id), client).by(user.id);
        if let Some(changes) = audit::changes(&before, &after) {
            event = event.with_changes(changes);
        }
        self.audit.record(&txn, event).await?;
        let notice = Letter {
            to: &user.email,
            mail: templates::email_changed(new_email.as_str()),
            user_id: Some(user.id),
            code: None,
        };
        self.outbox.enqueue(&txn, notice).await?;
        txn.commit().await?;
        Ok(SignedIn {
            account: after,
            tokens,
        })
    }

    /// The account as `txn` sees it.
    async fn load(&self, txn: &DatabaseTransaction, user_id: Uuid) -> Result<Account, AuthError> {
        self.accounts
            .load(txn, user_id)
            .await?
            .ok_or(AuthError::Unauthorized)
    }
}

/// The address can only collide with an account that took it after the check above.
fn email_or_other(err: sea_orm::DbErr) -> AuthError {
    if store::is_unique_violation(&err) {
        AuthError::EmailTaken
    } else {
        err.into()
    }
}
