//! Password hashing off the async threads, with bounded concurrency and a bounded queue.
//!
//! argon2id is built to be slow and memory-hard, so it runs on the blocking pool, at most one
//! hash per core at a time (more would only thrash). Requests beyond that wait, but only as
//! many as the cores can finish in [`TARGET_QUEUE_SECONDS`]; past that the caller is told
//! to come back (`Overloaded`) at once instead of queueing without bound.

use std::time::Instant;

use super::{
    blocking_pool::{BlockingPool, PoolError},
    error::AuthError,
    password_policy::Password,
};
use crate::config::Argon2Params;
use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash},
};

/// How long the queue may take to drain before new work is refused.
const TARGET_QUEUE_SECONDS: f64 = 3.0;
/// Bounds on the queue length whatever the measured hash time says.
const QUEUE_BOUNDS: (usize, usize) = (4, 4096);

pub struct HashingPool {
    params: Params,
    pool: BlockingPool,
    /// Verified for logins of unknown emails, so they cost what a real check costs.
    dummy_hash: String,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    Match,
    /// Right password, but the hash was made with other parameters: store a new one.
    MatchNeedsRehash,
}

impl HashingPool {
    /// Builds the pool and measures one hash to size the queue.
    pub fn new(config: Argon2Params) -> Result<HashingPool, AuthError> {
        let params = Params::new(config.memory_kib, config.iterations, config.lanes, None)
            .map_err(|err| {
                AuthError::internal_from("argon2 rejects its parameters", err.to_string())
            })?;
        let workers = BlockingPool::workers();
        let started = Instant::now();
        let dummy_hash = hash_blocking(&params, "not a real password, never matches")?;
        let seconds_per_hash = started.elapsed().as_secs_f64().max(1e-4);
        let queue = (workers as f64 * TARGET_QUEUE_SECONDS / seconds_per_hash) as usize;
        let queue = queue.clamp(QUEUE_BOUNDS.0, QUEUE_BOUNDS.1);
        Ok(HashingPool {
            params,
            pool: BlockingPool::new(queue),
            dummy_hash,
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, AuthError> {
        let params = self.params.clone();
        let password = password.clone();
        self.run(move || hash_blocking(&params, password.expose()))
            .await?
    }

    pub async fn verify(
        &self,
        password: &Password,
        stored_hash: &str,
    ) -> Result<Verification, AuthError> {
        let params = self.params.clone();
        let password = password.clone();
        let stored_hash = stored_hash.to_string();
        self.run(move || verify_blocking(&params, password.expose(), &stored_hash))
            .await
    }

    /// Spends the time of a real verification and always fails: the answer for an unknown
    /// email must not come back faster than for a wrong password.
    pub async fn verify_dummy(&self, password: &Password) -> Result<(), AuthError> {
        let dummy = self.dummy_hash.clone();
        self.verify(password, &dummy).await.map(|_| ())
    }

    /// Hashes waiting for a worker.
    pub fn waiting(&self) -> usize {
        self.pool.waiting()
    }

    /// Hashes being computed right now.
    pub fn running(&self) -> usize {
        self.pool.running()
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        self.pool.run(work).await.map_err(|err| match err {
            PoolError::Full => AuthError::Overloaded {
                retry_after_seconds: 1,
            },
            PoolError::Failed(err) => AuthError::internal_from("a hashing task failed", err),
        })
    }
}

fn argon2id(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, AuthError> {
    argon2id(params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| AuthError::internal_from("argon2 could not hash", err.to_string()))
}

fn verify_blocking(params: &Params, password: &str, stored_hash: &str) -> Verification {
    let Ok(parsed) = PasswordHash::new(stored_hash) else {
        return Verification::Mismatch;
    };
    // The stored hash carries its own parameters; verification uses those.
    if argon2id(params)
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verification::Mismatch;
    }
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).is_ok_and(|stored| {
            (stored.m_cost(), stored.t_cost(), stored.p_cost())
                == (params.m_cost(), params.t_cost(), params.p_cost())
        });
    if current {
        Verification::Match
    } else {
        Verification::MatchNeedsRehash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(raw: &str) -> Password {
        Password::for_login(raw.into()).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let pool = HashingPool::new(Argon2Params::FOR_TESTS).unwrap();
        let hash = pool.hash(&password("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("correct horse"));
        assert_eq!(
            pool.verify(&password("correct horse"), &hash)
                .await
                .unwrap(),
            Verification::Match
        );
        assert_eq!(
            pool.verify(&password("wrong horse"), &hash).await.unwrap(),
            Verification::Mismatch
        );
        assert_eq!(
            pool.verify(&password("x"), "not a hash").await.unwrap(),
            Verification::Mismatch
        );
    }

    #[tokio::test]
    async fn hashes_with_other_parameters_verify_and_ask_for_a_rehash() {
        let old = HashingPool::new(Argon2Params {
            memory_kib: 32,
            iterations: 1,
            lanes: 1,
        })
        .unwrap();
        let hash = old.hash(&password("correct horse")).await.unwrap();
        let new = HashingPool::new(Argon2Params::FOR_TESTS).unwrap();
        assert_eq!(
            new.verify(&password("correct horse"), &hash).await.unwrap(),
            Verification::MatchNeedsRehash
        );
    }
}
