//! The `profiles` table: the optional, free-form part of an account.

use sea_orm::{ActiveValue::Set, entity::prelude::*, sea_query::OnConflict};

use super::account_changes;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub date_of_birth: Option<Date>,
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

/// The profile every account starts with.
pub fn empty(user_id: Uuid) -> Model {
    Model {
        user_id,
        bio: String::new(),
        avatar_url: None,
        date_of_birth: None,
    }
}

pub async fn find(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(user_id).one(conn).await
}

pub async fn insert_empty(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
    account_changes::note(user_id);
    Entity::insert(ActiveModel::from(empty(user_id)))
        .exec(conn)
        .await?;
    Ok(())
}

/// Writes the whole profile, creating the row should it ever be missing (rather than failing
/// the request).
pub async fn save(conn: &impl ConnectionTrait, profile: Model) -> Result<(), DbErr> {
    account_changes::note(profile.user_id);
    Entity::insert(ActiveModel {
        user_id: Set(profile.user_id),
        bio: Set(profile.bio),
        avatar_url: Set(profile.avatar_url),
        date_of_birth: Set(profile.date_of_birth),
    })
    .on_conflict(
        OnConflict::column(Column::UserId)
            .update_columns([Column::Bio, Column::AvatarUrl, Column::DateOfBirth])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}
