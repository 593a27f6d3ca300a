//! Two-factor sign-in (contract §11): second factors, recovery codes, sign-ins waiting for
//! their second factor, trusted devices, and the authentication methods of each session.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per account and kind (`totp`, `email`). A TOTP row exists from setup on,
        // unconfirmed until its first code; `last_used_step` refuses a replayed code.
        manager
            .create_table(
                Table::create()
                    .table(MfaFactors::Table)
                    .col(pk_uuid(MfaFactors::Id))
                    .col(uuid(MfaFactors::UserId))
                    .col(string(MfaFactors::Kind))
                    // The TOTP secret, sealed with the encryption keys when they are set.
                    .col(text_null(MfaFactors::Secret))
                    .col(timestamp_with_time_zone(MfaFactors::CreatedAt))
                    .col(timestamp_with_time_zone_null(MfaFactors::ConfirmedAt))
                    .col(big_integer_null(MfaFactors::LastUsedStep))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MfaFactors::Table, MfaFactors::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_mfa_factors_user_kind")
                    .table(MfaFactors::Table)
                    .col(MfaFactors::UserId)
                    .col(MfaFactors::Kind)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(pk_uuid(RecoveryCodes::Id))
                    .col(uuid(RecoveryCodes::UserId))
                    .col(string(RecoveryCodes::CodeHash))
                    .col(timestamp_with_time_zone(RecoveryCodes::CreatedAt))
                    .col(timestamp_with_time_zone_null(RecoveryCodes::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RecoveryCodes::Table, RecoveryCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_recovery_codes_user_id")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .to_owned(),
            )
            .await?;

        // A password that was right, waiting for its second factor: the `mfa_token`, stored
        // hashed, single use, burned after too many wrong codes.
        manager
            .create_table(
                Table::create()
                    .table(MfaChallenges::Table)
                    .col(pk_uuid(MfaChallenges::Id))
                    .col(uuid(MfaChallenges::UserId))
                    .col(string_uniq(MfaChallenges::TokenHash))
                    // `login` or `restore`: what a right code completes.
                    .col(string(MfaChallenges::Purpose))
                    .col(integer(MfaChallenges::FailedAttempts))
                    .col(timestamp_with_time_zone(MfaChallenges::CreatedAt))
                    .col(timestamp_with_time_zone(MfaChallenges::ExpiresAt))
                    .col(timestamp_with_time_zone_null(MfaChallenges::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MfaChallenges::Table, MfaChallenges::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TrustedDevices::Table)
                    .col(pk_uuid(TrustedDevices::Id))
                    .col(uuid(TrustedDevices::UserId))
                    .col(string_uniq(TrustedDevices::TokenHash))
                    .col(string_null(TrustedDevices::Name))
                    .col(string_null(TrustedDevices::Browser))
                    .col(string_null(TrustedDevices::Os))
                    .col(string(TrustedDevices::DeviceType))
                    .col(string_null(TrustedDevices::Ip))
                    .col(timestamp_with_time_zone(TrustedDevices::CreatedAt))
                    .col(timestamp_with_time_zone(TrustedDevices::LastUsedAt))
                    .col(timestamp_with_time_zone(TrustedDevices::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TrustedDevices::Table, TrustedDevices::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_trusted_devices_user_id")
                    .table(TrustedDevices::Table)
                    .col(TrustedDevices::UserId)
                    .to_owned(),
            )
            .await?;

        // The confirmed factors' kinds (a JSON array), kept beside the account so loading the
        // user object stays one query.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(text(Users::MfaMethods).default("[]"))
                    .to_owned(),
            )
            .await?;

        // How the session was authenticated (RFC 8176 `amr`, a JSON array), so a refresh
        // keeps it. Sessions of earlier releases were password-only.
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(text(Sessions::Amr).default(r#"["pwd"]"#))
                    .to_owned(),
            )
            .await?;
        // The trusted device a session signed in on, so the device list can mark the
        // caller's own.
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(uuid_null(Sessions::TrustedDeviceId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::MfaMethods)
                    .to_owned(),
            )
            .await?;
        for column in [Sessions::Amr, Sessions::TrustedDeviceId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in [
            TrustedDevices::Table.into_iden(),
            MfaChallenges::Table.into_iden(),
            RecoveryCodes::Table.into_iden(),
            MfaFactors::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    MfaMethods,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Amr,
    TrustedDeviceId,
}

#[derive(DeriveIden)]
enum MfaFactors {
    Table,
    Id,
    UserId,
    Kind,
    Secret,
    CreatedAt,
    ConfirmedAt,
    LastUsedStep,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum MfaChallenges {
    Table,
    Id,
    UserId,
    TokenHash,
    Purpose,
    FailedAttempts,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum TrustedDevices {
    Table,
    Id,
    UserId,
    TokenHash,
    Name,
    Browser,
    Os,
    DeviceType,
    Ip,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
}
