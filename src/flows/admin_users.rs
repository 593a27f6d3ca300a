//! The admin directory (contract §10): finding accounts, creating them (with a password or an
//! invitation), reading one with its sessions and login lockout, editing one (and reverting an
//! earlier edit), lifting a lockout, mailing a reset code, and ending sessions. Every change is
//! audited with the admin as its actor; an admin is `None` only for the command line.

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::MaybeUndefined};
use rand::{Rng, distributions::Alphanumeric, rngs::OsRng};
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{
    account_edit::{
        AccountEditor, AccountFields, Edit, UpdateProfile, collision, object_patch, refuse_unknown,
    },
    cursor::{self, CursorError},
    listing,
};
use crate::{
    clock::Clock,
    config::Config,
    domain::{
        Account, AuthError, ClientInfo,
        accounts::{ADMIN_ROLE, AccountStatus, Accounts, Metadata},
        audit::{Action, AuditTrail, EDITABLE_FIELDS, Event},
        codes::Codes,
        email::Email,
        error::FieldErrors,
        fields::parse_name,
        limits::{LimitKind, Limiter},
        outbox::{Letter, Outbox},
        parts::Parts,
        password_policy::Password,
        passwords::Passwords,
        second_factors::SecondFactors,
        sessions::{SessionView, Sessions},
        usernames,
    },
    mail::templates,
    store::{
        audit, profiles, sessions,
        users::{self, PageStart, UserFilter, UserOrder},
    },
};

/// The longest `q` searched for: the longest address there can be.
const MAX_QUERY_CHARS: usize = 254;

/// Fields of the user object that only the service sets, even for an admin.
const READ_ONLY: &[&str] = &[
    "id",
    "is_active",
    "status",
    "deletion_scheduled_for",
    "mfa",
    "profile_complete",
    "created_at",
    "updated_at",
    "last_login_at",
    "last_seen_at",
    "password",
    "password_hash",
];

