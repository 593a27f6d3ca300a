//! The `refresh_tokens` table: every token a session was given, stored as a hash, with the
//! time it was exchanged for its successor.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    entity::prelude::*,
    sea_query::{Expr, Query},
};

use super::{SecretText, sessions};

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub session_id: Uuid,
    /// SHA-256 of the token, base64url: the token itself is never stored.
    #[sea_orm(unique)]
    pub token_hash: SecretText,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// When the token was exchanged for a new one; `None` while it is the live token.
    pub rotated_at: Option<DateTimeUtc>,
    /// The token this one succeeded; `None` for the first token of a session.
    pub parent_id: Option<Uuid>,
    /// When a sibling (another successor of the same parent) was used first, which makes this
    /// one a fork that must never be used.
    pub superseded_at: Option<DateTimeUtc>,
}

/// Redacting: even a hash of a bearer secret stays out of logs.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("refresh_tokens::Model")
            .field("id", &self.id)
            .field("session_id", &self.session_id)
            .field("token_hash", &"[redacted]")
            .field("rotated_at", &self.rotated_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::sessions::Entity",
        from = "Column::SessionId",
        to = "super::sessions::Column::Id",
        on_delete = "Cascade"
    )]
    Session,
}

impl Related<super::sessions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

pub struct NewToken {
    pub session_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    token: NewToken,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        id: Set(Uuid::new_v4()),
        session_id: Set(token.session_id),
        token_hash: Set(token.token_hash.into()),
        created_at: Set(now),
        expires_at: Set(token.expires_at),
        rotated_at: Set(None),
        parent_id: Set(token.parent_id),
        superseded_at: Set(None),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// The token with this hash and its session, in one query.
pub async fn find_with_session(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<(Model, sessions::Model)>, DbErr> {
    let found = Entity::find()
        .filter(Column::TokenHash.eq(token_hash))
        .find_also_related(sessions::Entity)
        .one(conn)
        .await?;
    Ok(found.and_then(|(token, session)| session.map(|session| (token, session))))
}

/// The token with this hash as it is now (read once its session is locked).
pub async fn find_by_hash(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::TokenHash.eq(token_hash))
        .one(conn)
        .await
}

/// Whether a successor of this token has been used already.
pub async fn has_used_successor(conn: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    let used = Entity::find()
        .filter(Column::ParentId.eq(id))
        .filter(Column::RotatedAt.is_not_null())
        .one(conn)
        .await?;
    Ok(used.is_some())
}

/// Marks every unused sibling of `winner` (another successor of the same parent) superseded:
/// the first successor used wins, so a session never forks.
pub async fn supersede_siblings(
    conn: &impl ConnectionTrait,
    winner: &Model,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let Some(parent_id) = winner.parent_id else {
        return Ok(());
    };
    Entity::update_many()
        .col_expr(Column::SupersededAt, Expr::value(now))
        .filter(Column::ParentId.eq(parent_id))
        .filter(Column::Id.ne(winner.id))
        .filter(Column::RotatedAt.is_null())
        .filter(Column::SupersededAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Marks the token with this hash rotated if it is live (neither rotated nor superseded) and
/// returns it as it now is, in one statement. A compare-and-set: of two requests racing with
/// the same live token, exactly one gets it back.
pub async fn rotate_live(
    conn: &impl ConnectionTrait,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    let rotate = Query::update()
        .table(Entity)
        .value(Column::RotatedAt, now)
        .and_where(Column::TokenHash.eq(token_hash))
        .and_where(Column::RotatedAt.is_null())
        .and_where(Column::SupersededAt.is_null())
        .returning_all()
        .to_owned();
    let statement = conn.get_database_backend().build(&rotate);
    Entity::find().from_raw_sql(statement).one(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sea-orm derives `Debug` for `ActiveModel`; a change set printed by accident (in an
    /// error or a trace) must not carry the token hash into a log.
    #[test]
    fn active_model_debug_hides_token_hash() {
        let row = ActiveModel {
            token_hash: Set(String::from("b64-of-a-token-hash").into()),
            ..Default::default()
        };

        let printed = format!("{row:?}");

        assert!(!printed.contains("token-hash"), "{printed}");
        assert!(printed.contains("token_hash"), "{printed}");
    }
}
