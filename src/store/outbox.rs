//! The `outbox` table: mail stored with the state change that caused it, waiting for a worker
//! to hand it to the mail server.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    Condition, QueryOrder, QuerySelect,
    entity::prelude::*,
    sea_query::{Expr, ExprTrait},
};

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub recipient: String,
    /// What the mail is (`verification_code`, `password_changed`, …), for metrics and logs.
    pub kind: String,
    pub subject: String,
    /// The text and HTML parts, sealed by the vault when encryption keys are set.
    pub body: String,
    pub user_id: Option<Uuid>,
    pub code_id: Option<Uuid>,
    pub code_hash: Option<String>,
    pub created_at: DateTimeUtc,
    pub next_attempt_at: DateTimeUtc,
    pub attempts: i32,
    pub claimed_until: Option<DateTimeUtc>,
}

/// Redacting: the body may carry a live code.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("outbox::Model")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("body", &"[redacted]")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub struct NewMail {
    pub id: Uuid,
    pub recipient: String,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub user_id: Option<Uuid>,
    pub code: Option<(Uuid, String)>,
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    mail: NewMail,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let (code_id, code_hash) = mail.code.unzip();
    Entity::insert(ActiveModel {
        id: Set(mail.id),
        recipient: Set(mail.recipient),
        kind: Set(mail.kind),
        subject: Set(mail.subject),
        body: Set(mail.body),
        user_id: Set(mail.user_id),
        code_id: Set(code_id),
        code_hash: Set(code_hash),
        created_at: Set(now),
        next_attempt_at: Set(now),
        attempts: Set(0),
        claimed_until: Set(None),
    })
    .exec(conn)
    .await?;
    Ok(())
}

fn unclaimed(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(Column::ClaimedUntil.is_null())
        .add(Column::ClaimedUntil.lte(now))
}

/// Mail due now that no worker holds, oldest first.
pub async fn due(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::NextAttemptAt.lte(now))
        .filter(unclaimed(now))
        .order_by_asc(Column::NextAttemptAt)
        .limit(limit)
        .all(conn)
        .await
}

/// Takes a mail for one worker until `until`. A compare-and-set: of the workers of every
/// instance racing for it, exactly one gets `true`.
pub async fn claim(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::ClaimedUntil, Expr::value(until))
        .filter(Column::Id.eq(id))
        .filter(unclaimed(now))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Every waiting mail, for sealing bodies anew.
pub async fn all(conn: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find().all(conn).await
}

pub async fn set_body(conn: &impl ConnectionTrait, id: Uuid, body: String) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Body, Expr::value(body))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Done with a mail: sent, or dropped because its code died.
pub async fn delete(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    Entity::delete_by_id(id).exec(conn).await?;
    Ok(())
}

/// Puts a mail the server refused back in line, for another try at `next_attempt_at`.
pub async fn retry_at(
    conn: &impl ConnectionTrait,
    id: Uuid,
    next_attempt_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::NextAttemptAt, Expr::value(next_attempt_at))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(
            Column::ClaimedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}