/// A new account. Without `password` the account waits, unverified, for its owner: an
/// invitation mail carries a reset code, and `POST /auth/reset-password` with it sets the
/// password and verifies the address.
// No `Debug`: it carries the password.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct CreateUserRequest {
    /// Trimmed and lowercased before use; no other account may hold it (409 `email_taken`).
    pub email: String,
    /// One of `AUTHGATE_ROLES` (`admin` included); the default is the first
    /// self-assignable role.
    pub role: Option<String>,
    /// 3–30 letters, digits, `_`, `.` or `-`, starting with a letter or digit; unique without
    /// regard to case (409 `username_taken`).
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Sets the password (the policy of registration applies) and makes the account verified
    /// and ready to sign in. Leave it out to mail an invitation instead.
    pub password: Option<String>,
    #[oai(skip)]
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Fields of an account an admin may change. Send only what changes; `null` clears a field
/// that can be empty. Read-only and unknown fields are refused by name.
#[derive(Debug, Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct AdminUpdateRequest {
    /// The new address, trimmed and lowercased; no other account may hold it (409
    /// `email_taken`). Codes mailed to the old address stop working, and a notice goes there.
    pub email: MaybeUndefined<String>,
    /// One of `AUTHGATE_ROLES`. Takes effect at the account's next token refresh; losing
    /// `admin` ends every session of the account at once (409 `last_admin` when it would
    /// leave no active admin).
    pub role: MaybeUndefined<String>,
    pub is_verified: MaybeUndefined<bool>,
    /// Merged into the stored object key by key; a key sent as `null` is removed. At most 16
    /// KiB of JSON; no schema applies.
    pub app_metadata: MaybeUndefined<Metadata>,
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
    /// must satisfy the operator's profile schema (problems under `metadata.<key>`); at most
    /// 16 KiB of JSON.
    pub metadata: MaybeUndefined<Metadata>,
    #[oai(skip)]
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The query of `GET /admin/users`, as sent: every value is checked here, so a bad one is
/// refused under its own name.
#[derive(Debug, Default, Clone)]
pub struct UserListQuery {
    pub q: Option<String>,
    pub role: Option<String>,
    pub status: Option<String>,
    pub verified: Option<String>,
    pub mfa: Option<String>,
    pub created_after: Option<String>,
    pub created_before: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// One page of accounts.
#[derive(Debug, Object)]
pub struct UserPage {
    pub users: Vec<Account>,
    /// Pass as `cursor` for the next page; `null` on the last one. Rows added or removed
    /// meanwhile neither repeat nor push others out.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
    /// How many accounts match the filters, on every page.
    pub total: u64,
}

/// An account as an admin sees it: the user object with its live sessions and its login
/// lockout (§8).
#[derive(Debug, Object)]
#[oai(rename = "AdminUser")]
pub struct AdminUserView {
    #[oai(flatten)]
    pub user: Account,
    /// Sessions that can still be refreshed.
    pub sessions: u64,
    /// When the login lockout of this account ends; `null` when it is not locked out.
    #[oai(nullable)]
    pub locked_until: Option<DateTime<Utc>>,
    /// Failed sign-ins counted in the current lockout window (`AUTHGATE_LIMIT_LOGIN_ACCOUNT`).
    pub failed_logins: u32,
}

pub struct AdminUsers {
    db: DatabaseConnection,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    accounts: Arc<Accounts>,
    audit: Arc<AuditTrail>,
    codes: Arc<Codes>,
    passwords: Arc<Passwords>,
    sessions: Arc<Sessions>,
    limiter: Arc<Limiter>,
    outbox: Arc<Outbox>,
    second_factors: Arc<SecondFactors>,
    editor: AccountEditor,
}

impl AdminUsers {
    pub fn new(parts: &Parts) -> AdminUsers {
        AdminUsers {
            db: parts.db.clone(),
            config: Arc::clone(&parts.config),
            clock: Arc::clone(&parts.clock),
            accounts: Arc::clone(&parts.accounts),
            audit: Arc::clone(&parts.audit),
            codes: Arc::clone(&parts.codes),
            passwords: Arc::clone(&parts.passwords),
            sessions: Arc::clone(&parts.sessions),
            limiter: Arc::clone(&parts.limiter),
            outbox: Arc::clone(&parts.outbox),
            second_factors: Arc::clone(&parts.second_factors),
            editor: AccountEditor::new(parts),
        }
    }

    /// One page of the accounts that match the query, in its order, with the count of all
    /// that match.
    pub async fn list(&self, query: &UserListQuery) -> Result<UserPage, AuthError> {
        let mut errors = FieldErrors::new();
        let (order, sort) = match query.sort.as_deref().map(str::trim) {
            None | Some("" | "-created_at") => (UserOrder::Newest, "-created_at"),
            Some("created_at") => (UserOrder::Oldest, "created_at"),
            Some("email") => (UserOrder::Email, "email"),
            Some("-last_login_at") => (UserOrder::RecentLogin, "-last_login_at"),
            Some(_) => {
                errors.add(
                    "sort",
                    "Use one of: created_at, -created_at, email, -last_login_at.",
                );
                (UserOrder::Newest, "-created_at")
            }
        };
        let filter = UserFilter {
            text: listing::text(&mut errors, "q", query.q.as_deref(), MAX_QUERY_CHARS)
                .map(|text| text.to_lowercase()),
            role: listing::text(&mut errors, "role", query.role.as_deref(), 100)
                .and_then(|role| self.known_role(&mut errors, "role", &role)),
            status: listing::text(&mut errors, "status", query.status.as_deref(), 100).and_then(
                |status| match status.as_str() {
                    users::ACTIVE => Some(users::ACTIVE),
                    users::DISABLED => Some(users::DISABLED),
                    users::PENDING_DELETION => Some(users::PENDING_DELETION),
                    _ => {
                        errors.add("status", "Use one of: active, disabled, pending_deletion.");
                        None
                    }
                },
            ),
            verified: listing::flag(&mut errors, "verified", query.verified.as_deref()),
            mfa: listing::flag(&mut errors, "mfa", query.mfa.as_deref()),
            created_from: listing::time(
                &mut errors,
                "created_after",
                query.created_after.as_deref(),
            ),
            created_before: listing::time(
                &mut errors,
                "created_before",
                query.created_before.as_deref(),
            ),
        };
        let limit = listing::limit(&mut errors, query.limit.as_deref());
        // The order is part of the listing a cursor is for: a cursor of another order would
        // start the page at a meaningless place.
        let scope = format!("users:{sort}");
        let start = match listing::cursor(&mut errors, &scope, query.cursor.as_deref()) {
            None => PageStart::First(order),
            Some(cursor) => match order.position(cursor.key.as_deref(), cursor.id) {
                Some(position) => PageStart::After(position),
                None => {
                    errors.add("cursor", CursorError::Malformed.message());
                    PageStart::First(order)
                }
            },
        };
        errors.into_result()?;

        let users::Found { mut rows, total } =
            users::find_page(&self.db, &filter, &start, limit + 1).await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = rows
            .last()
            .filter(|_| more)
            .map(|(user, _)| cursor::encode(&scope, order.key_of(user).as_deref(), user.id));
        Ok(UserPage {
            users: rows
                .into_iter()
                .map(|(user, profile)| self.accounts.of_rows(user, profile))
                .collect(),
            next_cursor,
            total,
        })
    }

