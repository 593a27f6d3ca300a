//! On PostgreSQL, every committed change to a user or profile row is announced on
//! [`crate::ACCOUNT_CHANGES_CHANNEL`] with the account's id, whoever made it: an instance, the
//! command line or an operator's SQL. Each instance listens and forgets what it kept in memory
//! of that account. SQLite has no announcements, and no account is kept there.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

use crate::ACCOUNT_CHANGES_CHANNEL;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each table with the column that holds the account's id.
const ANNOUNCED: [(&str, &str); 2] = [("users", "id"), ("profiles", "user_id")];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, id) in ANNOUNCED {
            // NOTIFY is delivered at commit, and only then: a rolled-back change announces
            // nothing, and one notification per account and transaction reaches listeners.
            db.execute_unprepared(&format!(
                "CREATE FUNCTION authgate_announce_{table}_change() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN \
                   PERFORM pg_notify('{ACCOUNT_CHANGES_CHANNEL}', \
                     (CASE WHEN TG_OP = 'DELETE' THEN OLD.{id} ELSE NEW.{id} END)::text); \
                   RETURN NULL; \
                 END $$"
            ))
            .await?;
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {table}_announce_change \
                 AFTER INSERT OR UPDATE OR DELETE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION authgate_announce_{table}_change()"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, _) in ANNOUNCED {
            db.execute_unprepared(&format!(
                "DROP TRIGGER IF EXISTS {table}_announce_change ON {table}"
            ))
            .await?;
            db.execute_unprepared(&format!(
                "DROP FUNCTION IF EXISTS authgate_announce_{table}_change()"
            ))
            .await?;
        }
        Ok(())
    }
}
