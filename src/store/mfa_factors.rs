//! The `mfa_factors` table: an account's second factors (`totp`, `email`), one row per kind.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, QueryOrder, entity::prelude::*, sea_query::Expr};

use super::SecretText;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_factors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// `totp` or `email`.
    pub kind: String,
    /// The TOTP secret (base32), sealed by the vault when encryption keys are set.
    pub secret: Option<SecretText>,
    pub created_at: DateTimeUtc,
    /// `None` while a TOTP setup waits for its first code.
    pub confirmed_at: Option<DateTimeUtc>,
    /// The last TOTP time step accepted: an older or equal one is a replay.
    pub last_used_step: Option<i64>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mfa_factors::Model")
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("secret", &self.secret)
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub const TOTP: &str = "totp";
pub const EMAIL: &str = "email";

/// Every factor of an account, confirmed or not, oldest first.
pub async fn of_user(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_asc(Column::CreatedAt)
        .all(conn)
        .await
}

/// Confirmed factors of many accounts at once, for lists of users.
pub async fn confirmed_of_users(
    conn: &impl ConnectionTrait,
    user_ids: Vec<Uuid>,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.is_in(user_ids))
        .filter(Column::ConfirmedAt.is_not_null())
        .order_by_asc(Column::CreatedAt)
        .all(conn)
        .await
}

pub async fn find(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    kind: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Kind.eq(kind))
        .one(conn)
        .await
}

/// Replaces the account's factor of `kind` (a new TOTP setup replaces a pending one).
pub async fn replace(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    kind: &str,
    secret: Option<String>,
    confirmed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    delete(conn, user_id, kind).await?;
    Entity::insert(ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(user_id),
        kind: Set(kind.to_string()),
        secret: Set(secret.map(Into::into)),
        created_at: Set(now),
        confirmed_at: Set(confirmed_at),
        last_used_step: Set(None),
    })
    .exec(conn)
    .await?;
    Ok(())
}

pub async fn confirm(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::ConfirmedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Records a TOTP step as used. A compare-and-set: of two requests racing with one code,
/// exactly one gets `true`, and an older step never replaces a newer one.
pub async fn use_step(conn: &impl ConnectionTrait, id: Uuid, step: i64) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::LastUsedStep, Expr::value(step))
        .filter(Column::Id.eq(id))
        .filter(
            sea_orm::Condition::any()
                .add(Column::LastUsedStep.is_null())
                .add(Column::LastUsedStep.lt(step)),
        )
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Stores a re-sealed secret (key rotation, or sealing values stored in clear).
pub async fn set_secret(
    conn: &impl ConnectionTrait,
    id: Uuid,
    secret: String,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Secret, Expr::value(secret))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Every factor with a secret, for sealing them anew.
pub async fn with_secrets(conn: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Secret.is_not_null())
        .all(conn)
        .await
}

pub async fn delete(conn: &impl ConnectionTrait, user_id: Uuid, kind: &str) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Kind.eq(kind))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

pub async fn delete_all_of(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}
