//! Upstream host names, looked up when connecting: an answer is used for [`FRESH`], then looked
//! up again; when a lookup fails, the last answer is used for up to [`STALE`] more (a resolver
//! hiccup does not take the app down), after that the request fails (502).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an answer is used before it is looked up again.
pub const FRESH: Duration = Duration::from_secs(10);
/// How long past [`FRESH`] an answer is still used when looking it up again fails.
pub const STALE: Duration = Duration::from_secs(300);

/// What a lookup returns.
pub type Answer = std::io::Result<Vec<SocketAddr>>;
/// How names are looked up (the system resolver; a table in tests).
pub type Lookup =
    Arc<dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send + Sync>;

/// Why a name gave no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve {host}:{port}: {reason}")]
pub struct ResolveError {
    pub host: String,
    pub port: u16,
    pub reason: String,
}

struct Cached {
    addrs: Arc<[SocketAddr]>,
    at: Instant,
}

/// Looks names up and remembers the answers.
pub struct Resolver {
    lookup: Lookup,
    cache: Mutex<HashMap<(String, u16), Cached>>,
}

impl Default for Resolver {
    fn default() -> Resolver {
        Resolver::system()
    }
}

impl Resolver {
    /// The system resolver (`/etc/hosts`, DNS), run off the request threads.
    pub fn system() -> Resolver {
        Resolver::with_lookup(Arc::new(|host, port| {
            Box::pin(async move {
                tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map(Iterator::collect)
            })
        }))
    }

    /// Looking names up with `lookup`.
    pub fn with_lookup(lookup: Lookup) -> Resolver {
        Resolver {
            lookup,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The addresses of `host:port` now, in the resolver's order (try them in turn).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Arc<[SocketAddr]>, ResolveError> {
        self.resolve_at(host, port, Instant::now()).await
    }

    async fn resolve_at(
        &self,
        host: &str,
        port: u16,
        now: Instant,
    ) -> Result<Arc<[SocketAddr]>, ResolveError> {
        let key = (host.to_string(), port);
        let remembered = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&key)
                .map(|c| (Arc::clone(&c.addrs), now.saturating_duration_since(c.at)))
        };
        if let Some((addrs, age)) = &remembered {
            if *age < FRESH {
                return Ok(Arc::clone(addrs));
            }
        }
        let looked_up = (self.lookup)(host.to_string(), port).await;
        let failure = match looked_up {
            Ok(addrs) if !addrs.is_empty() => {
                let addrs: Arc<[SocketAddr]> = addrs.into();
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                // Names no longer configured age out instead of piling up.
                cache.retain(|_, c| now.saturating_duration_since(c.at) < FRESH + STALE);
                cache.insert(
                    key,
                    Cached {
                        addrs: Arc::clone(&addrs),
                        at: now,
                    },
                );
                return Ok(addrs);
            }
            Ok(_) => "no address".to_string(),
            Err(e) => e.to_string(),
        };
        match remembered {
            Some((addrs, age)) if age < FRESH + STALE => {
                tracing::warn!(
                    upstream = %format!("{host}:{port}"),
                    error = %failure,
                    "upstream lookup failed; using the last answer"
                );
                Ok(addrs)
            }
            _ => Err(ResolveError {
                host: host.to_string(),
                port,
                reason: failure,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A resolver answering from `answers` in turn (the last one repeats), counting lookups.
    fn scripted(answers: Vec<Result<Vec<&str>, &str>>) -> (Resolver, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let answers: Vec<Answer> = answers
            .into_iter()
            .map(|a| match a {
                Ok(list) => Ok(list.iter().filter_map(|s| s.parse().ok()).collect()),
                Err(e) => Err(std::io::Error::other(e)),
            })
            .collect();
        let answers = Arc::new(Mutex::new(answers));
        let counter = Arc::clone(&calls);
        let lookup: Lookup = Arc::new(move |_, _| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let list = answers.lock().unwrap_or_else(|p| p.into_inner());
            let answer = match &list[n.min(list.len() - 1)] {
                Ok(a) => Ok(a.clone()),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            Box::pin(async move { answer })
        });
        (Resolver::with_lookup(lookup), calls)
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map(|rt| rt.block_on(f))
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    }

    fn addrs(r: &Result<Arc<[SocketAddr]>, ResolveError>) -> Vec<String> {
        match r {
            Ok(a) => a.iter().map(ToString::to_string).collect(),
            Err(_) => vec!["error".into()],
        }
    }

    #[test]
    fn answers_are_reused_while_fresh_then_looked_up_again() {
        let (r, calls) = scripted(vec![Ok(vec!["10.0.0.1:80"]), Ok(vec!["10.0.0.2:80"])]);
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        // (seconds after the first lookup) → addresses, lookups so far
        let cases = [
            (0, "10.0.0.1:80", 1),
            (FRESH.as_secs() - 1, "10.0.0.1:80", 1),
            (FRESH.as_secs(), "10.0.0.2:80", 2),
            (FRESH.as_secs() + 1, "10.0.0.2:80", 2),
        ];
        for (secs, want, lookups) in cases {
            let got = run(r.resolve_at("app", 80, at(secs)));
            assert_eq!(addrs(&got), vec![want], "at {secs}s");
            assert_eq!(calls.load(Ordering::SeqCst), lookups, "at {secs}s");
        }
    }

    #[test]
    fn a_failed_lookup_uses_the_last_answer_for_a_while_then_fails() {
        let (r, _) = scripted(vec![
            Ok(vec!["10.0.0.1:80", "10.0.0.3:80"]),
            Err("timed out"),
        ]);
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert_eq!(
            addrs(&run(r.resolve_at("app", 80, at(0)))),
            ["10.0.0.1:80", "10.0.0.3:80"]
        );
        let stale = FRESH.as_secs() + STALE.as_secs() - 1;
        assert_eq!(
            addrs(&run(r.resolve_at("app", 80, at(stale)))),
            ["10.0.0.1:80", "10.0.0.3:80"],
            "within the grace period"
        );
        let err = run(r.resolve_at("app", 80, at(stale + 1))).expect_err("too old");
        assert_eq!((err.host.as_str(), err.port), ("app", 80));
        assert!(err.reason.contains("timed out"), "{err}");
    }

    #[test]
    fn a_name_never_resolved_fails_and_an_empty_answer_is_a_failure() {
        let (r, _) = scripted(vec![Err("no such host")]);
        assert!(run(r.resolve("nowhere", 80)).is_err());
        let (r, _) = scripted(vec![Ok(vec![])]);
        let err = run(r.resolve("empty", 80)).expect_err("no address");
        assert_eq!(err.reason, "no address");
    }

    #[test]
    fn names_and_ports_are_remembered_apart() {
        let (r, calls) = scripted(vec![Ok(vec!["10.0.0.1:80"])]);
        run(r.resolve("a", 80)).expect("a:80");
        run(r.resolve("a", 81)).expect("a:81");
        run(r.resolve("b", 80)).expect("b:80");
        run(r.resolve("a", 80)).expect("a:80 again");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_system_resolver_finds_localhost() {
        let got = run(Resolver::system().resolve("localhost", 8080)).expect("localhost");
        assert!(
            got.iter().all(|a| a.ip().is_loopback() && a.port() == 8080),
            "{got:?}"
        );
    }
}