    /// Creates an account: with a password, verified and ready to sign in; without, waiting
    /// for its owner, who gets an invitation with a reset code.
    pub async fn create(
        &self,
        actor: Option<Uuid>,
        request: CreateUserRequest,
        client: &ClientInfo,
    ) -> Result<Account, AuthError> {
        let mut errors = FieldErrors::new();
        refuse_unknown(&mut errors, &request.other, READ_ONLY);
        let email = errors.check("email", Email::parse(&request.email));
        let role = match request.role.as_deref().map(str::trim) {
            None | Some("") => Some(self.config.default_role().to_string()),
            Some(role) => self.known_role(&mut errors, "role", role),
        };
        let username = usernames::check_field(
            self.config.usernames,
            &mut errors,
            request.username.as_deref().map(Some),
            true,
        );
        let name = |errors: &mut FieldErrors, field, value: Option<String>| {
            errors
                .check(field, parse_name(value.as_deref().unwrap_or_default()))
                .unwrap_or_default()
        };
        let first_name = name(&mut errors, "first_name", request.first_name);
        let last_name = name(&mut errors, "last_name", request.last_name);
        let password = match &request.password {
            Some(password) => {
                self.passwords
                    .check_chosen(&mut errors, "password", email.as_ref(), password)
            }
            None => None,
        };
        let (email, role) = errors.finish(email.zip(role))?;
        let username = username.flatten();

        // Cheap refusals first, so a taken address or name costs no password hash.
        if users::find_by_email(&self.db, email.as_str())
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        if let Some(username) = &username {
            self.accounts
                .ensure_username_free(&self.db, username, None)
                .await?;
        }
        let invited = password.is_none();
        // An invited account gets the hash of a password nobody knows, drawn here and
        // forgotten: until its owner sets one, every sign-in fails like a wrong password, in
        // the time a wrong password takes.
        let password = match password {
            Some(password) => password,
            None => Password::for_login(
                OsRng
                    .sample_iter(&Alphanumeric)
                    .take(32)
                    .map(char::from)
                    .collect(),
            )
            .ok_or_else(|| AuthError::internal("a drawn password is over the size limit"))?,
        };
        let registration = users::Registration {
            email: email.to_string(),
            password_hash: self.passwords.hash(&password).await?,
            first_name,
            last_name,
            phone_number: None,
            role: role.clone(),
            username: username.map(String::from),
        };

        let txn = self.accounts.begin_admin_change(&self.db, actor).await?;
        let user = users::insert(&txn, registration, !invited, self.clock.now())
            .await
            .map_err(collision)?;
        profiles::insert_empty(&txn, user.id).await?;
        if invited {
            self.codes
                .issue_for_admin(&txn, &email, user.id, templates::invitation)
                .await?;
        }
        let event = Event::new(Action::AccountCreated, Some(user.id), client)
            .with(json!({"role": role, "invited": invited}));
        self.audit.record(&txn, event.by_any(actor)).await?;
        txn.commit().await?;
        self.accounts.reload(user.id).await
    }

