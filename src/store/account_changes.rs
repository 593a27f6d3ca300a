//! Which accounts changed, for the accounts kept in memory (`domain::account_cache`).
//!
//! Two sources, because each alone leaves a gap:
//! - In this process, every write to a user or profile row below notes the account in the
//!   piece of work that made it ([`collect`]). A request's changes are known before its
//!   answer leaves, so its caller's next request sees them.
//! - On PostgreSQL, a trigger announces every committed change at commit, whoever made it:
//!   another instance, the command line, an operator's SQL ([`follow`]).

use std::{cell::RefCell, future::Future, time::Duration};

use migration::ACCOUNT_CHANGES_CHANNEL;
use sea_orm::{DatabaseConnection, DbBackend, sqlx::postgres::PgListener};
use uuid::Uuid;

/// How long to wait before listening again after the connection failed.
const RETRY: Duration = Duration::from_secs(1);

tokio::task_local! {
    static CHANGED: RefCell<Vec<Uuid>>;
}

/// Records that `user_id`'s account changed in the work [`collect`] runs (outside it,
/// nothing is recorded: the announcements still carry the change).
pub(super) fn note(user_id: Uuid) {
    let _ = CHANGED.try_with(|changed| changed.borrow_mut().push(user_id));
}

/// Runs `work`, answering with what it answered and the accounts it wrote.
pub async fn collect<F: Future>(work: F) -> (F::Output, Vec<Uuid>) {
    CHANGED
        .scope(RefCell::new(Vec::new()), async {
            let output = work.await;
            (output, CHANGED.with(RefCell::take))
        })
        .await
}

/// What [`follow`] hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// Listening: every change committed from now on will be heard.
    Listening,
    Changed(Uuid),
    /// The connection dropped: changes may have been missed until the next `Listening`.
    Lost,
}

/// Hears the database's announcements of account changes for as long as it is polled,
/// listening again after any failure. Returns at once when the database announces nothing.
pub async fn follow(db: &DatabaseConnection, hear: impl Fn(Announcement)) {
    // Only PostgreSQL announces changes.
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let pool = db.get_postgres_connection_pool();
    loop {
        match PgListener::connect_with(pool).await {
            Ok(mut listener) => match listener.listen(ACCOUNT_CHANGES_CHANNEL).await {
                Ok(()) => {
                    hear(Announcement::Listening);
                    // `Ok(None)`: the connection dropped.
                    while let Ok(Some(notification)) = listener.try_recv().await {
                        match notification.payload().parse() {
                            Ok(user_id) => hear(Announcement::Changed(user_id)),
                            Err(_) => tracing::warn!(
                                payload = notification.payload(),
                                "an account change announcement without an account id"
                            ),
                        }
                    }
                    hear(Announcement::Lost);
                    tracing::warn!("lost the account change announcements; listening again");
                }
                Err(err) => tracing::warn!(error = %err, "cannot listen for account changes"),
            },
            Err(err) => tracing::warn!(error = %err, "cannot listen for account changes"),
        }
        tokio::time::sleep(RETRY).await;
    }
}
