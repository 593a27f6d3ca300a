//! CPU-bound work off the async threads (password hashing, picture decoding): at most one job
//! per core at a time, since more would only thrash, behind a bounded queue. Past the queue a
//! job is refused at once instead of waiting without bound, so a burst can neither exhaust
//! memory nor stall other requests.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
    mpsc,
};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of worker threads, one per core, that live as long as the pool. Fixed threads
/// rather than tokio's blocking pool, which grows and retires threads as it likes: glibc gives
/// every thread that allocates an arena of its own and keeps what is freed there, so each
/// argon2id hash's 19 MiB buffer stayed behind in the arena of every thread that had ever
/// hashed (hundreds of MiB under load). With the same few threads doing all the hashing, the
/// memory they keep is a few buffers, reused hash after hash.
pub struct BlockingPool {
    jobs: mpsc::Sender<Job>,
    admitted: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    capacity: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("the queue is full")]
    Full,
    #[error("the job failed: {0}")]
    Failed(#[source] JobFailed),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobFailed(&'static str);

impl BlockingPool {
    /// A pool with one worker per core and room for `queue` jobs waiting. The workers stop
    /// when the pool is dropped.
    pub fn new(queue: usize) -> BlockingPool {
        let workers = Self::workers();
        let (jobs, inbox) = mpsc::channel::<Job>();
        let inbox = Arc::new(Mutex::new(inbox));
        for _ in 0..workers {
            let inbox = Arc::clone(&inbox);
            // A thread that cannot start is a machine out of resources at start-up: panic.
            std::thread::spawn(move || {
                // The lock is held only while waiting for the next job, not while it runs.
                while let Ok(job) = inbox
                    .lock()
                    .map_err(drop)
                    .and_then(|inbox| inbox.recv().map_err(drop))
                {
                    job();
                }
            });
        }
        BlockingPool {
            jobs,
            admitted: Arc::new(AtomicUsize::new(0)),
            running: Arc::new(AtomicUsize::new(0)),
            capacity: workers + queue,
        }
    }

    /// How many jobs run at once: one per core.
    pub fn workers() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }

    /// Runs `work` on a worker once one is free, or refuses at once when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let admission = Admission::try_new(&self.admitted, self.capacity).ok_or(PoolError::Full)?;
        let running = Arc::clone(&self.running);
        let (done, answer) = tokio::sync::oneshot::channel();
        // The admission moves into the job, so its place is given back when the work is really
        // done, even if the request that wanted it has gone away.
        let job: Job = Box::new(move || {
            running.fetch_add(1, Ordering::Relaxed);
            let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            running.fetch_sub(1, Ordering::Relaxed);
            drop(admission);
            // Nobody may be waiting any more: then the answer has no one to go to.
            let _ = done.send(output);
        });
        self.jobs
            .send(job)
            .map_err(|_| PoolError::Failed(JobFailed("the workers have stopped")))?;
        match answer.await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(_)) => Err(PoolError::Failed(JobFailed("the job panicked"))),
            Err(_) => Err(PoolError::Failed(JobFailed("the job was dropped"))),
        }
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

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_workers_stay() {
        let pool = BlockingPool::new(2);
        let failed = pool.run(|| -> u8 { panic!("on purpose") }).await;
        assert!(matches!(failed, Err(PoolError::Failed(_))));
        for n in 0..2 * BlockingPool::workers() {
            assert_eq!(pool.run(move || n).await.unwrap(), n);
        }
        assert_eq!(pool.waiting(), 0);
    }

    #[tokio::test]
    async fn the_same_few_threads_do_all_the_work() {
        let pool = BlockingPool::new(8);
        let mut threads = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let thread = pool
                .run(|| format!("{:?}", std::thread::current().id()))
                .await;
            threads.insert(thread.unwrap());
        }
        assert!(threads.len() <= BlockingPool::workers(), "{threads:?}");
    }
}
