//! The signed-in user's own account: editing it and changing the password.

use std::{collections::BTreeMap, sync::Arc};

use poem_openapi::{Object, types::MaybeUndefined};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    clock::Clock,
    config::Config,
    domain::{
        Account, AuthError, ClientInfo, TokenPair,
        accounts::{AccountStatus, Accounts, Metadata, merge_metadata, store_metadata},
        audit,
        audit::{Action, AuditTrail, Event},
        email::Email,
        error::FieldErrors,
        fields::{parse_avatar_url, parse_bio, parse_date_of_birth, parse_name, parse_phone},
        parts::Parts,
        passwords::{Passwords, REPLACEMENT_FIELDS},
        reauthentication::Reauthentication,
        sessions::Sessions,
        usernames,
    },
    store::{self, avatars, profiles, users},
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

#[derive(Debug, Default, Clone, Object, Deserialize)]
#[serde(default)]
pub struct UpdateProfile {
    /// Up to 1000 characters.
    pub bio: MaybeUndefined<String>,
    /// An absolute http(s) URL of at most 2048 characters. Setting another URL, or `null`,
    /// deletes the picture uploaded with `PUT /auth/me/avatar`.
    pub avatar_url: MaybeUndefined<String>,
    /// `YYYY-MM-DD`, between 1900-01-01 and today.
    pub date_of_birth: MaybeUndefined<String>,
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
    accounts: Arc<Accounts>,
    audit: Arc<AuditTrail>,
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
            accounts: Arc::clone(&parts.accounts),
            audit: Arc::clone(&parts.audit),
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
        for field in request.other.keys() {
            errors.add(field, refusal(field, READ_ONLY.contains(&field.as_str())));
        }
        let profile = match request.profile {
            MaybeUndefined::Value(profile) => profile,
            MaybeUndefined::Null => {
                errors.add("profile", "Send an object with the fields to change.");
                UpdateProfile::default()
            }
            MaybeUndefined::Undefined => UpdateProfile::default(),
        };
        for field in profile.other.keys() {
            errors.add(&format!("profile.{field}"), refusal(field, false));
        }
        let metadata_patch = match request.metadata {
            MaybeUndefined::Value(patch) => Some(patch),
            MaybeUndefined::Null => {
                errors.add("metadata", "Send an object; a key set to null is removed.");
                None
            }
            MaybeUndefined::Undefined => None,
        };
        let sent_username = match &request.username {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(name) => Some(Some(name.as_str())),
        };
        let username =
            usernames::check_field(self.config.usernames, &mut errors, sent_username, false);
        let mut changes = users::AccountChanges {
            first_name: change(&mut errors, "first_name", request.first_name, parse_name),
            last_name: change(&mut errors, "last_name", request.last_name, parse_name),
            phone_number: change(
                &mut errors,
                "phone_number",
                request.phone_number,
                parse_phone,
            ),
            username: username.clone().map(|username| username.map(String::from)),
            ..Default::default()
        };
        let bio = change(&mut errors, "profile.bio", profile.bio, parse_bio);
        // Named `avatar_url` alone, as the contract names this field's problems.
        let avatar_url = change(
            &mut errors,
            "avatar_url",
            profile.avatar_url,
            parse_avatar_url,
        );
        let date_of_birth = change(
            &mut errors,
            "profile.date_of_birth",
            profile.date_of_birth,
            |raw| parse_date_of_birth(raw, today),
        );
        errors.into_result()?;

        let txn = store::begin(&self.db).await?;
        let Some(user) = users::lock(&txn, account.id).await? else {
            return Err(AuthError::Unauthorized);
        };
        let stored_profile = profiles::find(&txn, user.id).await?;
        let before = self.accounts.of_rows(user.clone(), stored_profile.clone());
        if before.status != AccountStatus::Active {
            return Err(AuthError::Unauthorized);
        }
        if let Some(Some(username)) = &username {
            self.accounts
                .ensure_username_free(&txn, username, Some(user.id))
                .await?;
        }
        if let Some(patch) = metadata_patch {
            let merged = merge_metadata(before.metadata.clone(), patch);
            let mut errors = FieldErrors::new();
            self.accounts.check_metadata(&mut errors, &merged);
            changes.metadata = store_metadata(&mut errors, "metadata", &merged);
            errors.into_result()?;
        }
        let mut new_profile = stored_profile.unwrap_or_else(|| profiles::empty(user.id));
        if let Some(bio) = bio {
            new_profile.bio = bio;
        }
        // A URL set by hand (or none) replaces the uploaded picture, which is deleted rather
        // than left served at an address the account no longer shows. Sending back the URL
        // the user object already shows changes neither.
        if let Some(avatar_url) = avatar_url.filter(|url| *url != before.profile.avatar_url) {
            new_profile.avatar_url = avatar_url;
            avatars::delete(&txn, user.id).await?;
        }
        if let Some(date_of_birth) = date_of_birth {
            new_profile.date_of_birth = date_of_birth;
        }
        let user = users::update(&txn, user.id, changes, self.clock.now())
            .await
            .map_err(username_or_other)?;
        profiles::save(&txn, new_profile.clone()).await?;
        let after = self.accounts.of_rows(user, Some(new_profile));
        if let Some(changes) = audit::changes(&before, &after) {
            let event = Event::new(Action::AccountUpdated, Some(account.id), client)
                .by(account.id)
                .with_changes(changes);
            self.audit.record(&txn, event).await?;
        }
        txn.commit().await?;
        Ok(after)
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

/// An update can only collide on the username (the address is not changed here).
fn username_or_other(err: sea_orm::DbErr) -> AuthError {
    if store::is_unique_violation(&err) {
        AuthError::UsernameTaken
    } else {
        err.into()
    }
}

fn refusal(field: &str, read_only: bool) -> String {
    if read_only {
        format!("The field {field} is read-only.")
    } else {
        format!("Unknown field {field}.")
    }
}

/// A sent field, parsed: `None` when it was not sent, `Some(value)` (an empty value clears)
/// when it was and passed `parse`; a problem is recorded under `field` otherwise.
fn change<T>(
    errors: &mut FieldErrors,
    field: &str,
    sent: MaybeUndefined<String>,
    parse: impl FnOnce(&str) -> Result<T, Vec<String>>,
) -> Option<T> {
    match sent {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => errors.check(field, parse("")),
        MaybeUndefined::Value(value) => errors.check(field, parse(&value)),
    }
}
