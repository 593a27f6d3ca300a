//! The security review's schema: the mail outbox, the lineage of refresh tokens (so a session
//! never forks), and how often an unverified address was registered.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Mail waiting for the mail server. A request stores its mail here in the transaction
        // of its state change; a worker in every instance claims, sends and deletes it.
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(pk_uuid(Outbox::Id))
                    .col(string(Outbox::Recipient))
                    .col(string(Outbox::Kind))
                    .col(text(Outbox::Subject))
                    // The text and HTML parts, sealed when encryption keys are set: code
                    // mails carry live codes.
                    .col(text(Outbox::Body))
                    .col(uuid_null(Outbox::UserId))
                    // For code mails: the code row and the hash of the code the mail carries,
                    // so a mail whose code was replaced, used or expired is dropped unsent.
                    .col(uuid_null(Outbox::CodeId))
                    .col(string_null(Outbox::CodeHash))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone(Outbox::NextAttemptAt))
                    .col(integer(Outbox::Attempts))
                    .col(timestamp_with_time_zone_null(Outbox::ClaimedUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_outbox_next_attempt_at")
                    .table(Outbox::Table)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;

        // SQLite alters one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(uuid_null(RefreshTokens::ParentId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(timestamp_with_time_zone_null(RefreshTokens::SupersededAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_refresh_tokens_parent_id")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::ParentId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(integer(Users::Registrations).default(1))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await?;
        for (table, column) in [
            (
                RefreshTokens::Table.into_iden(),
                RefreshTokens::ParentId.into_iden(),
            ),
            (
                RefreshTokens::Table.into_iden(),
                RefreshTokens::SupersededAt.into_iden(),
            ),
            (Users::Table.into_iden(), Users::Registrations.into_iden()),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Recipient,
    Kind,
    Subject,
    Body,
    UserId,
    CodeId,
    CodeHash,
    CreatedAt,
    NextAttemptAt,
    Attempts,
    ClaimedUntil,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    ParentId,
    SupersededAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Registrations,
}
