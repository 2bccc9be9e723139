//! Prometheus metrics, rendered as text for `/metrics` on the `[metrics] listen` address.
//!
//! What every request updates (requests, access decisions, upstream latency) is counted in
//! per-thread shards: each thread locks only its own shard, so no lock or counter's cache line
//! is shared between threads on the request path, and a known label set costs no allocation
//! or reference count. A scrape folds the shards into the exported metrics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Labels of `authgate_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `host` + `path` of the matched route, `auth` for the gateway's own endpoints, `none`
    /// when nothing matched.
    pub route: Arc<String>,
    pub policy: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    source: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MailLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

/// Store operations timed by `authgate_store_seconds`.
#[derive(Debug, Clone, Copy)]
pub enum StoreOp {
    /// The session check on the request path (read).
    SessionCheck,
    /// Any operation run on the blocking pool (writes, admin reads).
    Pooled,
}

impl StoreOp {
    fn label(self) -> &'static str {
        match self {
            StoreOp::SessionCheck => "session_check",
            StoreOp::Pooled => "pooled",
        }
    }
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    logins: Family<OutcomeLabels, Counter>,
    provider_logins: Family<ProviderLabels, Counter>,
    lockouts: Counter,
    mails: Family<MailLabels, Counter>,
    /// Time a password job waited for a hashing slot (zero when one was free).
    pub hash_wait: Histogram,
    hash_queue: Gauge,
    hash_running: Gauge,
    sessions: Gauge,
    store: Family<OpLabels, Histogram>,
    store_up: Gauge,
    store_queries: Counter,
    /// The request path's counts, folded into `requests` and `decisions` on a scrape and
    /// read directly for `upstream_seconds`.
    hot: Arc<Shards>,
    #[cfg(feature = "count-allocations")]
    allocations: Counter,
}

/// How many shards the request path's counts are spread over: threads take them in turn,
/// so up to this many threads never share one.
const SHARDS: usize = 16;

thread_local! {
    /// This thread's shard (assigned on first use, in turn).
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
    };
}

/// Per-thread tallies of the request path's metrics.
#[derive(Debug)]
struct Shards {
    shards: Box<[Shard]>,
    /// Upper bounds of the upstream latency buckets, in seconds (the last is +Inf).
    bounds: Box<[f64]>,
}

/// One thread's tallies, on a cache line pair of its own.
#[derive(Debug)]
#[repr(align(128))]
struct Shard(Mutex<Tally>);

#[derive(Debug, Default)]
struct Tally {
    /// By route label (its address: the label is kept alive here), policy and status.
    requests: HashMap<(usize, &'static str, u16), (Arc<String>, u64)>,
    decisions: HashMap<(&'static str, &'static str), u64>,
    /// Per bucket (not cumulative), then the count and sum of all observations.
    upstream_buckets: Vec<u64>,
    upstream_count: u64,
    upstream_sum: f64,
}

impl Shards {
    fn new() -> Shards {
        let mut bounds: Vec<f64> = latency_buckets().collect();
        bounds.push(f64::MAX);
        let shard = || {
            Shard(Mutex::new(Tally {
                upstream_buckets: vec![0; bounds.len()],
                ..Tally::default()
            }))
        };
        Shards {
            shards: (0..SHARDS).map(|_| shard()).collect(),
            bounds: bounds.into(),
        }
    }

    /// Update this thread's tally.
    fn with<R>(&self, f: impl FnOnce(&mut Tally) -> R) -> R {
        let i = SHARD.with(|i| *i);
        let shard = &self.shards[i % self.shards.len()];
        let mut tally = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut tally)
    }

