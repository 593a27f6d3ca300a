//! Editing an account, whoever edits it: its owner (`PATCH /auth/me`) or an admin
//! (`PATCH /admin/users/{id}`, and reverts of earlier edits). The fields both may send are
//! parsed here, once, and every edit is written here, once: on the row the caller locked, with
//! the username and address checked, metadata merged and checked, the profile saved and one
//! audit event holding each changed field's value before and after.

use std::{collections::BTreeMap, sync::Arc};

use chrono::NaiveDate;
use poem_openapi::{Object, types::MaybeUndefined};
use sea_orm::{DatabaseTransaction, DbErr};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    clock::Clock,
    config::Usernames,
    domain::{
        Account, AuthError, ClientInfo,
        accounts::{Accounts, Metadata, merge_metadata, store_metadata},
        audit::{self, Action, AuditTrail, Event},
        error::FieldErrors,
        fields::{parse_avatar_url, parse_bio, parse_date_of_birth, parse_name, parse_phone},
        parts::Parts,
        usernames::{self, Username},
    },
    store::{self, avatars, profiles, users},
};

/// The fields of the user object that both its owner and an admin may change, as sent (each
/// request type declares them for its own document).
#[derive(Debug, Default)]
pub struct AccountFields {
    pub first_name: MaybeUndefined<String>,
    pub last_name: MaybeUndefined<String>,
    pub phone_number: MaybeUndefined<String>,
    pub username: MaybeUndefined<String>,
    pub profile: MaybeUndefined<UpdateProfile>,
    pub metadata: MaybeUndefined<Metadata>,
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

/// Changes to the profile row; `None` leaves a field alone.
#[derive(Debug, Default)]
struct ProfileChanges {
    bio: Option<String>,
    avatar_url: Option<Option<String>>,
    date_of_birth: Option<Option<NaiveDate>>,
}

/// An edit that passed every check that needs no database.
#[derive(Debug, Default)]
pub struct Edit {
    /// Columns of the user row. Whoever may change the address, role or verification (an
    /// admin) sets those here.
    pub changes: users::AccountChanges,
    /// The new username, to be checked as free.
    username: Option<Username>,
    /// Merged into the stored metadata and checked against the profile schema.
    metadata: Option<Metadata>,
    /// Merged into the stored `app_metadata` (admins only).
    pub app_metadata: Option<Metadata>,
    profile: ProfileChanges,
}

impl Edit {
    /// Parses the fields both the owner and an admin may send, recording every problem.
    pub fn parse(
        errors: &mut FieldErrors,
        policy: Usernames,
        today: NaiveDate,
        fields: AccountFields,
    ) -> Edit {
        let profile = match fields.profile {
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
        let metadata = object_patch(errors, "metadata", fields.metadata);
        let sent_username = match &fields.username {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(name) => Some(Some(name.as_str())),
        };
        let username = usernames::check_field(policy, errors, sent_username, false);
        let changes = users::AccountChanges {
            first_name: change(errors, "first_name", fields.first_name, parse_name),
            last_name: change(errors, "last_name", fields.last_name, parse_name),
            phone_number: change(errors, "phone_number", fields.phone_number, parse_phone),
            username: username.clone().map(|username| username.map(String::from)),
            ..Default::default()
        };
        let profile = ProfileChanges {
            bio: change(errors, "profile.bio", profile.bio, parse_bio),
            // Named `avatar_url` alone, as the contract names this field's problems.
            avatar_url: change(errors, "avatar_url", profile.avatar_url, parse_avatar_url),
            date_of_birth: change(
                errors,
                "profile.date_of_birth",
                profile.date_of_birth,
                |raw| parse_date_of_birth(raw, today),
            ),
        };
        Edit {
            changes,
            username: username.flatten(),
            metadata,
            app_metadata: None,
            profile,
        }
    }
}

/// Records a problem for every field sent that is not editable: `read_only` names the fields
/// of the user object the caller may not write, anything else is unknown.
pub fn refuse_unknown(
    errors: &mut FieldErrors,
    sent: &BTreeMap<String, Value>,
    read_only: &[&str],
) {
    for field in sent.keys() {
        errors.add(field, refusal(field, read_only.contains(&field.as_str())));
    }
}

/// An object sent to be merged into a stored one: `null` is refused (a key set to `null` is
/// how one is removed).
pub fn object_patch(
    errors: &mut FieldErrors,
    field: &str,
    sent: MaybeUndefined<Metadata>,
) -> Option<Metadata> {
    match sent {
        MaybeUndefined::Value(patch) => Some(patch),
        MaybeUndefined::Null => {
            errors.add(field, "Send an object; a key set to null is removed.");
            None
        }
        MaybeUndefined::Undefined => None,
    }
}

/// Writes edits and audits them.
pub struct AccountEditor {
    clock: Arc<dyn Clock>,
    accounts: Arc<Accounts>,
    audit: Arc<AuditTrail>,
}

/// The account before and after an edit.
pub struct Edited {
    pub before: Account,
    pub after: Account,
}

impl AccountEditor {
    pub fn new(parts: &Parts) -> AccountEditor {
        AccountEditor {
            clock: Arc::clone(&parts.clock),
            accounts: Arc::clone(&parts.accounts),
            audit: Arc::clone(&parts.audit),
        }
    }

