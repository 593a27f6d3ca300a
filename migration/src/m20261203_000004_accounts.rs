//! Accounts over their whole life (contract §10): usernames, status and deletion, app-defined
//! metadata, pictures, and who changed what in the audit trail.
//!
//! Additive only: instances of the previous release keep working on an upgraded database
//! during a rolling deployment (which is why `users.is_active` stays, written beside `status`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            string_null(Users::Username),
            // The username lowercased: uniqueness without regard to case, portably.
            string_null(Users::UsernameKey),
            string(Users::Status).default("active").to_owned(),
            timestamp_with_time_zone_null(Users::DeletionScheduledFor),
            text(Users::Metadata).default("{}").to_owned(),
            text(Users::AppMetadata).default("{}").to_owned(),
            timestamp_with_time_zone_null(Users::LastSeenAt),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .exec_stmt(
                Query::update()
                    .table(Users::Table)
                    .value(Users::Status, "disabled")
                    .and_where(Expr::col(Users::IsActive).eq(false))
                    .to_owned(),
            )
            .await?;
        for (name, column, unique) in [
            ("ux_users_username_key", Users::UsernameKey, true),
            ("ix_users_created_at", Users::CreatedAt, false),
            ("ix_users_last_login_at", Users::LastLoginAt, false),
            (
                "ix_users_deletion_scheduled_for",
                Users::DeletionScheduledFor,
                false,
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Users::Table).col(column);
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        for column in [
            uuid_null(AuditEvents::ActorId),
            text_null(AuditEvents::Changes),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(AuditEvents::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Event names carry their outcome from now on (`login_failed`), so the trail can be
        // filtered by event alone.
        for (action, failed) in [
            ("login", "login_failed"),
            ("password_change", "password_change_failed"),
        ] {
            manager
                .exec_stmt(
                    Query::update()
                        .table(AuditEvents::Table)
                        .value(AuditEvents::Action, failed)
                        .and_where(Expr::col(AuditEvents::Action).eq(action))
                        .and_where(Expr::col(AuditEvents::Outcome).eq("failure"))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_events_actor_id")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::ActorId)
                    .to_owned(),
            )
            .await?;

        // Pictures live in the database so every instance serves them.
        manager
            .create_table(
                Table::create()
                    .table(Avatars::Table)
                    .col(pk_uuid(Avatars::UserId))
                    .col(string(Avatars::ContentType))
                    .col(blob(Avatars::Image))
                    .col(string(Avatars::Etag))
                    .col(timestamp_with_time_zone(Avatars::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Avatars::Table, Avatars::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Avatars::Table).to_owned())
            .await?;
        for column in [AuditEvents::ActorId, AuditEvents::Changes] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuditEvents::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Users::Username,
            Users::UsernameKey,
            Users::Status,
            Users::DeletionScheduledFor,
            Users::Metadata,
            Users::AppMetadata,
            Users::LastSeenAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    IsActive,
    CreatedAt,
    LastLoginAt,
    Username,
    UsernameKey,
    Status,
    DeletionScheduledFor,
    Metadata,
    AppMetadata,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Action,
    Outcome,
    ActorId,
    Changes,
}

#[derive(DeriveIden)]
enum Avatars {
    Table,
    UserId,
    ContentType,
    Image,
    Etag,
    UpdatedAt,
}
