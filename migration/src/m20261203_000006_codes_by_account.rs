//! An index on the account a one-time code is held for: an email change finds the account's
//! pending code by it (the row is keyed by the new address, which the account does not have
//! yet), and voids the account's codes by it when the address changes.
//!
//! Additive only.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "ix_one_time_codes_user_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(OneTimeCodes::Table)
                    .col(OneTimeCodes::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(OneTimeCodes::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum OneTimeCodes {
    Table,
    UserId,
}
