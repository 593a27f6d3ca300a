//! What every instance does in the background: deliver the mail in the outbox, pick up key
//! rotations made elsewhere within seconds (and rotate when automatic rotation is due), purge
//! rate-limit counters whose window passed, purge accounts whose deletion grace ended (each
//! once, however many instances run), and hear the account changes the database announces.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;

use super::AppState;
use crate::telemetry::metrics;

/// How often the keys, counters, metrics and due account deletions are looked after.
const INTERVAL: Duration = Duration::from_secs(60);
/// How often the outbox is looked at when nothing was stored here: for retries, and for mail
/// stored by another instance whose worker is gone.
const OUTBOX_POLL: Duration = Duration::from_secs(2);
/// A mail is announced as it is stored, just before its transaction commits: the worker gives
/// the commit this long.
const COMMIT_SETTLE: Duration = Duration::from_millis(20);
/// How soon a key rotated elsewhere (`authgate keys rotate`, another instance) signs here.
const KEY_CHECK: Duration = Duration::from_secs(2);

/// The background tasks; they stop when this is dropped.
pub struct Background(Vec<JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

pub fn start(state: Arc<AppState>) -> Background {
    let outbox = Arc::clone(&state.outbox);
    let mail = tokio::spawn(async move {
        loop {
            if let Err(err) = outbox.deliver_due().await {
                tracing::warn!(error = %err, "could not deliver the outbox");
            }
            if outbox.wait_for_mail(OUTBOX_POLL).await {
                tokio::time::sleep(COMMIT_SETTLE).await;
            }
        }
    });
    let keys = Arc::clone(&state.keys);
    let key_watch = tokio::spawn(async move {
        let mut interval = tokio::time::interval(KEY_CHECK);
        loop {
            interval.tick().await;
            match keys.reload_if_changed().await {
                Ok(true) => tracing::info!("picked up a signing key change"),
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "could not check the signing keys"),
            }
        }
    });
    let purge = Arc::clone(&state.purge);
    let purging = tokio::spawn(async move {
        // The first tick comes at once: accounts that fell due while no instance ran go soon
        // after start.
        let mut interval = tokio::time::interval(INTERVAL);
        loop {
            interval.tick().await;
            match purge.purge_due().await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged accounts whose deletion grace ended"),
                Err(err) => tracing::warn!(error = %err, "could not purge due accounts"),
            }
        }
    });
    let accounts = Arc::clone(&state.accounts);
    let db = state.db.clone();
    let account_changes = tokio::spawn(async move { accounts.follow_changes(&db).await });
    let upkeep = tokio::spawn(async move {
        let mut interval = tokio::time::interval(INTERVAL);
        interval.tick().await;
        loop {
            interval.tick().await;
            run_once(&state).await;
        }
    });
    Background(vec![mail, key_watch, purging, upkeep, account_changes])
}

async fn run_once(state: &AppState) {
    // Rotation due? One instance rotates; the reload inside picks up any rotation.
    let outcome = match state.config.key_rotation {
        Some(max_age) => state
            .keys
            .rotate_if_older_than(max_age)
            .await
            .map(|rotated| {
                if let Some(kid) = rotated {
                    tracing::info!(kid, "rotated the signing key (AUTHGATE_KEY_ROTATION)");
                }
            }),
        None => state.keys.reload().await,
    };
    if let Err(err) = outcome {
        tracing::warn!(error = %err, "could not refresh signing keys");
    }
    metrics::run_upkeep();
    if let Err(err) = state.limiter.purge_expired(&state.db).await {
        tracing::warn!(error = %err, "could not purge rate-limit counters");
    }
}
