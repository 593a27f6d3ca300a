//! What operators ask of a running instance: does its database answer, how busy is hashing.

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;

use super::hashing::HashingPool;
use crate::store;

/// A readiness probe must answer even when the database hangs.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Health {
    db: DatabaseConnection,
    hashing: Arc<HashingPool>,
}

/// Password hashes queued and running, for the metrics gauges.
pub struct HashingLoad {
    pub waiting: usize,
    pub running: usize,
}

impl Health {
    pub fn new(db: DatabaseConnection, hashing: Arc<HashingPool>) -> Health {
        Health { db, hashing }
    }

    pub async fn database_answers(&self) -> bool {
        matches!(
            tokio::time::timeout(READY_TIMEOUT, store::ping(&self.db)).await,
            Ok(Ok(()))
        )
    }

    pub fn hashing_load(&self) -> HashingLoad {
        HashingLoad {
            waiting: self.hashing.waiting(),
            running: self.hashing.running(),
        }
    }
}
