//! Counters and waiting sign-ins kept in this process's memory: what a single-process backend
//! (redb) uses, where writing every failed login to disk would cost an fsync for nothing.
//! Bounded: every table holds a fixed number of keys at most; when full, keys with nothing
//! recent go first, and beyond that new keys are not tracked (a limit degrades open for them
//! rather than refusing everyone).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Admission, CounterKind, Counters, EventWindow, FlowLimits, FlowRecord, Limit, SignInFlows,
    StoreError,
};

/// Keys a table holds at most.
fn capacity(kind: CounterKind) -> usize {
    match kind {
        CounterKind::AccountFailures => 200_000,
        CounterKind::UnknownFailures => 10_000,
        CounterKind::ClientFailures | CounterKind::MailRecipient | CounterKind::MailClient => {
            100_000
        }
    }
}

#[derive(Default)]
struct Entry {
    /// Recent event times, oldest first.
    times: VecDeque<i64>,
    locked_until: Option<i64>,
    /// The last `admit` refused (the next refusal is not the first).
    refused: bool,
}

/// The events among `times` (in the order they were recorded) within the last `window`
/// seconds at `now`: the rule the stored counters follow too. Events stamped after `now` (a
/// clock stepped back) count as recent.
pub(crate) fn events_within<'a>(
    times: impl IntoIterator<Item = &'a i64>,
    now: i64,
    window: i64,
) -> EventWindow {
    let mut counted = times.into_iter().filter(|t| **t > now - window);
    match counted.next() {
        Some(oldest) => EventWindow {
            count: 1 + counted.count() as u32,
            oldest: *oldest,
        },
        None => EventWindow::default(),
    }
}

/// Whether one of `limits` is reached at `now` (one more event would go beyond it).
pub(crate) fn limit_reached<'a, T>(times: T, now: i64, limits: &[Limit]) -> bool
where
    T: IntoIterator<Item = &'a i64> + Clone,
{
    limits
        .iter()
        .any(|l| events_within(times.clone(), now, l.window).count >= l.max)
}

/// How many recent events an admission under `limits` keeps (enough for each of them).
pub(crate) fn kept_for(limits: &[Limit]) -> u32 {
    limits.iter().map(|l| l.max).max().unwrap_or(1)
}

impl Entry {
    fn window(&self, now: i64, window: i64) -> EventWindow {
        events_within(&self.times, now, window)
    }

    fn push(&mut self, now: i64, keep: u32) {
        self.times.push_back(now);
        while self.times.len() > keep.max(1) as usize {
            self.times.pop_front();
        }
    }
}

#[derive(Default)]
struct Table {
    entries: HashMap<String, Entry>,
    /// The longest window asked about: entries with nothing newer may be dropped.
    longest: i64,
    last_purge: i64,
}

impl Table {
    /// The entry for `key`, making room when full; `None` when the key cannot be tracked.
    fn entry(&mut self, kind: CounterKind, key: &str, now: i64) -> Option<&mut Entry> {
        if !self.entries.contains_key(key) && self.entries.len() >= capacity(kind) {
            if self.last_purge != now {
                self.last_purge = now;
                let horizon = now - self.longest;
                self.entries.retain(|_, e| {
                    e.times.back().is_some_and(|t| *t > horizon)
                        || e.locked_until.is_some_and(|u| u > now)
                });
            }
            if self.entries.len() >= capacity(kind) {
                return None;
            }
        }
        Some(self.entries.entry(key.to_string()).or_default())
    }
}

/// Counters by kind and key.
#[derive(Default)]
pub struct MemoryCounters {
    tables: Mutex<HashMap<CounterKind, Table>>,
}

impl MemoryCounters {
    fn with<T>(&self, kind: CounterKind, f: impl FnOnce(&mut Table) -> T) -> T {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        f(tables.entry(kind).or_default())
    }

    /// See [`super::Counters::add_event`].
    pub fn add_event(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        window: i64,
        keep: u32,
    ) -> EventWindow {
        self.with(kind, |t| {
            t.longest = t.longest.max(window);
            match t.entry(kind, key, now) {
                Some(e) => {
                    e.push(now, keep);
                    e.window(now, window)
                }
                None => EventWindow::default(),
            }
        })
    }

    /// See [`super::Counters::events`].
    pub fn events(&self, kind: CounterKind, key: &str, now: i64, window: i64) -> EventWindow {
        self.with(kind, |t| {
            t.entries
                .get(key)
                .map(|e| e.window(now, window))
                .unwrap_or_default()
        })
    }

