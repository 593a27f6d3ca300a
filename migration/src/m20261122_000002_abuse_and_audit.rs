//! Shared rate-limit counters and the audit trail.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One fixed-window counter per limit and subject (`login_ip:203.0.113.9`). Times are
        // epoch milliseconds: integers compare the same on every database.
        manager
            .create_table(
                Table::create()
                    .table(RateLimits::Table)
                    .col(string(RateLimits::Key).primary_key())
                    .col(big_integer(RateLimits::WindowStartedMs))
                    .col(integer(RateLimits::Hits))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_rate_limits_window_started_ms")
                    .table(RateLimits::Table)
                    .col(RateLimits::WindowStartedMs)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(pk_uuid(AuditEvents::Id))
                    .col(timestamp_with_time_zone(AuditEvents::OccurredAt))
                    .col(string(AuditEvents::Action))
                    .col(string(AuditEvents::Outcome))
                    .col(uuid_null(AuditEvents::UserId))
                    .col(string_null(AuditEvents::Ip))
                    .col(string_null(AuditEvents::UserAgent))
                    .col(text(AuditEvents::Details))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_audit_events_occurred_at", AuditEvents::OccurredAt),
            ("ix_audit_events_user_id", AuditEvents::UserId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditEvents::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RateLimits::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    Key,
    WindowStartedMs,
    Hits,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    OccurredAt,
    Action,
    Outcome,
    UserId,
    Ip,
    UserAgent,
    Details,
}
