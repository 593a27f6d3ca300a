//! What every instance does in the background: pick up key rotations made elsewhere (and
//! rotate when automatic rotation is due), and purge rate-limit counters whose window passed.

use std::{sync::Arc, time::Duration};

use super::AppState;
use crate::telemetry::metrics;

/// How often the housekeeping runs.
const INTERVAL: Duration = Duration::from_secs(60);

/// Runs until the returned task is aborted.
pub fn start(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(INTERVAL);
        interval.tick().await;
        loop {
            interval.tick().await;
            run_once(&state).await;
        }
    })
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