    /// See [`super::Counters::clear`].
    pub fn clear(&self, kind: CounterKind, key: &str) {
        self.with(kind, |t| t.entries.remove(key));
    }

    /// See [`super::Counters::admit`].
    pub fn admit(&self, kind: CounterKind, key: &str, now: i64, limits: &[Limit]) -> Admission {
        self.with(kind, |t| {
            let longest = limits.iter().map(|l| l.window).max().unwrap_or(0);
            t.longest = t.longest.max(longest);
            let Some(e) = t.entry(kind, key, now) else {
                return Admission::Allowed;
            };
            if limit_reached(&e.times, now, limits) {
                let first = !e.refused;
                e.refused = true;
                return Admission::Refused { first };
            }
            e.refused = false;
            e.push(now, kept_for(limits));
            Admission::Allowed
        })
    }

    /// See [`super::Counters::lock`].
    pub fn lock(&self, kind: CounterKind, key: &str, until: i64) {
        self.with(kind, |t| {
            if let Some(e) = t.entry(kind, key, until) {
                e.locked_until = Some(until);
            }
        });
    }

    /// See [`super::Counters::locked_until`].
    pub fn locked_until(&self, kind: CounterKind, key: &str, now: i64) -> Option<i64> {
        self.with(kind, |t| {
            t.entries
                .get(key)
                .and_then(|e| e.locked_until)
                .filter(|u| *u > now)
        })
    }

    /// Keys tracked in one table.
    pub fn tracked(&self, kind: CounterKind) -> usize {
        self.with(kind, |t| t.entries.len())
    }
}

/// The counters of one process, as the storage seam offers them.
#[async_trait]
impl Counters for MemoryCounters {
    async fn add_event(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        window: i64,
        keep: u32,
    ) -> Result<EventWindow, StoreError> {
        Ok(MemoryCounters::add_event(
            self, kind, key, now, window, keep,
        ))
    }
    async fn count(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        window: i64,
    ) -> Result<EventWindow, StoreError> {
        Ok(MemoryCounters::events(self, kind, key, now, window))
    }
    async fn clear(&self, kind: CounterKind, key: &str) -> Result<(), StoreError> {
        MemoryCounters::clear(self, kind, key);
        Ok(())
    }
    async fn admit(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        limits: &[Limit],
    ) -> Result<Admission, StoreError> {
        Ok(MemoryCounters::admit(self, kind, key, now, limits))
    }
    async fn lock(&self, kind: CounterKind, key: &str, until: i64) -> Result<(), StoreError> {
        MemoryCounters::lock(self, kind, key, until);
        Ok(())
    }
    async fn locked_until(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(MemoryCounters::locked_until(self, kind, key, now))
    }
}

/// The sign-ins of one process, as the storage seam offers them.
#[async_trait]
impl SignInFlows for MemoryFlows {
    async fn put_flow(
        &self,
        key: [u8; 32],
        flow: FlowRecord,
        limits: FlowLimits,
    ) -> Result<(), StoreError> {
        self.put(key, flow, limits);
        Ok(())
    }
    async fn take_flow(&self, key: [u8; 32]) -> Result<Option<FlowRecord>, StoreError> {
        Ok(self.take(&key))
    }
}

/// Flows without a known client share one queue.
const NO_CLIENT: &str = "";

#[derive(Default)]
struct FlowsInner {
    map: HashMap<[u8; 32], FlowRecord>,
    /// Each client's flows, oldest first.
    clients: HashMap<String, VecDeque<[u8; 32]>>,
}

impl FlowsInner {
    fn remove(&mut self, key: &[u8; 32]) -> Option<FlowRecord> {
        let flow = self.map.remove(key)?;
        let client = flow.client.clone().unwrap_or_default();
        if let Some(queue) = self.clients.get_mut(&client) {
            queue.retain(|k| k != key);
            if queue.is_empty() {
                self.clients.remove(&client);
            }
        }
        Some(flow)
    }

    fn evict_oldest_of(&mut self, client: &str) {
        if let Some(oldest) = self.clients.get(client).and_then(|q| q.front()).copied() {
            self.remove(&oldest);
        }
    }
}

/// Sign-ins waiting for a provider, with per-client queues.
#[derive(Default)]
pub struct MemoryFlows {
    inner: Mutex<FlowsInner>,
}

