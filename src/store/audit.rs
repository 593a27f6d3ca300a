//! The `audit_events` table: the security events of every account.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    QueryOrder, QuerySelect,
    entity::prelude::*,
    sea_query::{Expr, ExprTrait},
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub occurred_at: DateTimeUtc,
    /// The event's name (`login`, `login_failed`, `account_updated`, …).
    pub action: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub user_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// A small JSON object with what else matters (never a secret).
    pub details: String,
    /// Who did it, when not the account itself (an admin).
    pub actor_id: Option<Uuid>,
    /// For edits, JSON `{"<field>": {"before": …, "after": …}}`.
    pub changes: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub struct NewEvent<'a> {
    pub action: &'a str,
    pub outcome: &'a str,
    pub user_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: String,
    pub actor_id: Option<Uuid>,
    pub changes: Option<String>,
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    event: NewEvent<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        // Time-ordered: events recorded in one instant (one request often records several)
        // still list in the order they happened.
        id: Set(Uuid::now_v7()),
        occurred_at: Set(now),
        action: Set(event.action.to_string()),
        outcome: Set(event.outcome.to_string()),
        user_id: Set(event.user_id),
        ip: Set(event.ip),
        user_agent: Set(event.user_agent),
        details: Set(event.details),
        actor_id: Set(event.actor_id),
        changes: Set(event.changes),
    })
    .exec(conn)
    .await?;
    Ok(())
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(conn).await
}

/// What `GET /admin/audit` filters on; `None` leaves a filter off.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub user_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub action: Option<String>,
    pub ip: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Strictly before.
    pub until: Option<DateTime<Utc>>,
}

/// One page of events, newest first (ties on the time by id, also descending), after the
/// event at `after` (its time and id) when given.
pub async fn page(
    conn: &impl ConnectionTrait,
    filter: &EventFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut query = Entity::find();
    if let Some(user_id) = filter.user_id {
        query = query.filter(Column::UserId.eq(user_id));
    }
    if let Some(actor_id) = filter.actor_id {
        query = query.filter(Column::ActorId.eq(actor_id));
    }
    if let Some(action) = &filter.action {
        query = query.filter(Column::Action.eq(action.as_str()));
    }
    if let Some(ip) = &filter.ip {
        query = query.filter(Column::Ip.eq(ip.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(Column::OccurredAt.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(Column::OccurredAt.lt(until));
    }
    if let Some((at, id)) = after {
        // A row value, which both databases read as a range of the `(occurred_at, id)` index.
        query = query.filter(
            Expr::tuple([Expr::col(Column::OccurredAt), Expr::col(Column::Id)])
                .lt(Expr::tuple([Expr::val(at), Expr::val(id)])),
        );
    }
    query
        .order_by_desc(Column::OccurredAt)
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// The events of one account, newest first (ties in time in the order of their time-ordered
/// ids); at most `limit` of them when one is given.
pub async fn of_user_newest_first(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    limit: Option<u64>,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_desc(Column::OccurredAt)
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Forgets where an account's events came from: their IP addresses and user agents.
pub async fn forget_clients_of(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Ip, Expr::value(Option::<String>::None))
        .col_expr(Column::UserAgent, Expr::value(Option::<String>::None))
        .filter(Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Rewrites what an event says beyond its type, time and people: `details` and `changes`.
pub async fn rewrite_payload(
    conn: &impl ConnectionTrait,
    id: Uuid,
    details: String,
    changes: Option<String>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Details, Expr::value(details))
        .col_expr(Column::Changes, Expr::value(changes))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Events named `action` recorded at or after `since`.
pub async fn count_since(
    conn: &impl ConnectionTrait,
    action: &str,
    since: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::Action.eq(action))
        .filter(Column::OccurredAt.gte(since))
        .count(conn)
        .await
}
