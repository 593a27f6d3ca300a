//! The `trusted_devices` table: browsers and phones on which a person ticked "remember this
//! device", so a correct password alone signs in there. The token is stored as a hash.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, QueryOrder, entity::prelude::*, sea_query::Expr};

use super::SecretText;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trusted_devices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    #[sea_orm(unique)]
    pub token_hash: SecretText,
    pub name: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub device_type: String,
    pub ip: Option<String>,
    pub created_at: DateTimeUtc,
    pub last_used_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub struct NewDevice {
    pub user_id: Uuid,
    pub token_hash: String,
    pub name: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub device_type: String,
    pub ip: Option<String>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    device: NewDevice,
    now: DateTime<Utc>,
) -> Result<Uuid, DbErr> {
    let id = Uuid::new_v4();
    Entity::insert(ActiveModel {
        id: Set(id),
        user_id: Set(device.user_id),
        token_hash: Set(device.token_hash.into()),
        name: Set(device.name),
        browser: Set(device.browser),
        os: Set(device.os),
        device_type: Set(device.device_type),
        ip: Set(device.ip),
        created_at: Set(now),
        last_used_at: Set(now),
        expires_at: Set(device.expires_at),
    })
    .exec(conn)
    .await?;
    Ok(id)
}

/// The live device with this token hash on this account.
pub async fn find_live(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::TokenHash.eq(token_hash))
        .filter(Column::ExpiresAt.gt(now))
        .one(conn)
        .await
}

pub async fn touch(conn: &impl ConnectionTrait, id: Uuid, now: DateTime<Utc>) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::LastUsedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The account's live devices, most recently used first.
pub async fn live_of(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::ExpiresAt.gt(now))
        .order_by_desc(Column::LastUsedAt)
        .all(conn)
        .await
}

/// Forgets one device of the account; false when it was not one of theirs.
pub async fn delete_of_user(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
) -> Result<bool, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn delete_all_of(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}
