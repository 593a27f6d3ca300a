//! Accounts as the rest of the service sees them: the user object, loaded in one query.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use poem_openapi::{Enum, Object};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{
    account_cache::AccountCache, error::AuthError, profile_schema::ProfileSchema,
    usernames::Username,
};
use crate::store::{
    self,
    account_changes::{self, Announcement},
    profiles, users,
};

/// The role that administers accounts; `AUTHGATE_ROLES` always contains it.
pub const ADMIN_ROLE: &str = "admin";

/// A JSON object of app-defined fields.
pub type Metadata = BTreeMap<String, Value>;

/// Where an account is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Signs in and uses the service.
    Active,
    /// Switched off by an admin: no sign-in, no tokens.
    Disabled,
    /// Its owner asked for deletion; signing in with the right password can restore it until
    /// `deletion_scheduled_for`.
    PendingDeletion,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => users::ACTIVE,
            AccountStatus::Disabled => users::DISABLED,
            AccountStatus::PendingDeletion => users::PENDING_DELETION,
        }
    }

    /// The stored form; anything unknown counts as disabled, the safe side.
    pub fn parse(stored: &str) -> AccountStatus {
        match stored {
            users::ACTIVE => AccountStatus::Active,
            users::PENDING_DELETION => AccountStatus::PendingDeletion,
            _ => AccountStatus::Disabled,
        }
    }
}

/// The account's second factors (§11).
#[derive(Debug, Clone, Default, Object, Serialize)]
pub struct MfaSummary {
    pub enabled: bool,
    /// `totp` and/or `email`.
    pub methods: Vec<String>,
}

impl MfaSummary {
    /// From the JSON array kept on the account row.
    pub fn of_stored(stored: &str) -> MfaSummary {
        let methods: Vec<String> = serde_json::from_str(stored).unwrap_or_default();
        MfaSummary {
            enabled: !methods.is_empty(),
            methods,
        }
    }
}

/// The user object. Never carries a password hash, code or token.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "User", example)]
pub struct Account {
    pub id: Uuid,
    /// Lowercased when stored.
    pub email: String,
    /// The public handle, as written; unique without regard to case.
    #[oai(nullable)]
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: String,
    /// International form, e.g. `+15551234567`.
    #[oai(nullable)]
    pub phone_number: Option<String>,
    pub role: String,
    /// True once the address was proven with a code.
    pub is_verified: bool,
    /// True only while `status` is `active`.
    pub is_active: bool,
    pub status: AccountStatus,
    /// When a pending deletion becomes final.
    #[oai(nullable)]
    pub deletion_scheduled_for: Option<DateTime<Utc>>,
    pub profile: Profile,
    /// The user's own app-specific fields (checked against the operator's profile schema).
    pub metadata: Metadata,
    /// App-specific fields only admins write.
    pub app_metadata: Metadata,
    pub mfa: MfaSummary,
    /// True when first and last name are set and `metadata` has every key the profile
    /// schema requires.
    pub profile_complete: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[oai(nullable)]
    pub last_login_at: Option<DateTime<Utc>>,
    /// The last login or refresh.
    #[oai(nullable)]
    pub last_seen_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Object, Serialize)]
pub struct Profile {
    /// Up to 1000 characters.
    pub bio: String,
    /// An http(s) URL: the picture uploaded with `PUT /auth/me/avatar`, served by this
    /// service at `/avatars/{user_id}?v=…` (the version changes with the picture), or a URL
    /// the user set with `PATCH /auth/me`.
    #[oai(nullable)]
    pub avatar_url: Option<String>,
    /// `YYYY-MM-DD`.
    #[oai(nullable)]
    pub date_of_birth: Option<NaiveDate>,
}

/// A stored JSON object; anything else reads as empty.
pub fn parse_metadata(stored: &str) -> Metadata {
    serde_json::from_str(stored).unwrap_or_default()
}

/// The most JSON `metadata` (or `app_metadata`) may hold, so a profile cannot become storage.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Merges `patch` into `stored` key by key; a key sent as `null` is removed.
pub fn merge_metadata(mut stored: Metadata, patch: Metadata) -> Metadata {
    for (key, value) in patch {
        if value.is_null() {
            stored.remove(&key);
        } else {
            stored.insert(key, value);
        }
    }
    stored
}

