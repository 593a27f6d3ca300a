//! The `signing_keys` table: every key the service signed with, shared by every instance.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, Condition, FromQueryResult, QueryOrder, QuerySelect, entity::prelude::*,
    sea_query::Expr,
};

use super::SecretText;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    pub algorithm: String,
    /// PKCS#8 DER, base64. Shared through the database so every instance signs alike.
    pub private_key: SecretText,
    /// The public JWK as JSON, exactly as published.
    pub public_jwk: String,
    pub created_at: DateTimeUtc,
    /// When a newer key took over signing; `None` for keys still current.
    pub retired_at: Option<DateTimeUtc>,
}

/// Redacting: the private key must never reach a log.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("signing_keys::Model")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_key", &"[redacted]")
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Whether an unretired key of `algorithm` exists.
pub async fn has_current(conn: &impl ConnectionTrait, algorithm: &str) -> Result<bool, DbErr> {
    let current = Entity::find()
        .filter(Column::RetiredAt.is_null())
        .filter(Column::Algorithm.eq(algorithm))
        .one(conn)
        .await?;
    Ok(current.is_some())
}

/// Retires every current key, or only `expected` while it is still current. Returns how many
/// keys were retired: zero for `expected` means another instance rotated first.
pub async fn retire_current(
    conn: &impl ConnectionTrait,
    expected: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut retire = Entity::update_many()
        .col_expr(Column::RetiredAt, Expr::value(now))
        .filter(Column::RetiredAt.is_null());
    if let Some(kid) = expected {
        retire = retire.filter(Column::Kid.eq(kid));
    }
    Ok(retire.exec(conn).await?.rows_affected)
}

pub struct NewKey {
    pub kid: String,
    pub algorithm: String,
    pub private_key: String,
    pub public_jwk: String,
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    key: NewKey,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        kid: Set(key.kid),
        algorithm: Set(key.algorithm),
        private_key: Set(key.private_key.into()),
        public_jwk: Set(key.public_jwk),
        created_at: Set(now),
        retired_at: Set(None),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// Keys still current or retired after `retired_after`, newest first.
pub async fn live(
    conn: &impl ConnectionTrait,
    retired_after: DateTime<Utc>,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(
            Condition::any()
                .add(Column::RetiredAt.is_null())
                .add(Column::RetiredAt.gt(retired_after)),
        )
        .order_by_desc(Column::CreatedAt)
        .order_by_asc(Column::Kid)
        .all(conn)
        .await
}

/// Stores a re-sealed private key.
pub async fn set_private_key(
    conn: &impl ConnectionTrait,
    kid: &str,
    private_key: String,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::PrivateKey, Expr::value(private_key))
        .filter(Column::Kid.eq(kid))
        .exec(conn)
        .await?;
    Ok(())
}

/// A cheap summary that changes whenever a key is made or retired, so instances can notice a
/// rotation made elsewhere within seconds without reloading every key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromQueryResult)]
pub struct Fingerprint {
    pub keys: i64,
    pub newest_created: Option<DateTime<Utc>>,
    pub newest_retired: Option<DateTime<Utc>>,
}

pub async fn fingerprint(conn: &impl ConnectionTrait) -> Result<Fingerprint, DbErr> {
    let row = Entity::find()
        .select_only()
        .column_as(Column::Kid.count(), "keys")
        .column_as(Column::CreatedAt.max(), "newest_created")
        .column_as(Column::RetiredAt.max(), "newest_retired")
        .into_model::<Fingerprint>()
        .one(conn)
        .await?;
    Ok(row.unwrap_or_default())
}

/// Every key ever made, newest first.
pub async fn all(conn: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .order_by_desc(Column::CreatedAt)
        .all(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sea-orm derives `Debug` for `ActiveModel`; a change set printed by accident (in an
    /// error or a trace) must not carry the private key into a log.
    #[test]
    fn active_model_debug_hides_private_key() {
        let row = ActiveModel {
            private_key: Set(String::from("MC4CAQAwBQYDK2VwBCIEIPrivateKeyMaterial").into()),
            ..Default::default()
        };

        let printed = format!("{row:?}");

        assert!(!printed.contains("PrivateKeyMaterial"), "{printed}");
        assert!(printed.contains("private_key"), "{printed}");
    }
}
