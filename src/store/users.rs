//! The `users` table: one row per account, with the password hash.

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    Condition, FromQueryResult, QueryOrder, QuerySelect, QueryTrait,
    entity::prelude::*,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, NullOrdering, Order},
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
    insert(conn, registration, false, now).await
}

/// Inserts a new active account, verified or not (an admin may create either).
pub async fn insert(
    conn: &impl ConnectionTrait,
    registration: Registration,
    verified: bool,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    ActiveModel {
        id: Set(Uuid::now_v7()),
        is_verified: Set(verified),
        is_active: Set(true),
        status: Set(ACTIVE.to_string()),
        deletion_scheduled_for: Set(None),
        metadata: Set("{}".to_string()),
        app_metadata: Set("{}".to_string()),
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
#[derive(Debug, Default)]
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

/// True when a write failed on the uniqueness of usernames (rather than of addresses): the
/// index is named `ux_users_username_key`, and SQLite names the column `users.username_key`.
pub fn is_username_collision(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(message)) if message.contains("username_key")
    )
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

/// What `GET /admin/users` filters on; `None` leaves a filter off.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Lowercased text that the address, username, first or last name contains.
    pub text: Option<String>,
    pub role: Option<String>,
    pub status: Option<&'static str>,
    pub verified: Option<bool>,
    /// Accounts with (`true`) or without (`false`) a second factor.
    pub mfa: Option<bool>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created strictly before.
    pub created_before: Option<DateTime<Utc>>,
}

impl UserFilter {
    fn condition(&self) -> Condition {
        let column = |column: Column| Expr::col((Entity, column));
        let mut all = Condition::all();
        if let Some(text) = &self.text {
            // `%` and `_` typed by the admin are searched for, not wildcards.
            let pattern = LikeExpr::new(format!("%{}%", escape_like(text))).escape('\\');
            // The address and the username key are stored lowercased already; the names are
            // lowered here so the match ignores case on PostgreSQL too.
            all = all.add(
                Condition::any()
                    .add(column(Column::Email).like(pattern.clone()))
                    .add(column(Column::UsernameKey).like(pattern.clone()))
                    .add(Func::lower(column(Column::FirstName)).like(pattern.clone()))
                    .add(Func::lower(column(Column::LastName)).like(pattern)),
            );
        }
        if let Some(role) = &self.role {
            all = all.add(column(Column::Role).eq(role.as_str()));
        }
        if let Some(status) = self.status {
            all = all.add(column(Column::Status).eq(status));
        }
        if let Some(verified) = self.verified {
            all = all.add(column(Column::IsVerified).eq(verified));
        }
        // No account has a second factor yet (§11 is still to come): asking for accounts with
        // one finds none, asking for accounts without one leaves every account in.
        if self.mfa == Some(true) {
            all = all.add(Expr::val(1).eq(0));
        }
        if let Some(from) = self.created_from {
            all = all.add(column(Column::CreatedAt).gte(from));
        }
        if let Some(before) = self.created_before {
            all = all.add(column(Column::CreatedAt).lt(before));
        }
        all
    }
}

/// `\`, `%` and `_` escaped for a `LIKE … ESCAPE '\'` pattern.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The orders `GET /admin/users` lists in. Each ends on the id, so rows that tie on the sort
/// value still have one fixed order, which keyset pagination needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOrder {
    Oldest,
    Newest,
    Email,
    /// Most recent login first; accounts that never signed in last.
    RecentLogin,
}

/// Where a page ended: the sort value and id of its last row. Made only by
/// [`UserOrder::position`], so its value always has the type its order sorts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    order: UserOrder,
    value: SortValue,
    id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SortValue {
    At(Option<DateTime<Utc>>),
    Text(String),
}

/// Where a page starts: at the top of an order, or after a row of an earlier page.
#[derive(Debug, Clone)]
pub enum PageStart {
    First(UserOrder),
    After(Position),
}

impl UserOrder {
    /// The sort value of `user` in this order, in the text form [`UserOrder::position`] reads.
    pub fn key_of(self, user: &Model) -> Option<String> {
        let at = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        match self {
            UserOrder::Oldest | UserOrder::Newest => Some(at(user.created_at)),
            UserOrder::Email => Some(user.email.clone()),
            UserOrder::RecentLogin => user.last_login_at.map(at),
        }
    }

    /// The position after the row whose sort value (as [`UserOrder::key_of`] wrote it) and id
    /// these are; `None` when the value cannot be one of this order.
    pub fn position(self, key: Option<&str>, id: Uuid) -> Option<Position> {
        let at = |key: &str| DateTime::parse_from_rfc3339(key).ok().map(|at| at.to_utc());
        let value = match (self, key) {
            (UserOrder::Oldest | UserOrder::Newest, Some(key)) => SortValue::At(Some(at(key)?)),
            (UserOrder::Email, Some(key)) => SortValue::Text(key.to_string()),
            (UserOrder::RecentLogin, Some(key)) => SortValue::At(Some(at(key)?)),
            (UserOrder::RecentLogin, None) => SortValue::At(None),
            (_, None) => return None,
        };
        Some(Position {
            order: self,
            value,
            id,
        })
    }
}