    /// The account with its live sessions and login lockout.
    pub async fn detail(&self, user_id: Uuid) -> Result<AdminUserView, AuthError> {
        let user = self.find(user_id).await?;
        let sessions = self.sessions.list(user_id, Uuid::nil()).await?.len() as u64;
        // The lockout counts failed logins per address (see `flows::sign_in`).
        let standing = self
            .limiter
            .standing(&self.db, LimitKind::LoginAccount, &user.email)
            .await?;
        Ok(AdminUserView {
            user,
            sessions,
            locked_until: standing.refused_until,
            failed_logins: standing.hits,
        })
    }

    /// The account with this address.
    pub async fn by_email(&self, email: &str) -> Result<Account, AuthError> {
        let email = Email::parse_field("email", email)?;
        let user = users::find_by_email(&self.db, email.as_str())
            .await?
            .ok_or(AuthError::NotFound)?;
        self.find(user.id).await
    }

    /// Applies an admin's partial update: every field is checked before anything is written,
    /// and the change is audited with its before/after values.
    pub async fn update(
        &self,
        actor: Option<Uuid>,
        user_id: Uuid,
        request: AdminUpdateRequest,
        client: &ClientInfo,
    ) -> Result<Account, AuthError> {
        let edit = self.check_update(request)?;
        let (txn, user) = self
            .accounts
            .begin_admin_change_on(&self.db, actor, user_id)
            .await?;
        let account = self
            .write(&txn, user, edit, actor, client, json!({}))
            .await?;
        txn.commit().await?;
        Ok(account)
    }

    /// Writes back the `before` values of an audited edit, as a new audited edit. Refused
    /// when any of its fields changed since (each named), and for events that changed no
    /// fields.
    pub async fn revert(
        &self,
        actor: Uuid,
        event_id: Uuid,
        client: &ClientInfo,
    ) -> Result<Account, AuthError> {
        let txn = self
            .accounts
            .begin_admin_change(&self.db, Some(actor))
            .await?;
        let event = audit::find(&txn, event_id)
            .await?
            .ok_or(AuthError::NotFound)?;
        let changes: Map<String, Value> = event
            .changes
            .as_deref()
            .and_then(|changes| serde_json::from_str(changes).ok())
            .filter(|changes: &Map<String, Value>| {
                !changes.is_empty()
                    && changes
                        .keys()
                        .all(|field| EDITABLE_FIELDS.contains(&field.as_str()))
            })
            .ok_or(AuthError::NotRevertible)?;
        let user_id = event.user_id.ok_or(AuthError::NotRevertible)?;
        // A stored picture's bytes are gone once replaced: writing its URL back would show a
        // picture that no longer exists (and delete the one that does).
        let stored_picture = |pair: &Value| {
            ["before", "after"].iter().any(|side| {
                pair.pointer(&format!("/{side}/avatar_url"))
                    .and_then(Value::as_str)
                    .is_some_and(|url| self.accounts.is_stored_picture(url))
            })
        };
        if changes.get("profile").is_some_and(stored_picture) {
            return Err(AuthError::NotRevertible);
        }
        // The account is gone (purged): there is nothing to write back to.
        let user = users::lock(&txn, user_id)
            .await?
            .ok_or(AuthError::NotFound)?;
        let profile = profiles::find(&txn, user.id).await?;
        let current = serde_json::to_value(self.accounts.of_rows(user.clone(), profile))
            .map_err(|err| AuthError::internal_from("an account does not serialize", err))?;

        // Checked under the row lock: nothing can change between this check and the write.
        let mut changed_since = FieldErrors::new();
        for (field, pair) in &changes {
            if current.get(field) != pair.get("after") {
                changed_since.add(
                    field,
                    "Changed since this event; revert the later change first or edit it directly.",
                );
            }
        }
        if !changed_since.is_empty() {
            return Err(AuthError::Conflict(changed_since));
        }
        let mut body = Map::new();
        for (field, pair) in changes {
            let before = pair.get("before").cloned().unwrap_or(Value::Null);
            let value = match (field.as_str(), before) {
                // Metadata merges key by key: the keys added since `before` are sent as null,
                // which removes them.
                ("metadata" | "app_metadata", Value::Object(mut before)) => {
                    if let Some(Value::Object(now)) = current.get(&field) {
                        for key in now.keys() {
                            before.entry(key.clone()).or_insert(Value::Null);
                        }
                    }
                    Value::Object(before)
                }
                (_, before) => before,
            };
            body.insert(field, value);
        }
        let request: AdminUpdateRequest = serde_json::from_value(Value::Object(body))
            .map_err(|err| AuthError::internal_from("an audited edit no longer reads", err))?;
        let edit = self.check_update(request)?;
        let account = self
            .write(
                &txn,
                user,
                edit,
                Some(actor),
                client,
                json!({"reverted_event": event_id}),
            )
            .await?;
        txn.commit().await?;
        Ok(account)
    }