    fn each(&self, mut f: impl FnMut(&mut Tally)) {
        for shard in self.shards.iter() {
            f(&mut shard.0.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }
}

/// `authgate_upstream_seconds`, summed over the shards when scraped.
#[derive(Debug)]
struct UpstreamHistogram(Arc<Shards>);

impl EncodeMetric for UpstreamHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let bounds = &self.0.bounds;
        let mut buckets: Vec<(f64, u64)> = bounds.iter().map(|b| (*b, 0)).collect();
        let (mut count, mut sum) = (0, 0.0);
        self.0.each(|t| {
            for (total, n) in buckets.iter_mut().zip(&t.upstream_buckets) {
                total.1 += n;
            }
            count += t.upstream_count;
            sum += t.upstream_sum;
        });
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Sub-millisecond to tens of seconds.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 2.5, 14)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("authgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route, policy and status",
            requests.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "auth_decisions",
            "Access decisions, by source (proxy or forward-auth) and decision",
            decisions.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "logins",
            "Password login attempts, by outcome",
            logins.clone(),
        );
        let provider_logins = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "provider_logins",
            "Sign-ins through an outside provider, by provider and outcome",
            provider_logins.clone(),
        );
        let lockouts = Counter::default();
        registry.register(
            "lockouts",
            "Accounts locked after repeated failures",
            lockouts.clone(),
        );
        let mails = Family::<MailLabels, Counter>::default();
        registry.register(
            "mails",
            "Mails with a link (reset, verification), by kind and outcome (sent or why throttled)",
            mails.clone(),
        );
        let hash_wait = Histogram::new(latency_buckets());
        registry.register(
            "hash_wait_seconds",
            "Time password jobs waited for a hashing slot",
            hash_wait.clone(),
        );
        let hash_queue = Gauge::default();
        registry.register(
            "hash_queue_depth",
            "Password jobs waiting for a hashing slot",
            hash_queue.clone(),
        );
        let hash_running = Gauge::default();
        registry.register(
            "hash_running",
            "Password jobs hashing now",
            hash_running.clone(),
        );
        let sessions = Gauge::default();
        registry.register("sessions", "Sessions stored", sessions.clone());
        let store = Family::<OpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "store_seconds",
            "Database operation latency, by operation",
            store.clone(),
        );
        let hot = Arc::new(Shards::new());
        registry.register(
            "upstream_seconds",
            "Time from choosing an upstream to its response header",
            UpstreamHistogram(Arc::clone(&hot)),
        );
        let store_up = Gauge::default();
        registry.register(
            "store_up",
            "1 when the database accepts reads, else 0",
            store_up.clone(),
        );
        let store_queries = Counter::default();
        registry.register(
            "store_queries",
            "Operations sent to a database server (PostgreSQL; each one transaction or query), \
             zero for the embedded database",
            store_queries.clone(),
        );
        #[cfg(feature = "count-allocations")]
        let allocations = Counter::default();
        #[cfg(feature = "count-allocations")]
        registry.register(
            "allocations",
            "Memory allocations made by the process (a measuring build only)",
            allocations.clone(),
        );
        Metrics {
            #[cfg(feature = "count-allocations")]
            allocations,
            registry,
            requests,
            decisions,
            logins,
            provider_logins,
            lockouts,
            mails,
            hash_wait,
            hash_queue,
            hash_running,
            sessions,
            store,
            store_up,
            store_queries,
            hot,
        }
    }

    /// Count a request answered: `route` is the matched route's label (or `auth` / `none`).
    pub fn request(&self, route: &Arc<String>, policy: &'static str, status: u16) {
        self.hot.with(|t| {
            let key = (Arc::as_ptr(route) as usize, policy, status);
            t.requests
                .entry(key)
                .or_insert_with(|| (Arc::clone(route), 0))
                .1 += 1;
        });
    }

    pub fn decision(&self, source: &'static str, decision: &'static str) {
        self.hot
            .with(|t| *t.decisions.entry((source, decision)).or_insert(0) += 1);
    }

    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn provider_login(&self, provider: &str, outcome: &'static str) {
        self.provider_logins
            .get_or_create(&ProviderLabels {
                provider: provider.to_string(),
                outcome,
            })
            .inc();
    }

    pub fn lockout(&self) {
        self.lockouts.inc();
    }

    /// Count a mail of `kind` (`reset`, `verification`): `sent`, `throttled_address` or
    /// `throttled_ip`.
    pub fn mail(&self, kind: &'static str, outcome: &'static str) {
        self.mails
            .get_or_create(&MailLabels { kind, outcome })
            .inc();
    }

    pub fn store_time(&self, op: StoreOp, took: Duration) {
        self.store
            .get_or_create(&OpLabels { op: op.label() })
            .observe(took.as_secs_f64());
    }

    pub fn upstream_time(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = self.hot.bounds.partition_point(|b| *b < secs);
        self.hot.with(|t| {
            if let Some(n) = t.upstream_buckets.get_mut(bucket) {
                *n += 1;
            }
            t.upstream_count += 1;
            t.upstream_sum += secs;
        });
    }

    /// Move the shards' request and decision counts into the exported counters.
    fn fold(&self) {
        self.hot.each(|t| {
            for ((_, policy, status), (route, n)) in t.requests.drain() {
                self.requests
                    .get_or_create(&RequestLabels {
                        route,
                        policy,
                        status,
                    })
                    .inc_by(n);
            }
            for ((source, decision), n) in t.decisions.drain() {
                self.decisions
                    .get_or_create(&DecisionLabels { source, decision })
                    .inc_by(n);
            }
        });
    }

    /// The Prometheus text exposition, with the gauges read now.
    pub fn render(
        &self,
        sessions: Option<u64>,
        hash_queue: usize,
        hash_running: usize,
        store_queries: u64,
    ) -> Result<String, String> {
        self.fold();
        #[cfg(feature = "count-allocations")]
        {
            let total = crate::alloc_count::allocations();
            let counted = self.allocations.get();
            self.allocations.inc_by(total.saturating_sub(counted));
        }
        // A total kept by the store: the counter follows it (it never goes back).
        let counted = self.store_queries.get();
        self.store_queries
            .inc_by(store_queries.saturating_sub(counted));
        match sessions {
            Some(n) => {
                self.sessions.set(i64::try_from(n).unwrap_or(i64::MAX));
                self.store_up.set(1);
            }
            None => {
                self.store_up.set(0);
            }
        }
        self.hash_queue
            .set(i64::try_from(hash_queue).unwrap_or(i64::MAX));
        self.hash_running
            .set(i64::try_from(hash_running).unwrap_or(i64::MAX));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| format!("metrics could not be encoded: {e}"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        let route = Arc::new("*/app".to_string());
        for _ in 0..3 {
            m.request(&route, "authenticated", 200);
        }
        m.decision("forward", "allow");
        m.login("success");
        m.login("invalid_credentials");
        m.lockout();
        m.mail("reset", "sent");
        m.mail("reset", "throttled_ip");
        m.mail("reset", "throttled_ip");
        m.store_time(StoreOp::SessionCheck, Duration::from_micros(3));
        m.upstream_time(Duration::from_millis(2));
        let text = m.render(Some(42), 1, 2, 7).expect("renders");
        for line in [
            "authgate_requests_total{route=\"*/app\",policy=\"authenticated\",status=\"200\"} 3",
            "authgate_auth_decisions_total{source=\"forward\",decision=\"allow\"} 1",
            "authgate_logins_total{outcome=\"success\"} 1",
            "authgate_lockouts_total 1",
            "authgate_mails_total{kind=\"reset\",outcome=\"sent\"} 1",
            "authgate_mails_total{kind=\"reset\",outcome=\"throttled_ip\"} 2",
            "authgate_sessions 42",
            "authgate_hash_queue_depth 1",
            "authgate_hash_running 2",
            "authgate_store_queries_total 7",
            "authgate_store_seconds_count{op=\"session_check\"} 1",
            "authgate_upstream_seconds_count 1",
            "authgate_store_up 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn counts_from_several_threads_add_up_and_stay_across_scrapes() {
        let m = Metrics::new();
        let route = Arc::new("*/app".to_string());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..250 {
                        m.request(&route, "authenticated", 200);
                        m.decision("proxy", "allow");
                        m.upstream_time(Duration::from_millis(1));
                    }
                });
            }
        });
        let text = m.render(None, 0, 0, 0).expect("renders");
        for line in [
            "authgate_requests_total{route=\"*/app\",policy=\"authenticated\",status=\"200\"} 1000",
            "authgate_auth_decisions_total{source=\"proxy\",decision=\"allow\"} 1000",
            "authgate_upstream_seconds_count 1000",
            // 1 ms: above the 0.78 ms bucket, within the 1.95 ms one.
            "authgate_upstream_seconds_bucket{le=\"0.00078125\"} 0",
            "authgate_upstream_seconds_bucket{le=\"0.001953125\"} 1000",
            "authgate_upstream_seconds_bucket{le=\"+Inf\"} 1000",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // A scrape folds the shards into the totals, which keep counting.
        m.request(&route, "authenticated", 200);
        m.request(&Arc::new("*/app".to_string()), "authenticated", 200);
        let text = m.render(None, 0, 0, 0).expect("renders");
        let line =
            "authgate_requests_total{route=\"*/app\",policy=\"authenticated\",status=\"200\"} 1002";
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