/// The stored form of metadata, refused under `field` when it is over
/// [`MAX_METADATA_BYTES`].
pub fn store_metadata(
    errors: &mut super::error::FieldErrors,
    field: &str,
    metadata: &Metadata,
) -> Option<String> {
    let stored = serde_json::to_string(metadata).unwrap_or_default();
    if stored.len() > MAX_METADATA_BYTES {
        errors.add(
            field,
            format!("At most {MAX_METADATA_BYTES} bytes of JSON."),
        );
        return None;
    }
    Some(stored)
}

/// What `profiles.avatar_url` holds for a picture stored by the service: its path, which the
/// user object turns into a URL under `AUTHGATE_PUBLIC_URL` (so a new public URL moves every
/// picture along). A URL a user sets is always absolute, so the leading `/` tells them apart.
/// The version is the picture's ETag: a new picture gets a new URL, which caches have not seen.
pub fn stored_picture_path(user_id: Uuid, etag: &str) -> String {
    format!("/avatars/{user_id}?v={}", etag.trim_matches('"'))
}

/// The longest an account is answered from memory, however quiet its announcements: the
/// bound on a stale answer should announcements ever go missing unnoticed (a connection
/// pooler in transaction mode passes none on).
const ACCOUNTS_KEPT_FOR: Duration = Duration::from_secs(10);

/// Reads accounts.
pub struct Accounts {
    /// Read connections (`store::connect_reads`): this part only reads, and on every request.
    reads: DatabaseConnection,
    /// The accounts behind recent access tokens.
    cache: AccountCache,
    schema: Arc<ProfileSchema>,
    /// `AUTHGATE_PUBLIC_URL`, the base of stored pictures' URLs.
    public_url: String,
}

impl Accounts {
    pub fn new(
        reads: DatabaseConnection,
        schema: Arc<ProfileSchema>,
        public_url: String,
    ) -> Accounts {
        Accounts {
            reads,
            cache: AccountCache::new(ACCOUNTS_KEPT_FOR),
            schema,
            public_url,
        }
    }

    /// Whether `url`, as a user object shows it, is a picture stored by the service (see
    /// [`stored_picture_path`]) rather than one set by hand.
    pub fn is_stored_picture(&self, url: &str) -> bool {
        url.strip_prefix(self.public_url.as_str())
            .is_some_and(|path| path.starts_with("/avatars/"))
    }

    pub fn schema(&self) -> &ProfileSchema {
        &self.schema
    }

    /// The account of a user row and its profile row. Every user gets a profile row at
    /// registration; an empty one stands in should it be gone.
    pub fn of_rows(&self, user: users::Model, profile: Option<profiles::Model>) -> Account {
        let profile = profile.unwrap_or_else(|| profiles::empty(user.id));
        let metadata = parse_metadata(&user.metadata);
        let profile_complete = !user.first_name.trim().is_empty()
            && !user.last_name.trim().is_empty()
            && self.schema.is_complete(&metadata);
        Account {
            id: user.id,
            email: user.email,
            username: user.username,
            first_name: user.first_name,
            last_name: user.last_name,
            phone_number: user.phone_number,
            role: user.role,
            is_verified: user.is_verified,
            is_active: user.status == users::ACTIVE,
            status: AccountStatus::parse(&user.status),
            deletion_scheduled_for: user.deletion_scheduled_for,
            profile: Profile {
                bio: profile.bio,
                avatar_url: profile.avatar_url.map(|url| {
                    if url.starts_with('/') {
                        format!("{}{url}", self.public_url)
                    } else {
                        url
                    }
                }),
                date_of_birth: profile.date_of_birth,
            },
            metadata,
            app_metadata: parse_metadata(&user.app_metadata),
            mfa: MfaSummary::of_stored(&user.mfa_methods),
            profile_complete,
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_login_at: user.last_login_at,
            last_seen_at: user.last_seen_at,
        }
    }

    /// The account with this id, if it exists, read through `conn` (a transaction that just
    /// changed it, say).
    pub async fn load(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
    ) -> Result<Option<Account>, AuthError> {
        let found = users::find_with_profile(conn, user_id).await?;
        Ok(found.map(|(user, profile)| self.of_rows(user, profile)))
    }

    /// The account behind a verified access token. A user deleted or disabled since the token
    /// was minted is refused: tokens are stateless, accounts are not.
    pub async fn current(&self, user_id: Uuid) -> Result<Arc<Account>, AuthError> {
        let account = match self.cache.get(user_id) {
            Some(account) => account,
            None => {
                let ticket = self.cache.ticket();
                let account = self
                    .load(&self.reads, user_id)
                    .await?
                    .ok_or(AuthError::Unauthorized)?;
                let account = Arc::new(account);
                if let Some(ticket) = ticket {
                    self.cache.keep(ticket, Arc::clone(&account));
                }
                account
            }
        };
        if account.status != AccountStatus::Active {
            return Err(AuthError::Unauthorized);
        }
        Ok(account)
    }

