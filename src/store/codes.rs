//! The `one_time_codes` table: one row per address and purpose, holding the hash of the live
//! code, its attempts and the time it was last mailed.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    QueryOrder, QuerySelect,
    entity::prelude::*,
    sea_query::{Expr, ExprTrait},
};

use super::SecretText;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "one_time_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub email: String,
    pub purpose: String,
    pub user_id: Option<Uuid>,
    /// `None` for an address without an eligible account: the row then only carries the
    /// resend cooldown (and, for guesses, the attempt count).
    pub code_hash: Option<SecretText>,
    pub attempts: i32,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub consumed_at: Option<DateTimeUtc>,
    pub last_sent_at: Option<DateTimeUtc>,
}

/// Redacting: six digits are easy to recover from a leaked hash.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("one_time_codes::Model")
            .field("id", &self.id)
            .field("purpose", &self.purpose)
            .field("code_hash", &"[redacted]")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The code row of an address and purpose, locked for the rest of the transaction.
pub async fn lock(
    conn: &impl ConnectionTrait,
    email: &str,
    purpose: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Email.eq(email))
        .filter(Column::Purpose.eq(purpose))
        .lock_exclusive()
        .one(conn)
        .await
}

/// The code row of `purpose` held for an account, locked for the rest of the transaction. A
/// new request voids the account's older rows of the purpose, so there is at most one.
pub async fn lock_held_by(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    purpose: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Purpose.eq(purpose))
        .order_by_desc(Column::CreatedAt)
        .lock_exclusive()
        .one(conn)
        .await
}

/// Voids the codes held for an account (of `purpose`, or all): the hash goes, so no code
/// matches and the outbox drops their mails, and the account lets go of the row. The row
/// stays, with its send time: the resend cooldown of the address still holds.
pub async fn void_held_by(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    purpose: Option<&str>,
) -> Result<(), DbErr> {
    let mut update = Entity::update_many()
        .col_expr(Column::CodeHash, Expr::value(Option::<String>::None))
        .col_expr(Column::UserId, Expr::value(Option::<Uuid>::None))
        .filter(Column::UserId.eq(user_id));
    if let Some(purpose) = purpose {
        update = update.filter(Column::Purpose.eq(purpose));
    }
    update.exec(conn).await?;
    Ok(())
}

/// Writes a row as given: a fresh code replacing the old one, or a placeholder counting
/// guesses at an address that has none. `existing` says whether the row is already there.
pub async fn save(conn: &impl ConnectionTrait, row: Model, existing: bool) -> Result<(), DbErr> {
    let row = ActiveModel {
        id: Set(row.id),
        email: Set(row.email),
        purpose: Set(row.purpose),
        user_id: Set(row.user_id),
        code_hash: Set(row.code_hash),
        attempts: Set(row.attempts),
        created_at: Set(row.created_at),
        expires_at: Set(row.expires_at),
        consumed_at: Set(row.consumed_at),
        last_sent_at: Set(row.last_sent_at),
    };
    if existing {
        row.update(conn).await?;
    } else {
        row.insert(conn).await?;
    }
    Ok(())
}

/// Counts a wrong guess, atomically and never past `max_attempts`, so parallel guesses cannot
/// exceed the limit.
pub async fn count_miss(
    conn: &impl ConnectionTrait,
    id: Uuid,
    max_attempts: i32,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .filter(Column::Id.eq(id))
        .filter(Column::Attempts.lt(max_attempts))
        .exec(conn)
        .await?;
    Ok(())
}

/// Uses a code up. A compare-and-set on the hash: only one request can consume a code, however
/// many race with the right one, and a code replaced meanwhile is not consumed.
pub async fn consume(
    conn: &impl ConnectionTrait,
    id: Uuid,
    code_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::ConsumedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::ConsumedAt.is_null())
        .filter(Column::CodeHash.eq(code_hash))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Whether the code with this hash is still the live, unused, unexpired code of its row.
pub async fn is_live(
    conn: &impl ConnectionTrait,
    id: Uuid,
    code_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let found = Entity::find_by_id(id)
        .filter(Column::CodeHash.eq(code_hash))
        .filter(Column::ConsumedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .one(conn)
        .await?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sea-orm derives `Debug` for `ActiveModel`; a change set printed by accident (in an
    /// error or a trace) must not carry the code hash into a log.
    #[test]
    fn active_model_debug_hides_code_hash() {
        let row = ActiveModel {
            code_hash: Set(Some(String::from("b64-of-an-hmac-of-six-digits").into())),
            ..Default::default()
        };

        let printed = format!("{row:?}");

        assert!(!printed.contains("six-digits"), "{printed}");
        assert!(printed.contains("code_hash"), "{printed}");
    }
}
