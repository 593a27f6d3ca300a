use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub occurred_at: DateTimeUtc,
    /// `registration`, `verification`, `login`, `lockout`, `refresh_reuse`, `password_reset`,
    /// `password_change`, `session_revocation`.
    pub action: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub user_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// A small JSON object with what else matters (never a secret).
    pub details: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
