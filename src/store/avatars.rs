//! The `avatars` table: each user's stored profile picture.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "avatars")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
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
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Removes the user's picture; true if there was one.
pub async fn delete(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<bool, DbErr> {
    let deleted = Entity::delete_by_id(user_id).exec(conn).await?;
    Ok(deleted.rows_affected > 0)
}
