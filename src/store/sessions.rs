//! The `sessions` table: one row per sign-in on one device.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    QueryOrder,
    entity::prelude::*,
    sea_query::{Expr, ExprTrait, Query},
};

use super::refresh_tokens;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTimeUtc,
    pub last_used_at: DateTimeUtc,
    /// The absolute end of the session (`AUTHGATE_SESSION_MAX_AGE` after sign-in), however
    /// often it is refreshed.
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// How the session was authenticated: a JSON array of RFC 8176 methods.
    pub amr: String,
    /// The trusted device it signed in on, if any.
    pub trusted_device_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

pub struct NewSession {
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub amr: String,
    pub trusted_device_id: Option<Uuid>,
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(conn).await
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    session: NewSession,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(session.user_id),
        created_at: Set(now),
        last_used_at: Set(now),
        expires_at: Set(session.expires_at),
        revoked_at: Set(None),
        user_agent: Set(session.user_agent),
        ip: Set(session.ip),
        amr: Set(session.amr),
        trusted_device_id: Set(session.trusted_device_id),
    }
    .insert(conn)
    .await
}

/// Records a use of the live session the refresh token with this hash belongs to and returns
/// it, taking its row lock for the rest of the transaction: refreshes of one session then run
/// one after another on every database. `None` for an unknown token or a revoked session.
pub async fn touch_by_token(
    conn: &impl ConnectionTrait,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    let session_of_token = Query::select()
        .column(refresh_tokens::Column::SessionId)
        .from(refresh_tokens::Entity)
        .and_where(refresh_tokens::Column::TokenHash.eq(token_hash))
        .to_owned();
    let touch = Query::update()
        .table(Entity)
        .value(Column::LastUsedAt, now)
        .and_where(Column::Id.in_subquery(session_of_token))
        .and_where(Column::RevokedAt.is_null())
        .returning_all()
        .to_owned();
    let statement = conn.get_database_backend().build(&touch);
    Entity::find().from_raw_sql(statement).one(conn).await
}

/// Sessions of a user that are neither revoked nor past their absolute end, most recently
/// used first.
pub async fn live_of(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RevokedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .order_by_desc(Column::LastUsedAt)
        .all(conn)
        .await
}

/// Sessions of anyone that are neither revoked nor past their absolute end, and were used at or
/// after `used_since` (older ones hold no refresh token that still works).
pub async fn count_live(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    used_since: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::RevokedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .filter(Column::LastUsedAt.gte(used_since))
        .count(conn)
        .await
}

/// Revokes one session; its refresh tokens stop working with it. Returns whether it was live.
pub async fn revoke(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    revoke_where(conn, Column::Id.eq(id), now)
        .await
        .map(|n| n > 0)
}

/// Revokes one session of `user_id`: someone else's session is left alone, as if unknown.
pub async fn revoke_of_user(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let condition = Column::Id.eq(id).and(Column::UserId.eq(user_id));
    revoke_where(conn, condition, now).await.map(|n| n > 0)
}

/// Revokes every live session of a user.
pub async fn revoke_all_of(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    revoke_where(conn, Column::UserId.eq(user_id), now).await
}

/// Deletes every session of a user, revoked or not, with their refresh tokens: the rows keep
/// the devices' IP addresses and user agents, which an anonymized account must not.
pub async fn delete_all_of(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

async fn revoke_where(
    conn: &impl ConnectionTrait,
    condition: Expr,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now))
        .filter(condition)
        .filter(Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}
