//! The `recovery_codes` table: an account's single-use codes for a lost second factor,
//! stored as MACs.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, entity::prelude::*, sea_query::Expr};

use super::SecretText;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "recovery_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub code_hash: SecretText,
    pub created_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Replaces the account's set: the old codes stop working.
pub async fn replace_set(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    code_hashes: Vec<String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    delete_all_of(conn, user_id).await?;
    let rows = code_hashes.into_iter().map(|hash| ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(user_id),
        code_hash: Set(hash.into()),
        created_at: Set(now),
        used_at: Set(None),
    });
    Entity::insert_many(rows).exec(conn).await?;
    Ok(())
}

/// The codes not used yet.
pub async fn unused_of(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::UsedAt.is_null())
        .all(conn)
        .await
}

/// Uses a code up. A compare-and-set: one code signs in once, however many race with it.
pub async fn use_code(
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

pub async fn delete_all_of(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}