    /// Lifts the account's login lockout (§8): its failed logins are forgotten.
    pub async fn unlock(
        &self,
        actor: Uuid,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let (txn, user) = self
            .accounts
            .begin_admin_change_on(&self.db, Some(actor), user_id)
            .await?;
        let counted = self
            .limiter
            .clear(&txn, LimitKind::LoginAccount, &user.email)
            .await?;
        let event = Event::new(Action::LoginUnlocked, Some(user.id), client)
            .with(json!({"failures_forgotten": counted}))
            .by(actor);
        self.audit.record(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Removes the account's second factors, recovery codes and trusted devices, for an owner
    /// who lost both their authenticator and their recovery codes; a mail tells the owner.
    /// The next sign-in needs the password alone.
    pub async fn reset_second_factors(
        &self,
        actor: Uuid,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> Result<Account, AuthError> {
        let (txn, user) = self
            .accounts
            .begin_admin_change_on(&self.db, Some(actor), user_id)
            .await?;
        self.second_factors.reset(&txn, &user, client).await?;
        let event = Event::new(Action::MfaReset, Some(user.id), client).by(actor);
        self.audit.record(&txn, event).await?;
        let account = self
            .accounts
            .load(&txn, user.id)
            .await?
            .ok_or(AuthError::NotFound)?;
        txn.commit().await?;
        Ok(account)
    }

    /// Mails the account a password reset code. Returns the code's lifetime in seconds. See
    /// [`Codes::issue_for_admin`] for why no resend cooldown applies.
    pub async fn send_password_reset(
        &self,
        actor: Uuid,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> Result<u64, AuthError> {
        let (txn, user) = self
            .accounts
            .begin_admin_change_on(&self.db, Some(actor), user_id)
            .await?;
        // A reset of an account that cannot sign in would fail at the last step.
        match AccountStatus::parse(&user.status) {
            AccountStatus::Active => {}
            AccountStatus::Disabled => return Err(AuthError::AccountDisabled),
            AccountStatus::PendingDeletion => {
                return Err(AuthError::AccountPendingDeletion {
                    deletion_scheduled_for: user
                        .deletion_scheduled_for
                        .unwrap_or_else(|| self.clock.now()),
                });
            }
        }
        let email = Email::parse(&user.email)
            .map_err(|_| AuthError::internal("a stored email no longer parses"))?;
        self.codes
            .issue_for_admin(&txn, &email, user.id, templates::password_reset_code)
            .await?;
        let event = Event::new(Action::PasswordResetRequested, Some(user.id), client)
            .with(json!({"by": "admin"}))
            .by(actor);
        self.audit.record(&txn, event).await?;
        txn.commit().await?;
        Ok(self.codes.ttl_seconds())
    }

    /// The account's sessions that can still be refreshed (none is `current`: they are not
    /// the caller's).
    pub async fn sessions(&self, user_id: Uuid) -> Result<Vec<SessionView>, AuthError> {
        self.find(user_id).await?;
        self.sessions.list(user_id, Uuid::nil()).await
    }

    /// Ends one session of the account.
    pub async fn end_session(
        &self,
        actor: Uuid,
        user_id: Uuid,
        session_id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.sessions
            .end(user_id, session_id, Some(actor), client)
            .await
    }

    async fn find(&self, user_id: Uuid) -> Result<Account, AuthError> {
        self.accounts
            .load(&self.db, user_id)
            .await?
            .ok_or(AuthError::NotFound)
    }

    /// `role` when it is one of `AUTHGATE_ROLES`; else a problem under `field`.
    fn known_role(&self, errors: &mut FieldErrors, field: &str, role: &str) -> Option<String> {
        let roles = &self.config.roles;
        if roles.iter().any(|known| known == role) {
            Some(role.to_string())
        } else {
            errors.add(field, format!("Use one of: {}.", roles.join(", ")));
            None
        }
    }

    /// Checks an admin's update without the database.
    fn check_update(&self, request: AdminUpdateRequest) -> Result<Edit, AuthError> {
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
        let mut edit = Edit::parse(&mut errors, self.config.usernames, today, fields);
        edit.changes.email = match request.email {
            MaybeUndefined::Undefined => None,
            // `null` is an empty address: "This field is required."
            sent => {
                let email = Email::parse(sent.value().map_or("", String::as_str));
                errors.check("email", email).map(|email| email.to_string())
            }
        };
        edit.changes.role = match request.role {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => self.known_role(&mut errors, "role", ""),
            MaybeUndefined::Value(role) => self.known_role(&mut errors, "role", role.trim()),
        };
        edit.changes.is_verified = match request.is_verified {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => {
                errors.add("is_verified", "Send true or false.");
                None
            }
            MaybeUndefined::Value(verified) => Some(verified),
        };
        edit.app_metadata = object_patch(&mut errors, "app_metadata", request.app_metadata);
        errors.into_result()?;
        Ok(edit)
    }

    /// Writes an admin's edit to `user` (locked in `txn`), with what a change of role or
    /// address brings: no demotion of the last active admin, every session ended when
    /// `admin` is lost; the account's pending codes voided and a notice to the old address.
    async fn write(
        &self,
        txn: &DatabaseTransaction,
        user: users::Model,
        edit: Edit,
        actor: Option<Uuid>,
        client: &ClientInfo,
        details: Value,
    ) -> Result<Account, AuthError> {
        let loses_admin = user.role == ADMIN_ROLE
            && edit
                .changes
                .role
                .as_deref()
                .is_some_and(|role| role != ADMIN_ROLE);
        // An admin whose address is marked unproven can no longer sign in to act as one.
        let unverified = user.is_verified && edit.changes.is_verified == Some(false);
        if (loses_admin || (unverified && user.role == ADMIN_ROLE)) && user.status == users::ACTIVE
        {
            self.accounts
                .ensure_other_active_admin(txn, user.id)
                .await?;
        }
        let old_email = user.email.clone();
        let edited = self
            .editor
            .apply(txn, user, edit, actor, client, details)
            .await?;
        let account = edited.after;
        if loses_admin {
            // Access tokens are stateless, but `/admin/*` reads the role from the account, so
            // admin calls stop at once; ending the sessions makes the demotion final for
            // everything else too.
            sessions::revoke_all_of(txn, account.id, self.clock.now()).await?;
            let event = Event::new(Action::SessionRevocation, Some(account.id), client)
                .with(json!({"by": "role_change"}));
            self.audit.record(txn, event.by_any(actor)).await?;
        }
        if account.email != old_email {
            // A code mailed to the old address (a reset, say) must not work for the account
            // any more: whoever still reads that inbox may be why the address was changed.
            self.codes.void_held_by(txn, account.id, None).await?;
            // And they must learn that the account moved away from it.
            let notice = Letter {
                to: &old_email,
                mail: templates::email_changed(&account.email),
                user_id: Some(account.id),
                code: None,
            };
            self.outbox.enqueue(txn, notice).await?;
        }
        Ok(account)
    }
}
