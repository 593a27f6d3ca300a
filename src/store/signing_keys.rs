use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    pub algorithm: String,
    /// PKCS#8 DER, base64. Shared through the database so every instance signs alike.
    pub private_key: String,
    /// The public JWK as JSON, exactly as published.
    pub public_jwk: String,
    pub created_at: DateTimeUtc,
    /// When a newer key took over signing; `None` for keys still current.
    pub retired_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
