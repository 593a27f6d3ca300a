//! The `users` table: one row per account, with the password hash.

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    Condition, DbBackend, FromQueryResult, QueryOrder, QuerySelect, QueryTrait, SelectTwo,
    entity::prelude::*,
    sea_query::{Alias, Expr, ExprTrait, LikeExpr, LockType},
};

use super::{SecretText, account_changes, mfa_challenges, profiles};

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
    #[sea_orm(has_many = "super::mfa_challenges::Entity")]
    MfaChallenge,
}

impl Related<super::profiles::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Profile.def()
    }
}

impl Related<mfa_challenges::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MfaChallenge.def()
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

/// Users with their profile rows, the users' rows locked for the rest of the transaction.
/// Only theirs: PostgreSQL cannot lock the side of an outer join that may be missing.
pub(super) fn select_locked_with_profile() -> SelectTwo<Entity, profiles::Entity> {
    let mut select = Entity::find().find_also_related(profiles::Entity);
    QuerySelect::query(&mut select).lock_with_tables(LockType::Update, [Entity]);
    select
}

/// The user with this id, locked for the rest of the transaction, with its profile.
pub async fn lock_with_profile(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<(Model, Option<profiles::Model>)>, DbErr> {
    select_locked_with_profile()
        .filter(Column::Id.eq(id))
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
    account_changes::note(user.id);
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
    account_changes::note(id);
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
    account_changes::note(id);
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
    account_changes::note(id);
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
    account_changes::note(id);
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
        // An invited admin who never set a password cannot sign in yet.
        .filter(Column::IsVerified.eq(true))
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

/// Records that the account was seen now, unless it was seen after `stale` already.
pub async fn touch_last_seen(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
    stale: DateTime<Utc>,
) -> Result<(), DbErr> {
    account_changes::note(id);
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
    account_changes::note(id);
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
    account_changes::note(id);
    let result = Entity::delete_by_id(id).exec(conn).await?;
    Ok(result.rows_affected == 1)
}
/// `mfa_methods` of an account without a second factor.
const NO_SECOND_FACTORS: &str = "[]";

/// Records the kinds of the account's confirmed second factors.
pub async fn set_mfa_methods(
    conn: &impl ConnectionTrait,
    id: Uuid,
    methods: &[&str],
) -> Result<(), DbErr> {
    account_changes::note(id);
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
    account_changes::note(id);
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
    /// Lowercased text, without control characters, that the address, username, first or
    /// last name contains.
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
    /// True when the filter may leave some accounts out.
    fn narrows(&self) -> bool {
        self.text.is_some()
            || self.role.is_some()
            || self.status.is_some()
            || self.verified.is_some()
            || self.mfa.is_some()
            || self.created_from.is_some()
            || self.created_before.is_some()
    }

    fn condition(&self, backend: DbBackend) -> Condition {
        let column = |column: Column| Expr::col((Entity, column));
        let mut all = Condition::all();
        if let Some(text) = &self.text {
            // `%` and `_` typed by the admin are searched for, not wildcards.
            let pattern = LikeExpr::new(format!("%{}%", escape_like(text))).escape('\\');
            all = all.add(match backend {
                // `search_text`: the address, username key and names, lowered and joined by
                // U+001F (which a search never contains), kept by PostgreSQL itself (migration
                // 5): its LIKE minds case, and lowering the names row by row doubles the cost.
                DbBackend::Postgres => Condition::all()
                    .add(Expr::col((Entity, Alias::new("search_text"))).like(pattern)),
                // SQLite's LIKE ignores the case of ASCII letters (its LOWER() lowers no
                // others), and reads the columns themselves faster than a computed one.
                _ => Condition::any()
                    .add(column(Column::Email).like(pattern.clone()))
                    .add(column(Column::UsernameKey).like(pattern.clone()))
                    .add(column(Column::FirstName).like(pattern.clone()))
                    .add(column(Column::LastName).like(pattern)),
            });
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
        if let Some(mfa) = self.mfa {
            let none = column(Column::MfaMethods).eq(NO_SECOND_FACTORS);
            all = all.add(if mfa { none.not() } else { none });
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

/// The orders `GET /admin/users` lists in. Each has one fixed order even among rows that tie
/// on the sort value (the id decides; addresses are unique anyway), which keyset pagination
/// needs, and each is read along an index: `(created_at, id)`, the unique address, and
/// `(last_login_at, id)`.
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

/// Filtered listings first look for at most this many matches in one unordered pass.
const FEW_MATCHES: u64 = 1000;

/// A page of accounts with their profiles, and how many accounts match in all.
pub struct Found {
    pub rows: Vec<(Model, Option<profiles::Model>)>,
    pub total: u64,
}

/// Up to `fetch` accounts from `start` that pass `filter`, and the count of all that pass.
///
/// Read so that no listing scans the table more than once or walks an index row by row for
/// matches that are rare. A filter is first tried in one unordered pass that stops at
/// [`FEW_MATCHES`]: when it finds them all, they are the count, and the page is ordered from
/// them alone by id. Otherwise matches are dense, so the ordered index walk of the page stops
/// early, and one counting pass follows (none when a first page holds every match).
pub async fn find_page(
    conn: &impl ConnectionTrait,
    filter: &UserFilter,
    start: &PageStart,
    fetch: u64,
) -> Result<Found, DbErr> {
    let condition = filter.condition(conn.get_database_backend());
    if filter.narrows() {
        let ids: Vec<Uuid> = Entity::find()
            .select_only()
            .column(Column::Id)
            .filter(condition.clone())
            .limit(FEW_MATCHES + 1)
            .into_tuple()
            .all(conn)
            .await?;
        if ids.len() as u64 <= FEW_MATCHES {
            let total = ids.len() as u64;
            let only = Condition::all().add(Expr::col((Entity, Column::Id)).is_in(ids));
            let rows = page(conn, only, start, fetch).await?;
            return Ok(Found { rows, total });
        }
    }
    let rows = page(conn, condition, start, fetch).await?;
    let total = match start {
        PageStart::First(_) if (rows.len() as u64) < fetch => rows.len() as u64,
        _ => count_matching(conn, filter).await?,
    };
    Ok(Found { rows, total })
}

/// One page of accounts with their profiles: `limit` rows from `start`, under `condition`.
///
/// Rows after a position are asked for with a row-value comparison, `(created_at, id) < (?,
/// ?)`, which both databases answer with a range scan of the composite index, where the
/// equivalent `a < ? OR (a = ? AND id < ?)` makes them read and sort everything after the
/// position.
async fn page(
    conn: &impl ConnectionTrait,
    condition: Condition,
    start: &PageStart,
    limit: u64,
) -> Result<Vec<(Model, Option<profiles::Model>)>, DbErr> {
    let column = |column: Column| Expr::col((Entity, column));
    let pair = |sorted: Column| Expr::tuple([column(sorted), column(Column::Id)]);
    let (order, after) = match start {
        PageStart::First(order) => (*order, None),
        PageStart::After(position) => (position.order, Some(position)),
    };
    let rows = Entity::find()
        .find_also_related(profiles::Entity)
        .filter(condition.clone());
    let after_pair =
        |at: &Option<DateTime<Utc>>, id: Uuid| Expr::tuple([Expr::val(*at), Expr::val(id)]);
    let rows = match (order, after.map(|position| (&position.value, position.id))) {
        (UserOrder::Oldest, after) => {
            let rows = match after {
                Some((SortValue::At(at), id)) => {
                    rows.filter(pair(Column::CreatedAt).gt(after_pair(at, id)))
                }
                _ => rows,
            };
            rows.order_by_asc(Column::CreatedAt)
                .order_by_asc(Column::Id)
        }
        (UserOrder::Newest, after) => {
            let rows = match after {
                Some((SortValue::At(at), id)) => {
                    rows.filter(pair(Column::CreatedAt).lt(after_pair(at, id)))
                }
                _ => rows,
            };
            rows.order_by_desc(Column::CreatedAt)
                .order_by_desc(Column::Id)
        }
        // Addresses are unique: the address alone places a row.
        (UserOrder::Email, after) => {
            let rows = match after {
                Some((SortValue::Text(email), _)) => {
                    rows.filter(column(Column::Email).gt(email.as_str()))
                }
                _ => rows,
            };
            rows.order_by_asc(Column::Email)
        }
        (UserOrder::RecentLogin, after) => {
            return recent_logins(conn, condition, after, limit).await;
        }
    };
    rows.limit(limit).all(conn).await
}

/// A page of [`UserOrder::RecentLogin`]: accounts that signed in, most recent first, then
/// those that never did, by id (time-ordered: newest account first). Read as two index
/// scans, the signed-in part and then (if the page is not full) the never-signed-in part,
/// because the databases order nulls differently and neither reads `NULLS LAST` of a
/// descending order off an index.
async fn recent_logins(
    conn: &impl ConnectionTrait,
    condition: Condition,
    after: Option<(&SortValue, Uuid)>,
    limit: u64,
) -> Result<Vec<(Model, Option<profiles::Model>)>, DbErr> {
    let column = |column: Column| Expr::col((Entity, column));
    let rows = || {
        Entity::find()
            .find_also_related(profiles::Entity)
            .filter(condition.clone())
    };
    let mut page = Vec::new();
    let never_after = match after {
        Some((SortValue::At(None), id)) => Some(id),
        _ => {
            let mut signed_in = rows().filter(column(Column::LastLoginAt).is_not_null());
            if let Some((SortValue::At(Some(at)), id)) = after {
                signed_in = signed_in.filter(
                    Expr::tuple([column(Column::LastLoginAt), column(Column::Id)])
                        .lt(Expr::tuple([Expr::val(*at), Expr::val(id)])),
                );
            }
            page = signed_in
                .order_by_desc(Column::LastLoginAt)
                .order_by_desc(Column::Id)
                .limit(limit)
                .all(conn)
                .await?;
            None
        }
    };
    let room = limit.saturating_sub(page.len() as u64);
    if room > 0 {
        let mut never = rows().filter(column(Column::LastLoginAt).is_null());
        if let Some(id) = never_after {
            never = never.filter(column(Column::Id).lt(id));
        }
        page.extend(
            never
                .order_by_desc(Column::Id)
                .limit(room)
                .all(conn)
                .await?,
        );
    }
    Ok(page)
}

/// Accounts that pass `filter`.
pub async fn count_matching(
    conn: &impl ConnectionTrait,
    filter: &UserFilter,
) -> Result<u64, DbErr> {
    Entity::find()
        .filter(filter.condition(conn.get_database_backend()))
        .count(conn)
        .await
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
