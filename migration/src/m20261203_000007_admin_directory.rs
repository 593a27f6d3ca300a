//! The admin directory (contract §10). Indexes: every order `GET /admin/users` lists in, and
//! the audit trail's (all events, or one kind), is read page after page along an index that
//! ends on the id, so a page deep in the list costs what the first one does. On PostgreSQL, a stored `search_text` for
//! `q`: see below.
//!
//! Additive only: the single-column indexes of migration 4 stay for instances of the previous
//! release, which also never write the new column (the database computes it).

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, columns) in indexes() {
            let mut index = Index::create();
            index.name(name).table(table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            // `q` looks for text in the address, username and names. PostgreSQL's LIKE minds
            // case, and lowering the names row by row costs as much as the search: four LIKEs
            // over 100,000 accounts take ~40 ms, one over this column ~20 ms. The fields are
            // joined by U+001F, which `q` may not contain, so no match spans two of them.
            // (SQLite's LIKE ignores ASCII case, and searches the columns themselves faster
            // than a computed one.) Raw SQL: sea-query has no `||` for a generated column.
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(ColumnDef::new(Users::SearchText).text().generated(
                            Expr::cust(
                                "lower(email || E'\\x1f' || coalesce(username_key, '') \
                                     || E'\\x1f' || first_name || E'\\x1f' || last_name)",
                            ),
                            true,
                        ))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(Users::SearchText)
                        .to_owned(),
                )
                .await?;
        }
        for (name, table, _) in indexes() {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

fn indexes() -> Vec<(&'static str, DynIden, Vec<DynIden>)> {
    vec![
        (
            "ix_users_created_at_id",
            Users::Table.into_iden(),
            vec![Users::CreatedAt.into_iden(), Users::Id.into_iden()],
        ),
        (
            "ix_users_last_login_at_id",
            Users::Table.into_iden(),
            vec![Users::LastLoginAt.into_iden(), Users::Id.into_iden()],
        ),
        (
            "ix_audit_events_occurred_at_id",
            AuditEvents::Table.into_iden(),
            vec![
                AuditEvents::OccurredAt.into_iden(),
                AuditEvents::Id.into_iden(),
            ],
        ),
        // `GET /admin/audit?event=…` pages through one event, newest first, and the figures
        // count one event since a time: rare events would otherwise cost a walk of the trail.
        (
            "ix_audit_events_action_occurred_at_id",
            AuditEvents::Table.into_iden(),
            vec![
                AuditEvents::Action.into_iden(),
                AuditEvents::OccurredAt.into_iden(),
                AuditEvents::Id.into_iden(),
            ],
        ),
    ]
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    CreatedAt,
    LastLoginAt,
    SearchText,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    Action,
    OccurredAt,
}
