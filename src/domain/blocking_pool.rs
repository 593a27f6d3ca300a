//! CPU-bound work off the async threads (password hashing, picture decoding): at most one job
//! per core at a time, since more would only thrash, behind a bounded queue. Past the queue a
//! job is refused at once instead of waiting without bound, so a burst can neither exhaust
//! memory nor stall other requests.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::Semaphore;

pub struct BlockingPool {
    workers: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    capacity: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("the queue is full")]
    Full,
    #[error("the job failed: {0}")]
    Failed(#[source] tokio::task::JoinError),
}

impl BlockingPool {
    /// A pool with one worker per core and room for `queue` jobs waiting.
    pub fn new(queue: usize) -> BlockingPool {
        let workers = Self::workers();
        BlockingPool {
            workers: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(AtomicUsize::new(0)),
            running: Arc::new(AtomicUsize::new(0)),
            capacity: workers + queue,
        }
    }

    /// How many jobs run at once: one per core.
    pub fn workers() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }

    /// Runs `work` on the blocking pool once a worker is free, or refuses at once when the
    /// queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let admission = Admission::try_new(&self.admitted, self.capacity).ok_or(PoolError::Full)?;
        // The semaphore is never closed, so acquiring only waits.
        let worker = Arc::clone(&self.workers).acquire_owned().await.ok();
        let running = Arc::clone(&self.running);
        // The permit and the admission move into the blocking task, so they are released when
        // the work is really done, even if the request that wanted it has gone away.
        tokio::task::spawn_blocking(move || {
            running.fetch_add(1, Ordering::Relaxed);
            let output = work();
            running.fetch_sub(1, Ordering::Relaxed);
            drop((worker, admission));
            output
        })
        .await
        .map_err(PoolError::Failed)
    }

    /// Jobs waiting for a worker.
    pub fn waiting(&self) -> usize {
        self.admitted
            .load(Ordering::Relaxed)
            .saturating_sub(self.running())
    }

    /// Jobs running right now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }
}

/// A place in the bounded queue, given back on drop.
struct Admission(Arc<AtomicUsize>);

impl Admission {
    fn try_new(admitted: &Arc<AtomicUsize>, capacity: usize) -> Option<Admission> {
        admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| Admission(Arc::clone(admitted)))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let pool = BlockingPool::new(2);
        let held: Vec<_> = (0..pool.capacity)
            .map(|_| Admission::try_new(&pool.admitted, pool.capacity).unwrap())
            .collect();
        assert!(matches!(pool.run(|| 1).await, Err(PoolError::Full)));
        assert_eq!(pool.waiting(), pool.capacity);
        drop(held);
        assert_eq!(pool.run(|| 1).await.unwrap(), 1);
        assert_eq!(pool.waiting(), 0);
    }
}