    /// Writes `edit` to `user`, whose row the caller locked in `txn`, and records one
    /// `account_updated` event by `actor` (with `details`) holding each changed field's value
    /// before and after; an edit that changes nothing records nothing. A username or address
    /// another account holds is `UsernameTaken` or `EmailTaken`.
    pub async fn apply(
        &self,
        txn: &DatabaseTransaction,
        user: users::Model,
        edit: Edit,
        actor: Option<Uuid>,
        client: &ClientInfo,
        details: Value,
    ) -> Result<Edited, AuthError> {
        let Edit {
            mut changes,
            username,
            metadata,
            app_metadata,
            profile,
        } = edit;
        let stored_profile = profiles::find(txn, user.id).await?;
        let before = self.accounts.of_rows(user.clone(), stored_profile.clone());
        if let Some(username) = &username {
            self.accounts
                .ensure_username_free(txn, username, Some(user.id))
                .await?;
        }
        if let Some(email) = &changes.email
            && users::find_by_email(txn, email)
                .await?
                .is_some_and(|holder| holder.id != user.id)
        {
            return Err(AuthError::EmailTaken);
        }
        let mut errors = FieldErrors::new();
        if let Some(patch) = metadata {
            let merged = merge_metadata(before.metadata.clone(), patch);
            self.accounts.check_metadata(&mut errors, &merged);
            changes.metadata = store_metadata(&mut errors, "metadata", &merged);
        }
        if let Some(patch) = app_metadata {
            let merged = merge_metadata(before.app_metadata.clone(), patch);
            changes.app_metadata = store_metadata(&mut errors, "app_metadata", &merged);
        }
        errors.into_result()?;

        let mut new_profile = stored_profile.unwrap_or_else(|| profiles::empty(user.id));
        if let Some(bio) = profile.bio {
            new_profile.bio = bio;
        }
        // A URL set by hand (or none) replaces the uploaded picture, which is deleted rather
        // than left served at an address the account no longer shows. Sending back the URL
        // the user object already shows changes neither.
        if let Some(avatar_url) = profile
            .avatar_url
            .filter(|url| *url != before.profile.avatar_url)
        {
            new_profile.avatar_url = avatar_url;
            avatars::delete(txn, user.id).await?;
        }
        if let Some(date_of_birth) = profile.date_of_birth {
            new_profile.date_of_birth = date_of_birth;
        }
        let updated = users::update(txn, user.id, changes, self.clock.now())
            .await
            .map_err(collision)?;
        profiles::save(txn, new_profile.clone()).await?;
        let after = self.accounts.of_rows(updated, Some(new_profile));
        if let Some(changes) = audit::changes(&before, &after) {
            let event = Event::new(Action::AccountUpdated, Some(user.id), client)
                .with(details)
                .with_changes(changes)
                .by_any(actor);
            self.audit.record(txn, event).await?;
        }
        Ok(Edited { before, after })
    }
}

/// A write that lost a race on the username or address: the checks before it passed, and
/// another transaction took the name or address before this one committed.
pub fn collision(err: DbErr) -> AuthError {
    if !store::is_unique_violation(&err) {
        err.into()
    } else if users::is_username_collision(&err) {
        AuthError::UsernameTaken
    } else {
        AuthError::EmailTaken
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
