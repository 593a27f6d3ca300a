//! The `avatars` table: each user's stored profile picture, kept in the database so that
//! every instance serves it.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, entity::prelude::*, sea_query::OnConflict};

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "avatars")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// `image/jpeg` or `image/png`: what the picture was re-encoded as.
    pub content_type: String,
    pub image: Vec<u8>,
    /// A strong ETag of `image`, quotes included.
    pub etag: String,
    pub updated_at: DateTime<Utc>,
}

/// By hand, so that a row in a log line is its size rather than tens of KiB of numbers.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("user_id", &self.user_id)
            .field("content_type", &self.content_type)
            .field("image", &format_args!("{} bytes", self.image.len()))
            .field("etag", &self.etag)
            .field("updated_at", &self.updated_at)
            .finish()
    }
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

pub async fn find(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(user_id).one(conn).await
}

/// Stores the user's picture, replacing the one before.
pub async fn save(conn: &impl ConnectionTrait, picture: Model) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        user_id: Set(picture.user_id),
        content_type: Set(picture.content_type),
        image: Set(picture.image),
        etag: Set(picture.etag),
        updated_at: Set(picture.updated_at),
    })
    .on_conflict(
        OnConflict::column(Column::UserId)
            .update_columns([
                Column::ContentType,
                Column::Image,
                Column::Etag,
                Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

/// Removes the user's picture; true if there was one.
pub async fn delete(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<bool, DbErr> {
    let deleted = Entity::delete_by_id(user_id).exec(conn).await?;
    Ok(deleted.rows_affected > 0)
}