    /// These accounts changed: the next request behind each reads it again.
    pub fn forget(&self, user_ids: &[Uuid]) {
        self.cache.forget(user_ids);
    }

    /// Accounts may have changed without a word (an operator's SQL, heard only later): every
    /// request reads its account again.
    pub fn forget_all(&self) {
        self.cache.forget_all();
    }

    /// Follows the database's announcements of account changes, for as long as it is polled.
    pub async fn follow_changes(&self, db: &DatabaseConnection) {
        account_changes::follow(db, |heard| match heard {
            Announcement::Listening => self.cache.set_listening(true),
            Announcement::Changed(user_id) => self.cache.forget(&[user_id]),
            Announcement::Lost => self.cache.set_listening(false),
        })
        .await;
    }

    /// The account just written in a committed transaction.
    pub async fn reload(&self, user_id: Uuid) -> Result<Account, AuthError> {
        self.load(&self.reads, user_id)
            .await?
            .ok_or_else(|| AuthError::internal("an account vanished right after it was written"))
    }

    /// Checks merged metadata against the operator's profile schema (all but its top-level
    /// `required`, which only decides `profile_complete`), recording each problem.
    pub fn check_metadata(&self, errors: &mut super::error::FieldErrors, metadata: &Metadata) {
        for (field, problems) in self.schema.problems(metadata) {
            for problem in problems {
                errors.add(&field, problem);
            }
        }
    }

    /// Locks every active admin's row for the rest of the transaction and answers their ids.
    /// A change that can take an admin away (disable, delete, anonymize, a self-deletion)
    /// takes these locks first, before its target's: such changes then run one after the
    /// other, so [`Accounts::ensure_other_active_admin`] sees what the other did, and two
    /// admins disabling each other at once cannot both succeed.
    pub async fn lock_active_admins(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<Vec<Uuid>, AuthError> {
        Ok(users::lock_active_with_role(conn, ADMIN_ROLE).await?)
    }

    /// Starts the transaction of an admin's write with [`Accounts::lock_active_admins`]
    /// taken, and refuses it unless `admin` (none for the command line) is still one of them:
    /// an admin disabled or demoted while their request waited, for a password hash say,
    /// changes nothing.
    pub async fn begin_admin_change(
        &self,
        db: &DatabaseConnection,
        admin: Option<Uuid>,
    ) -> Result<DatabaseTransaction, AuthError> {
        let txn = store::begin(db).await?;
        let admins = self.lock_active_admins(&txn).await?;
        if admin.is_some_and(|admin| !admins.contains(&admin)) {
            return Err(AuthError::Forbidden);
        }
        Ok(txn)
    }

    /// [`Accounts::begin_admin_change`], then the row of the account it changes, locked.
    pub async fn begin_admin_change_on(
        &self,
        db: &DatabaseConnection,
        admin: Option<Uuid>,
        user_id: Uuid,
    ) -> Result<(DatabaseTransaction, users::Model), AuthError> {
        let txn = self.begin_admin_change(db, admin).await?;
        let user = users::lock(&txn, user_id)
            .await?
            .ok_or(AuthError::NotFound)?;
        Ok((txn, user))
    }

    /// Refuses a change that would leave no active admin: `leaving` is the admin about to be
    /// demoted, disabled, deleted or anonymized. Call it inside the transaction that makes the
    /// change, after locking `leaving`'s row, so two admins demoting each other at once cannot
    /// both pass.
    pub async fn ensure_other_active_admin(
        &self,
        conn: &impl ConnectionTrait,
        leaving: Uuid,
    ) -> Result<(), AuthError> {
        if users::count_other_active_with_role(conn, ADMIN_ROLE, leaving).await? == 0 {
            return Err(AuthError::LastAdmin);
        }
        Ok(())
    }

    /// Refuses a username another account holds; `holder` may keep its own.
    pub async fn ensure_username_free(
        &self,
        conn: &impl ConnectionTrait,
        username: &Username,
        holder: Option<Uuid>,
    ) -> Result<(), AuthError> {
        match users::find_by_username_key(conn, &username.key()).await? {
            Some(user) if Some(user.id) != holder => Err(AuthError::UsernameTaken),
            _ => Ok(()),
        }
    }
}