impl Position {
    /// Rows strictly after this one in its order.
    fn rows_after(&self) -> Condition {
        let column = |column: Column| Expr::col((Entity, column));
        let id = column(Column::Id);
        let (ascending, sorted, value) = match (&self.order, &self.value) {
            (UserOrder::Oldest, SortValue::At(at)) => (true, Column::CreatedAt, Value::from(*at)),
            (UserOrder::Newest, SortValue::At(at)) => (false, Column::CreatedAt, Value::from(*at)),
            (UserOrder::Email, SortValue::Text(email)) => {
                (true, Column::Email, Value::from(email.clone()))
            }
            (UserOrder::RecentLogin, SortValue::At(None)) => {
                // Past the first account that never signed in: only such accounts are left.
                return Condition::all()
                    .add(column(Column::LastLoginAt).is_null())
                    .add(id.lt(self.id));
            }
            (UserOrder::RecentLogin, SortValue::At(at)) => {
                // Accounts that never signed in come after every one that did.
                return Condition::any()
                    .add(column(Column::LastLoginAt).lt(*at))
                    .add(
                        Condition::all()
                            .add(column(Column::LastLoginAt).eq(*at))
                            .add(id.lt(self.id)),
                    )
                    .add(column(Column::LastLoginAt).is_null());
            }
            // `UserOrder::position` pairs each order with its own kind of value.
            (_, SortValue::At(_) | SortValue::Text(_)) => return Condition::all(),
        };
        let sorted = column(sorted);
        let (beyond, id_beyond) = if ascending {
            (sorted.clone().gt(value.clone()), id.gt(self.id))
        } else {
            (sorted.clone().lt(value.clone()), id.lt(self.id))
        };
        Condition::any()
            .add(beyond)
            .add(Condition::all().add(sorted.eq(value)).add(id_beyond))
    }
}

/// One page of accounts with their profiles: `limit` rows from `start`, under `filter`.
pub async fn page(
    conn: &impl ConnectionTrait,
    filter: &UserFilter,
    start: &PageStart,
    limit: u64,
) -> Result<Vec<(Model, Option<profiles::Model>)>, DbErr> {
    let (order, after) = match start {
        PageStart::First(order) => (*order, None),
        PageStart::After(position) => (position.order, Some(position.rows_after())),
    };
    let mut query = Entity::find()
        .find_also_related(profiles::Entity)
        .filter(filter.condition());
    if let Some(after) = after {
        query = query.filter(after);
    }
    let query = match order {
        UserOrder::Oldest => query
            .order_by_asc(Column::CreatedAt)
            .order_by_asc(Column::Id),
        UserOrder::Newest => query
            .order_by_desc(Column::CreatedAt)
            .order_by_desc(Column::Id),
        UserOrder::Email => query.order_by_asc(Column::Email).order_by_asc(Column::Id),
        UserOrder::RecentLogin => query
            .order_by_with_nulls(Column::LastLoginAt, Order::Desc, NullOrdering::Last)
            .order_by_desc(Column::Id),
    };
    query.limit(limit).all(conn).await
}

/// Accounts that pass `filter`.
pub async fn count_matching(
    conn: &impl ConnectionTrait,
    filter: &UserFilter,
) -> Result<u64, DbErr> {
    Entity::find().filter(filter.condition()).count(conn).await
}

#[derive(Debug, FromQueryResult)]
struct RoleCount {
    role: String,
    accounts: i64,
}

/// How many accounts hold each role that is held at all.
pub async fn count_by_role(conn: &impl ConnectionTrait) -> Result<Vec<(String, u64)>, DbErr> {
    let rows = Entity::find()
        .select_only()
        .column(Column::Role)
        .column_as(Expr::col(Column::Id).count(), "accounts")
        .group_by(Column::Role)
        .into_model::<RoleCount>()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.role, u64::try_from(row.accounts).unwrap_or(0)))
        .collect())
}

/// Accounts created in each of the consecutive periods that `bounds` delimit (`n` bounds make
/// `n - 1` periods), in one pass over the `created_at` index: one `SUM(CASE …)` per period,
/// which every database evaluates alike, where grouping by day would need each one's own date
/// functions.
pub async fn count_created_between(
    conn: &impl ConnectionTrait,
    bounds: &[DateTime<Utc>],
) -> Result<Vec<u64>, DbErr> {
    let (Some(first), Some(last)) = (bounds.first(), bounds.last()) else {
        return Ok(Vec::new());
    };
    let created_at = || Expr::col(Column::CreatedAt);
    let mut query = Entity::find()
        .select_only()
        .filter(Column::CreatedAt.gte(*first))
        .filter(Column::CreatedAt.lt(*last));
    for (n, period) in bounds.windows(2).enumerate() {
        let within = created_at().gte(period[0]).and(created_at().lt(period[1]));
        query = query.column_as(Expr::case(within, 1).finally(0).sum(), format!("p{n}"));
    }
    let statement = conn
        .get_database_backend()
        .build(&QueryTrait::into_query(query));
    let Some(row) = conn.query_one_raw(statement).await? else {
        return Ok(vec![0; bounds.len() - 1]);
    };
    (0..bounds.len() - 1)
        .map(|n| {
            // SUM over no rows is NULL.
            let count: Option<i64> = row.try_get("", &format!("p{n}"))?;
            Ok(count.map_or(0, |count| u64::try_from(count).unwrap_or(0)))
        })
        .collect()
}

/// Accounts seen (a login or refresh) at or after `since`.
pub async fn count_seen_since(
    conn: &impl ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::LastSeenAt.gte(since))
        .count(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_searched_for() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(escape_like("jane"), "jane");
    }

    #[test]
    fn positions_read_back_what_they_wrote() {
        let id = Uuid::now_v7();
        let at = "2026-12-03T10:13:51.123456Z";
        assert!(UserOrder::Newest.position(Some(at), id).is_some());
        assert!(UserOrder::Newest.position(Some("yesterday"), id).is_none());
        assert!(UserOrder::Newest.position(None, id).is_none());
        assert!(UserOrder::RecentLogin.position(None, id).is_some());
        assert!(
            UserOrder::Email
                .position(Some("a@example.com"), id)
                .is_some()
        );
    }

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
