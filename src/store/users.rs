//! The `users` table: one row per account, with the password hash.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    Condition, QueryOrder, QuerySelect,
    entity::prelude::*,
    sea_query::Expr,
};

use super::{SecretText, profiles};

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    pub password_hash: SecretText,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
    pub role: String,
    pub is_verified: bool,
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_login_at: Option<DateTimeUtc>,
    /// How often the address was registered before it was verified. Past one, verification
    /// needs the newest registration's password too: the code reaches an inbox whose owner
    /// may not have made the newest registration.
    pub registrations: i32,
    /// As written; `username_key` (lowercased, unique) is what makes names unique without
    /// regard to case.
    pub username: Option<String>,
    #[sea_orm(unique)]
    pub username_key: Option<String>,
    /// `active`, `disabled` or `pending_deletion`. `is_active` is kept equal to
    /// `status == "active"` for instances of the previous release during an upgrade.
    pub status: String,
    pub deletion_scheduled_for: Option<DateTimeUtc>,
    /// JSON objects: the user's own app-specific fields, and the ones only admins write.
    pub metadata: String,
    pub app_metadata: String,
    /// The last login or refresh.
    pub last_seen_at: Option<DateTimeUtc>,
    /// The kinds of the confirmed second factors, a JSON array (`["totp", "email"]`).
    pub mfa_methods: String,
}

/// Redacting: a row printed by accident must not carry the password hash into a log.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("users::Model")
            .field("id", &self.id)
            .field("password_hash", &"[redacted]")
            .field("is_verified", &self.is_verified)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_one = "super::profiles::Entity")]
    Profile,
}

impl Related<super::profiles::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Profile.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// What a registration writes: a new account, or new details for an unverified one.
pub struct Registration {
    pub email: String,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
    pub role: String,
    pub username: Option<String>,
}

/// A user with their profile row, in one query.
pub async fn find_with_profile(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<(Model, Option<profiles::Model>)>, DbErr> {
    Entity::find_by_id(id)
        .find_also_related(profiles::Entity)
        .one(conn)
        .await
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(conn).await
}

pub async fn find_by_email(
    conn: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Email.eq(email))
        .one(conn)
        .await
}

/// The user with this address, locked for the rest of the transaction on PostgreSQL (SQLite
/// transactions hold the write lock from their start anyway).
pub async fn lock_by_email(
    conn: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Email.eq(email))
        .lock_exclusive()
        .one(conn)
        .await
}

/// The user with this id, locked for the rest of the transaction.
pub async fn lock(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).lock_exclusive().one(conn).await
}

/// Inserts a new, unverified, active account.
pub async fn insert_unverified(
    conn: &impl ConnectionTrait,
    registration: Registration,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    ActiveModel {
        id: Set(Uuid::now_v7()),
        is_verified: Set(false),
        is_active: Set(true),
        status: Set(ACTIVE.to_string()),
        deletion_scheduled_for: Set(None),
        metadata: Set("{}".to_string()),
        app_metadata: Set("{}".to_string()),
        mfa_methods: Set("[]".to_string()),
        created_at: Set(now),
        last_login_at: Set(None),
        last_seen_at: Set(None),
        registrations: Set(1),
        ..registration_changes(registration, now)
    }
    .insert(conn)
    .await
}

/// Writes a newer registration over an unverified account (locked by the caller).
pub async fn replace_registration(
    conn: &impl ConnectionTrait,
    user: &Model,
    registration: Registration,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    ActiveModel {
        id: Set(user.id),
        registrations: Set(user.registrations.saturating_add(1)),
        ..registration_changes(registration, now)
    }
    .update(conn)
    .await
}

fn registration_changes(registration: Registration, now: DateTime<Utc>) -> ActiveModel {
    ActiveModel {
        id: NotSet,
        email: Set(registration.email),
        password_hash: Set(registration.password_hash.into()),
        first_name: Set(registration.first_name),
        last_name: Set(registration.last_name),
        phone_number: Set(registration.phone_number),
        role: Set(registration.role),
        username_key: Set(registration.username.as_deref().map(str::to_lowercase)),
        username: Set(registration.username),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// Marks the address proven and records the sign-in that verification is.
pub async fn mark_verified_and_signed_in(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    ActiveModel {
        id: Set(id),
        is_verified: Set(true),
        updated_at: Set(now),
        last_login_at: Set(Some(now)),
        last_seen_at: Set(Some(now)),
        ..Default::default()
    }
    .update(conn)
    .await
}

/// Records a sign-in, storing the rehashed password when its parameters were outdated.
pub async fn record_login(
    conn: &impl ConnectionTrait,
    id: Uuid,
    upgraded_hash: Option<String>,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    ActiveModel {
        id: Set(id),
        last_login_at: Set(Some(now)),
        last_seen_at: Set(Some(now)),
        password_hash: upgraded_hash.map_or(NotSet, |hash| Set(hash.into())),
        ..Default::default()
    }
    .update(conn)
    .await
}

/// Replaces the password hash. A reset also proves the address, hence `verified`.
pub async fn set_password(
    conn: &impl ConnectionTrait,
    id: Uuid,
    password_hash: String,
    verified: bool,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    ActiveModel {
        id: Set(id),
        password_hash: Set(password_hash.into()),
        is_verified: if verified { Set(true) } else { NotSet },
        updated_at: Set(now),
        ..Default::default()
    }
    .update(conn)
    .await
}

/// Fields of an account that are edited (by its owner or an admin); `None` leaves a field
/// alone.
#[derive(Default)]
pub struct AccountChanges {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<Option<String>>,
    pub username: Option<Option<String>>,
    pub role: Option<String>,
    pub is_verified: Option<bool>,
    /// JSON objects, already merged and checked.
    pub metadata: Option<String>,
    pub app_metadata: Option<String>,
}

pub async fn update(
    conn: &impl ConnectionTrait,
    id: Uuid,
    changes: AccountChanges,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    let username_key = changes
        .username
        .as_ref()
        .map(|username| username.as_deref().map(str::to_lowercase));
    ActiveModel {
        id: Set(id),
        email: changes.email.map_or(NotSet, Set),
        first_name: changes.first_name.map_or(NotSet, Set),
        last_name: changes.last_name.map_or(NotSet, Set),
        phone_number: changes.phone_number.map_or(NotSet, Set),
        username: changes.username.map_or(NotSet, Set),
        username_key: username_key.map_or(NotSet, Set),
        role: changes.role.map_or(NotSet, Set),
        is_verified: changes.is_verified.map_or(NotSet, Set),
        metadata: changes.metadata.map_or(NotSet, Set),
        app_metadata: changes.app_metadata.map_or(NotSet, Set),
        updated_at: Set(now),
        ..Default::default()
    }
    .update(conn)
    .await
}

/// The statuses an account goes through.
pub const ACTIVE: &str = "active";
pub const DISABLED: &str = "disabled";
pub const PENDING_DELETION: &str = "pending_deletion";

/// Active accounts holding `role`, other than `except`.
pub async fn count_other_active_with_role(
    conn: &impl ConnectionTrait,
    role: &str,
    except: Uuid,
) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::Role.eq(role))
        .filter(Column::Status.eq(ACTIVE))
        .filter(Column::Id.ne(except))
        .count(conn)
        .await
}

