//! The `mfa_challenges` table: sign-ins whose password was right, waiting for their second
//! factor. The `mfa_token` is stored as a hash.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    entity::prelude::*,
    sea_query::{Expr, ExprTrait},
};

use super::{SecretText, profiles, users};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_challenges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    #[sea_orm(unique)]
    pub token_hash: SecretText,
    /// `login` or `restore`.
    pub purpose: String,
    pub failed_attempts: i32,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
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

impl Related<users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

pub struct NewChallenge {
    pub user_id: Uuid,
    pub token_hash: String,
    pub purpose: &'static str,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    challenge: NewChallenge,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(challenge.user_id),
        token_hash: Set(challenge.token_hash.into()),
        purpose: Set(challenge.purpose.to_string()),
        failed_attempts: Set(0),
        created_at: Set(now),
        expires_at: Set(challenge.expires_at),
        used_at: Set(None),
    })
    .exec(conn)
    .await?;
    Ok(())
}

pub async fn find_by_hash(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::TokenHash.eq(token_hash))
        .one(conn)
        .await
}

/// A challenge by its token's hash, with its account's row (locked for the rest of the
/// transaction, as every change to an account locks it first) and profile, in one query.
pub async fn find_with_locked_account(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<(Model, users::Model, Option<profiles::Model>)>, DbErr> {
    let found = users::select_locked_with_profile()
        .find_also(users::Entity, Entity)
        .filter(Column::TokenHash.eq(token_hash))
        .one(conn)
        .await?;
    Ok(found.and_then(|(user, profile, challenge)| Some((challenge?, user, profile))))
}

/// Uses the challenge up. A compare-and-set: of two verifications racing with one token,
/// exactly one completes the sign-in.
pub async fn use_up(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::UsedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::UsedAt.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Counts a wrong code; at `burn_at` failures the challenge is used up for good.
pub async fn count_failure(
    conn: &impl ConnectionTrait,
    id: Uuid,
    burn_at: i32,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(
            Column::FailedAttempts,
            Expr::col(Column::FailedAttempts).add(1),
        )
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Entity::update_many()
        .col_expr(Column::UsedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::FailedAttempts.gte(burn_at))
        .filter(Column::UsedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Deletes every challenge of an account, open or ended.
pub async fn delete_all_of(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// Deletes challenges that ended before `cutoff`.
pub async fn purge_ended_before(
    conn: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::ExpiresAt.lt(cutoff))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}
