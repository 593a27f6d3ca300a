//! Drops the single-column indexes that migration 7's `(column, id)` indexes cover: every
//! query they served can use the wider index's first column. Each was one more index written
//! by every sign-in (a new `last_login_at` moves the user's row to new index entries) and
//! every audit event.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in covered() {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, column) in covered() {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Each index with its table and column.
fn covered() -> [(&'static str, DynIden, DynIden); 3] {
    [
        (
            "ix_users_created_at",
            Users::Table.into_iden(),
            Users::CreatedAt.into_iden(),
        ),
        (
            "ix_users_last_login_at",
            Users::Table.into_iden(),
            Users::LastLoginAt.into_iden(),
        ),
        (
            "ix_audit_events_occurred_at",
            AuditEvents::Table.into_iden(),
            AuditEvents::OccurredAt.into_iden(),
        ),
    ]
}

#[derive(DeriveIden)]
enum Users {
    Table,
    CreatedAt,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    OccurredAt,
}
