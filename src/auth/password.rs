//! Password hashing with argon2id (OWASP parameters) on a dedicated pool of threads, one per
//! hashing slot, behind a bounded queue. A job keeps its slot until the hash finishes, even
//! when the client that asked for it has gone.
//!
//! The pool's threads run [`HASH_NICE`] steps nicer than the rest of the process: when a login
//! flood and proxied requests want the same core, the proxy's threads get about three times
//! the CPU share of a hashing thread, so signed-in users keep their latency; yet a hash still
//! gets its share beside any other busy process on the machine (a quarter of a core beside one
//! CPU-bound loop), where the lowest priority (`SCHED_IDLE`) would let such a loop starve every
//! sign-in for seconds. Under full CPU load logins wait in the queue (and get 503 with
//! Retry-After once it is full) rather than slowing everyone down.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{Semaphore, TryAcquireError};

use crate::error::ApiError;

/// OWASP's argon2id recommendation: m = 19 MiB, t = 2, p = 1.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

fn argon2() -> Result<Argon2<'static>, String> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash a password to a PHC string (synchronous; use [`Hasher::hash`] on async threads).
pub fn hash_blocking(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The stored hash uses other parameters and should be replaced.
    pub needs_rehash: bool,
}

/// Verify against a PHC string (synchronous). An unparsable hash never matches.
pub fn verify_blocking(password: &str, phc: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verified {
            ok: false,
            needs_rehash: false,
        };
    };
    let ok = match argon2() {
        Ok(a) => a.verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    };
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() == MEMORY_KIB && p.t_cost() == ITERATIONS && p.p_cost() == PARALLELISM
        });
    Verified {
        ok,
        needs_rehash: ok && !current,
    }
}

/// The bounded hashing service shared by every request.
pub struct Hasher {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue_limit: usize,
    /// Verified against when the account does not exist, so that costs the same.
    dummy_hash: String,
    concurrency: usize,
    wait_metric: Option<prometheus_client::metrics::histogram::Histogram>,
    /// Work for the pool's threads; they stop when this is dropped.
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

/// Start `n` hashing threads at a lower priority ([`HASH_NICE`]), fed by one queue.
fn start_pool(n: usize) -> Result<std::sync::mpsc::Sender<Job>, String> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for i in 0..n {
        let rx = Arc::clone(&rx);
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                lower_priority();
                loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(p) => p.into_inner().recv(),
                    };
                    match job {
                        // A panicking job must not take the thread (and its slot) with it.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => return,
                    }
                }
            })
            .map_err(|e| format!("cannot start a hashing thread: {e}"))?;
    }
    Ok(tx)
}

/// How many nice steps the hashing threads are below the process's other threads. CPU shares
/// go by weight, about 1.25x per step: 5 steps is a third of a normal thread's weight.
pub const HASH_NICE: i32 = 5;

/// Make the calling thread [`HASH_NICE`] steps nicer than it is (on Linux a nice value is per
/// thread); on failure it keeps its priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpriority/setpriority on the calling thread (who = 0); lowering needs no
        // privilege. -1 is also a valid priority, so errno tells a failure apart.
        unsafe {
            *libc::__errno_location() = 0;
            let now = libc::getpriority(libc::PRIO_PROCESS, 0);
            if now != -1 || *libc::__errno_location() == 0 {
                libc::setpriority(libc::PRIO_PROCESS, 0, (now + HASH_NICE).min(19));
            }
        }
    }
}

