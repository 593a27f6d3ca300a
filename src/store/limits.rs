//! The `rate_limits` table: one fixed-window counter per limit and subject
//! (`login_ip:203.0.113.9`), shared by every instance on the database. Times are epoch
//! milliseconds: integers compare the same on every database.

use sea_orm::{
    ActiveValue::Set,
    entity::prelude::*,
    sea_query::{Expr, ExprTrait, OnConflict},
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rate_limits")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub window_started_ms: i64,
    pub hits: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Counts a hit on `key` and returns the counter after it, in one statement (an upsert with
/// `RETURNING`, the same on SQLite 3.35+ and PostgreSQL): a new window starts at `now_ms` when
/// the stored one began `window_ms` or more ago.
pub async fn count_hit(
    conn: &impl ConnectionTrait,
    key: String,
    now_ms: i64,
    window_ms: i64,
) -> Result<Model, DbErr> {
    let stored = |column: Column| Expr::col((Entity, column));
    let window_passed = stored(Column::WindowStartedMs).lte(now_ms - window_ms);
    Entity::insert(ActiveModel {
        key: Set(key),
        window_started_ms: Set(now_ms),
        hits: Set(1),
    })
    .on_conflict(
        OnConflict::column(Column::Key)
            .value(
                Column::Hits,
                Expr::case(window_passed.clone(), 1).finally(stored(Column::Hits).add(1)),
            )
            .value(
                Column::WindowStartedMs,
                Expr::case(window_passed, now_ms).finally(stored(Column::WindowStartedMs)),
            )
            .to_owned(),
    )
    .exec_with_returning(conn)
    .await
}

/// Takes back one hit.
pub async fn refund_hit(conn: &impl ConnectionTrait, key: String) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Hits, Expr::col(Column::Hits).sub(1))
        .filter(Column::Key.eq(key))
        .filter(Column::Hits.gt(0))
        .exec(conn)
        .await?;
    Ok(())
}

/// The counter of `key`, if one is stored.
pub async fn find(conn: &impl ConnectionTrait, key: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(key).one(conn).await
}

/// Forgets the counter of `key`: its limit starts afresh.
pub async fn delete(conn: &impl ConnectionTrait, key: &str) -> Result<u64, DbErr> {
    let result = Entity::delete_by_id(key).exec(conn).await?;
    Ok(result.rows_affected)
}

/// Deletes counters whose window began at or before `cutoff_ms`.
pub async fn purge_started_before(
    conn: &impl ConnectionTrait,
    cutoff_ms: i64,
) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::WindowStartedMs.lte(cutoff_ms))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}
