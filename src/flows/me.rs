//! The signed-in user's own account: editing it and changing the password.

use std::{collections::BTreeMap, sync::Arc};

use poem_openapi::{Object, types::MaybeUndefined};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::{Value, json};

use super::account_edit::{AccountEditor, AccountFields, Edit, UpdateProfile, refuse_unknown};
use crate::{
    clock::Clock,
    config::Config,
    domain::{
        Account, AuthError, ClientInfo, TokenPair,
        accounts::{AccountStatus, Metadata},
        audit::Action,
        email::Email,
        error::FieldErrors,
        parts::Parts,
        passwords::{Passwords, REPLACEMENT_FIELDS},
        reauthentication::Reauthentication,
        sessions::Sessions,
    },
    store::{self, users},
};

/// Fields of the user object a user may change. Send only what changes; `null` clears a
/// field. Sending a read-only field (`email`, `role`, `is_verified`, …) is an error.
#[derive(Debug, Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct UpdateMeRequest {
    pub first_name: MaybeUndefined<String>,
    pub last_name: MaybeUndefined<String>,
    /// International form, e.g. `+15551234567`.
    pub phone_number: MaybeUndefined<String>,
    /// 3–30 letters, digits, `_`, `.` or `-`, starting with a letter or digit; unique
    /// without regard to case (409 `username_taken`). `null` clears it, unless usernames are
    /// required.
    pub username: MaybeUndefined<String>,
    pub profile: MaybeUndefined<UpdateProfile>,
    /// Merged into the stored object key by key; a key sent as `null` is removed. The result
    /// must satisfy the operator's profile schema (problems under `metadata.<key>`), except
    /// its `required` list, which only decides `profile_complete`; at most 16 KiB of JSON.
    pub metadata: MaybeUndefined<Metadata>,
    // Everything else that was sent, to be refused by name.
    #[oai(skip)]
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

// No `Debug`: it carries passwords.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// The same rules as at registration.
    pub new_password: String,
    pub confirm_password: String,
    /// With two-factor on: a TOTP, mailed (`POST /auth/mfa/challenge` with the bearer
    /// token) or recovery code. Without it, 403 `mfa_required` with `methods`.
    pub mfa_code: Option<String>,
}

/// Fields of the user object that only the service sets.
const READ_ONLY: &[&str] = &[
    "id",
    "email",
    "role",
    "is_verified",
    "is_active",
    "status",
    "deletion_scheduled_for",
    "app_metadata",
    "mfa",
    "profile_complete",
    "created_at",
    "updated_at",
    "last_login_at",
    "last_seen_at",
    "password",
    "password_hash",
];

pub struct Me {
    db: DatabaseConnection,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    editor: AccountEditor,
    passwords: Arc<Passwords>,
    reauthentication: Arc<Reauthentication>,
    sessions: Arc<Sessions>,
}

impl Me {
    pub fn new(parts: &Parts) -> Me {
        Me {
            db: parts.db.clone(),
            config: Arc::clone(&parts.config),
            clock: Arc::clone(&parts.clock),
            editor: AccountEditor::new(parts),
            passwords: Arc::clone(&parts.passwords),
            reauthentication: Arc::clone(&parts.reauthentication),
            sessions: Arc::clone(&parts.sessions),
        }
    }

    /// Applies a partial update: fields not sent are left alone, `null` clears one. Every
    /// field is checked before anything is written; the change is audited with its
    /// before/after values.
    pub async fn update(
        &self,
        account: &Account,
        request: UpdateMeRequest,
        client: &ClientInfo,
    ) -> Result<Account, AuthError> {
        let today = self.clock.now().date_naive();
        let mut errors = FieldErrors::new();
        refuse_unknown(&mut errors, &request.other, READ_ONLY);
        let fields = AccountFields {
            first_name: request.first_name,
            last_name: request.last_name,
            phone_number: request.phone_number,
            username: request.username,
            profile: request.profile,
            metadata: request.metadata,
        };
        let edit = Edit::parse(&mut errors, self.config.usernames, today, fields);
        errors.into_result()?;

        let txn = store::begin(&self.db).await?;
        let Some(user) = users::lock(&txn, account.id).await? else {
            return Err(AuthError::Unauthorized);
        };
        if AccountStatus::parse(&user.status) != AccountStatus::Active {
            return Err(AuthError::Unauthorized);
        }
        let edited = self
            .editor
            .apply(&txn, user, edit, Some(account.id), client, json!({}))
            .await?;
        txn.commit().await?;
        Ok(edited.after)
    }

    /// Changes the password of a signed-in user. Every session ends, and this device gets a
    /// new one: whoever else knew the old password is signed out everywhere.
    pub async fn change_password(
        &self,
        account: &Account,
        request: ChangePasswordRequest,
        client: &ClientInfo,
    ) -> Result<TokenPair, AuthError> {
        let email = Email::parse(&account.email)
            .map_err(|_| AuthError::internal("a stored email no longer parses"))?;
        let mut errors = FieldErrors::new();
        if request.current_password.is_empty() {
            errors.add("current_password", "This field is required.");
        }
        let new_password = self.passwords.check_new(
            &mut errors,
            &REPLACEMENT_FIELDS,
            Some(&email),
            &request.new_password,
            &request.confirm_password,
        );
        let new_password = errors.finish(new_password)?;
        let proven = self
            .reauthentication
            .confirm(
                account,
                &request.current_password,
                request.mfa_code.as_deref(),
                Action::PasswordChangeFailed,
                client,
            )
            .await?;
        let new_hash = self.passwords.hash(&new_password).await?;

        let txn = store::begin(&self.db).await?;
        let user = self
            .passwords
            .replace(&txn, account.id, new_hash, Action::PasswordChange, client)
            .await?;
        let tokens = self
            .sessions
            .start(&txn, &user, client, proven.way_in())
            .await?;
        txn.commit().await?;
        Ok(tokens)
    }
}