/// Releases a queue place when dropped (also when the waiting request is cancelled).
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    /// Take a place in the queue, unless `limit` jobs already wait.
    fn enter(waiting: &'a AtomicUsize, limit: usize) -> Option<QueuePlace<'a>> {
        let place = QueuePlace(waiting);
        if waiting.fetch_add(1, Ordering::AcqRel) >= limit {
            return None; // dropping `place` gives the place back
        }
        Some(place)
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hasher {
    /// `concurrency` hashes at once, at most `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Result<Hasher, String> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| e.to_string())?;
        let dummy_hash = hash_blocking(&String::from_utf8_lossy(&random))?;
        Ok(Hasher {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            queue_limit: queue,
            dummy_hash,
            concurrency: concurrency.max(1),
            wait_metric: None,
            jobs: std::sync::Mutex::new(start_pool(concurrency.max(1))?),
        })
    }

    /// Record how long each job waits for a slot.
    pub fn with_wait_metric(
        mut self,
        histogram: prometheus_client::metrics::histogram::Histogram,
    ) -> Hasher {
        self.wait_metric = Some(histogram);
        self
    }

    /// Jobs hashing now.
    pub fn running(&self) -> usize {
        self.concurrency
            .saturating_sub(self.slots.available_permits())
    }

    /// Jobs waiting for a slot now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let asked = std::time::Instant::now();
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => {
                return Err(ApiError::Internal("hash pool closed".into()))
            }
            Err(TryAcquireError::NoPermits) => {
                let place = QueuePlace::enter(&self.waiting, self.queue_limit).ok_or(
                    ApiError::ServiceUnavailable {
                        retry_after_secs: 1,
                    },
                )?;
                let permit = Arc::clone(&self.slots)
                    .acquire_owned()
                    .await
                    .map_err(|_| ApiError::Internal("hash pool closed".into()))?;
                drop(place);
                permit
            }
        };
        if let Some(h) = &self.wait_metric {
            h.observe(asked.elapsed().as_secs_f64());
        }
        let (done, result) = tokio::sync::oneshot::channel();
        let work: Job = Box::new(move || {
            let _slot = permit;
            let _ = done.send(job());
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(work)
            .map_err(|_| ApiError::Internal("hash pool stopped".into()))?;
        result
            .await
            .map_err(|_| ApiError::Internal("hash job failed".into()))
    }

    /// Hash a new password.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_blocking(&password))
            .await?
            .map_err(|e| ApiError::Internal(format!("hashing failed: {e}")))
    }

    /// Verify a password; with `None` (unknown user or no password) a dummy hash is checked so
    /// the answer takes the same time, and the result is never ok.
    pub async fn verify(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<Verified, ApiError> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.clone());
        let v = self.run(move || verify_blocking(&password, &phc)).await?;
        Ok(if known {
            v
        } else {
            Verified {
                ok: false,
                needs_rehash: false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let h = hash_blocking("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(
            verify_blocking("correct horse", &h),
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(!verify_blocking("wrong", &h).ok);
        assert!(!verify_blocking("x", "not a hash").ok);
    }

    #[test]
    fn old_parameters_ask_for_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).expect("params"),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let h = weak.hash_password(b"pw", &salt).expect("hash").to_string();
        assert_eq!(
            verify_blocking("pw", &h),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
        assert_eq!(
            verify_blocking("nope", &h),
            Verified {
                ok: false,
                needs_rehash: false
            }
        );
    }

    /// The calling thread's scheduling policy and nice value.
    fn scheduling() -> (i32, i32) {
        // SAFETY: reading the calling thread's own policy and priority.
        unsafe {
            (
                libc::sched_getscheduler(0),
                libc::getpriority(libc::PRIO_PROCESS, 0),
            )
        }
    }

    #[tokio::test]
    async fn hashing_threads_are_nicer_than_the_rest_but_never_idle_only() {
        let hasher = Hasher::new(2, 4).expect("hasher");
        let (policy, nice) = hasher.run(scheduling).await.expect("runs");
        let (normal_policy, normal_nice) = scheduling();
        // A normal time-sharing thread: it gets its share beside other busy processes.
        assert_eq!(policy, libc::SCHED_OTHER);
        assert_eq!(normal_policy, libc::SCHED_OTHER);
        assert_eq!(nice, (normal_nice + HASH_NICE).min(19));
        assert!(nice > normal_nice || normal_nice == 19);
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        let hasher = Hasher::new(1, 4).expect("hasher");
        let v = hasher.verify("anything".into(), None).await.expect("runs");
        assert!(!v.ok);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_answers_service_unavailable() {
        let hasher = Arc::new(Hasher::new(1, 1).expect("hasher"));
        let mut jobs = Vec::new();
        for _ in 0..8 {
            let h = Arc::clone(&hasher);
            jobs.push(tokio::spawn(async move { h.hash("pw".into()).await }));
        }
        let mut busy = 0;
        for j in jobs {
            if let Err(ApiError::ServiceUnavailable { .. }) = j.await.expect("joined") {
                busy += 1;
            }
        }
        assert!(
            busy >= 5,
            "only {busy} of 8 refused with 1 slot and a queue of 1"
        );
        assert_eq!(hasher.queue_depth(), 0);
    }
}