impl MemoryFlows {
    /// See [`super::SignInFlows::put_flow`]: flooding from many addresses pushes out the
    /// flooders' own flows before a person's single one.
    pub fn put(&self, key: [u8; 32], flow: FlowRecord, limits: FlowLimits) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let client = flow.client.clone().unwrap_or_else(|| NO_CLIENT.to_string());
        if inner.clients.get(&client).map_or(0, VecDeque::len) >= limits.per_client.max(1) {
            inner.evict_oldest_of(&client);
        }
        if inner.map.len() >= limits.capacity.max(1) {
            let now = flow.created_at;
            let expired: Vec<[u8; 32]> = inner
                .map
                .iter()
                .filter(|(_, f)| now - f.created_at >= limits.ttl)
                .map(|(k, _)| *k)
                .collect();
            for k in &expired {
                inner.remove(k);
            }
        }
        if inner.map.len() >= limits.capacity.max(1) {
            // The client with the most flows; among equals, the one busy most recently (a
            // flooder), never by chance the person who started one a while ago.
            let newest = |q: &VecDeque<[u8; 32]>| {
                q.back()
                    .and_then(|k| inner.map.get(k))
                    .map_or(i64::MIN, |f| f.created_at)
            };
            let busiest = inner
                .clients
                .iter()
                .max_by_key(|(_, q)| (q.len(), newest(q)))
                .map(|(c, _)| c.clone());
            if let Some(busiest) = busiest {
                inner.evict_oldest_of(&busiest);
            }
        }
        // (A state is 128 random bits: a repeat cannot happen, but must not leave a stale entry.)
        inner.remove(&key);
        inner.map.insert(key, flow);
        inner.clients.entry(client).or_default().push_back(key);
    }

    /// See [`super::SignInFlows::take_flow`].
    pub fn take(&self, key: &[u8; 32]) -> Option<FlowRecord> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
    }

    /// Flows waiting now, and the clients' queue lengths (for tests).
    pub fn sizes(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (
            inner.map.len(),
            inner.clients.values().map(VecDeque::len).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: CounterKind = CounterKind::ClientFailures;

    #[test]
    fn a_clock_stepped_back_keeps_recent_events_counted() {
        let c = MemoryCounters::default();
        c.add_event(KIND, "k", 1_000, 60, 10);
        assert_eq!(c.events(KIND, "k", 900, 60).count, 1);
    }

    #[test]
    fn full_tables_make_room_from_stale_keys_and_never_grow() {
        let c = MemoryCounters::default();
        let kind = CounterKind::UnknownFailures;
        let cap = capacity(kind);
        for i in 0..cap {
            c.add_event(kind, &format!("k{i}"), 10, 60, 5);
        }
        // Still fresh: a new key is not tracked.
        assert_eq!(c.add_event(kind, "new", 20, 60, 5).count, 0);
        assert_eq!(c.tracked(kind), cap);
        // Once they are stale, they make room.
        assert_eq!(c.add_event(kind, "new", 200, 60, 5).count, 1);
        assert_eq!(c.tracked(kind), 1);
    }

    fn flow(client: Option<&str>, at: i64) -> FlowRecord {
        FlowRecord {
            provider: "p".into(),
            binding: [0; 32],
            nonce: String::new(),
            pkce_verifier: String::new(),
            rd: String::new(),
            invite: None,
            link_user: None,
            remember: false,
            client: client.map(str::to_string),
            created_at: at,
        }
    }

    #[test]
    fn flows_are_taken_once_and_floods_evict_their_own() {
        let f = MemoryFlows::default();
        let limits = FlowLimits {
            capacity: 6,
            per_client: 2,
            ttl: 600,
        };
        f.put([1; 32], flow(Some("person"), 0), limits);
        for i in 0..20u8 {
            let client = format!("flooder{}", i % 5);
            f.put([10 + i; 32], flow(Some(&client), 1), limits);
        }
        assert!(f.take(&[1; 32]).is_some(), "the person's flow stayed");
        assert!(f.take(&[1; 32]).is_none(), "taken once");
        let (flows, queued) = f.sizes();
        assert!(flows <= 6 && flows == queued, "{flows} {queued}");
        // Expired flows make room first.
        let g = MemoryFlows::default();
        g.put([1; 32], flow(Some("a"), 0), limits);
        for i in 0..6u8 {
            g.put([20 + i; 32], flow(Some(&format!("c{i}")), 700), limits);
        }
        assert!(g.take(&[1; 32]).is_none(), "the expired flow went first");
    }
}