pub async fn find_by_username_key(
    conn: &impl ConnectionTrait,
    username_key: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::UsernameKey.eq(username_key))
        .one(conn)
        .await
}

/// Records that the account was seen (a login or refresh), at most once a minute: most
/// refreshes then write nothing.
pub async fn touch_last_seen(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let stale = now - chrono::TimeDelta::seconds(60);
    Entity::update_many()
        .col_expr(Column::LastSeenAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(Column::LastSeenAt.is_null())
                .add(Column::LastSeenAt.lt(stale)),
        )
        .exec(conn)
        .await?;
    Ok(())
}

/// The rows of every active account holding `role`, locked in id order for the rest of the
/// transaction (one order everywhere, so two transactions taking them cannot deadlock).
pub async fn lock_active_with_role(
    conn: &impl ConnectionTrait,
    role: &str,
) -> Result<Vec<Uuid>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::Role.eq(role))
        .filter(Column::Status.eq(ACTIVE))
        .order_by_asc(Column::Id)
        .lock_exclusive()
        .into_tuple()
        .all(conn)
        .await
}

/// Accounts whose deletion grace has ended by `now`, oldest schedule first. Only candidates:
/// [`delete_if_due`] decides, in the purging transaction, whether this instance purges one.
pub async fn due_for_purge(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Uuid>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(due_for_purge_at(now))
        .order_by_asc(Column::DeletionScheduledFor)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// Deletes the account if its deletion is (still) due at `now`. The compare-and-set of the
/// purge: when instances race for one account, the database lets exactly one delete the row
/// (PostgreSQL makes the others wait for its commit and then finds no row; SQLite runs the
/// transactions one after another), and an account restored meanwhile is left alone.
pub async fn delete_if_due(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(due_for_purge_at(now))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// A scheduled deletion whose time has come. `pending_deletion` or `disabled`: an admin may
/// disable an account whose owner asked for its deletion, and it still goes.
fn due_for_purge_at(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(Column::Status.is_in([PENDING_DELETION, DISABLED]))
        .add(Column::DeletionScheduledFor.lte(now))
}

/// Deletes an account whose row the caller holds locked; its profile, picture, sessions,
/// refresh tokens and codes go with it (the foreign keys cascade).
pub async fn delete(conn: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    let result = Entity::delete_by_id(id).exec(conn).await?;
    Ok(result.rows_affected == 1)
}

/// Records the kinds of the account's confirmed second factors.
pub async fn set_mfa_methods(
    conn: &impl ConnectionTrait,
    id: Uuid,
    methods: &[&str],
) -> Result<(), DbErr> {
    let stored = serde_json::to_string(methods).unwrap_or_else(|_| "[]".into());
    Entity::update_many()
        .col_expr(Column::MfaMethods, Expr::value(stored))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Moves an account to `status`, keeping `is_active` in step.
pub async fn set_status(
    conn: &impl ConnectionTrait,
    id: Uuid,
    status: &str,
    deletion_scheduled_for: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    ActiveModel {
        id: Set(id),
        status: Set(status.to_string()),
        is_active: Set(status == ACTIVE),
        deletion_scheduled_for: Set(deletion_scheduled_for),
        updated_at: Set(now),
        ..Default::default()
    }
    .update(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sea-orm derives `Debug` for `ActiveModel`; a change set printed by accident (in an
    /// error or a trace) must not carry the password hash into a log.
    #[test]
    fn active_model_debug_hides_password_hash() {
        let row = ActiveModel {
            password_hash: Set(String::from("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").into()),
            ..Default::default()
        };

        let printed = format!("{row:?}");

        assert!(!printed.contains("aGFzaA"), "{printed}");
        assert!(printed.contains("password_hash"), "{printed}");
    }
}
