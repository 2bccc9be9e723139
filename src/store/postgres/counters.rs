//! Counters for lockout, failure and mail limits, stored so that every instance counts every
//! event: one row per (kind, key) with its recent event times in the order recorded, its lock,
//! and whether the last admission was refused. Windows are counted by the rules the memory
//! counters follow ([`events_within`], [`limit_reached`]).
//!
//! An event is one upsert that appends it and keeps the newest `keep`, so racing events on any
//! instance are all counted. An admission makes its row if missing, locks it (`FOR UPDATE`),
//! and decides and records in one transaction, so racing admissions never go beyond a limit.
//!
//! Rows with nothing recent are swept: each row knows when nothing of it counts any more
//! (`stale_after`: its newest event plus the longest window asked about it, or for a lock
//! alone the lock's end), and every [`SWEEP_EVERY`]th event or admission of this process
//! deletes at most [`SWEEP_BATCH`] rows stale at its time and not locked. An event adds one
//! row at most, and sweeps may delete ten per event, so the table holds little more than the
//! keys with something recent.

use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;

use super::PgStore;
use crate::store::memory::{events_within, kept_for, limit_reached};
use crate::store::{Admission, CounterKind, Counters, EventWindow, Limit, StoreError};

/// Every this many events and admissions of this process, a sweep of stale rows.
const SWEEP_EVERY: u32 = 100;

/// Rows one sweep deletes at most.
const SWEEP_BATCH: i64 = 1000;

/// Events and admissions of this process so far (whichever store), for [`SWEEP_EVERY`].
static WRITES: AtomicU32 = AtomicU32::new(0);

/// How many times an admission looks for its row again when a sweep took it meanwhile.
const ATTEMPTS: usize = 3;

/// A kind as stored (never renumbered: rows of other instances use it).
fn code(kind: CounterKind) -> i16 {
    match kind {
        CounterKind::AccountFailures => 1,
        CounterKind::UnknownFailures => 2,
        CounterKind::ClientFailures => 3,
        CounterKind::MailRecipient => 4,
        CounterKind::MailClient => 5,
    }
}

impl PgStore {
    /// Note one event or admission at `now`, sweeping now and then (a failed sweep is logged:
    /// the write it follows stands).
    async fn wrote_counter(&self, now: i64) {
        if !WRITES
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            return;
        }
        if let Err(e) = self.sweep_counters(now, SWEEP_BATCH).await {
            tracing::warn!(error = %e, "stale counters could not be swept");
        }
    }

    /// Delete at most `limit` rows with nothing that counts at `now` and no lock then.
    /// Returns how many. Rows being written are skipped, not waited for.
    async fn sweep_counters(&self, now: i64, limit: i64) -> Result<usize, StoreError> {
        self.run(move |conn| async move {
            let deleted = conn
                .execute(
                    "DELETE FROM counters WHERE (kind, key) IN (
                         SELECT kind, key FROM counters
                         WHERE stale_after <= $1 AND (locked_until IS NULL OR locked_until <= $1)
                         LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&now, &limit],
                )
                .await?;
            Ok(deleted as usize)
        })
        .await
    }
}

#[async_trait]
impl Counters for PgStore {
    async fn add_event(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        window: i64,
        keep: u32,
    ) -> Result<EventWindow, StoreError> {
        let key = key.to_string();
        let keep = i32::try_from(keep.max(1)).unwrap_or(i32::MAX);
        let stale_after = now.saturating_add(window.max(0));
        let times: Vec<i64> = self
            .run(move |conn| async move {
                // The list after appending has cardinality + 1 times; the newest `keep` start
                // at cardinality + 2 - keep (arrays count from 1).
                let row = conn
                    .query_one(
                        "INSERT INTO counters AS c (kind, key, times, stale_after)
                         VALUES ($1, $2, ARRAY[$3::bigint], $5)
                         ON CONFLICT (kind, key) DO UPDATE SET
                             times = (c.times || $3::bigint)
                                 [greatest(cardinality(c.times) + 2 - $4::integer, 1):],
                             stale_after = greatest(c.stale_after, EXCLUDED.stale_after)
                         RETURNING times",
                        &[&code(kind), &key, &now, &keep, &stale_after],
                    )
                    .await?;
                Ok::<_, StoreError>(row.try_get(0)?)
            })
            .await?;
        self.wrote_counter(now).await;
        Ok(events_within(&times, now, window))
    }

    async fn count(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        window: i64,
    ) -> Result<EventWindow, StoreError> {
        let key = key.to_string();
        self.run(move |conn| async move {
            let row = conn
                .query_opt(
                    "SELECT times FROM counters WHERE kind = $1 AND key = $2",
                    &[&code(kind), &key],
                )
                .await?;
            let times: Vec<i64> = match row {
                Some(row) => row.try_get(0)?,
                None => Vec::new(),
            };
            Ok(events_within(&times, now, window))
        })
        .await
    }

    async fn clear(&self, kind: CounterKind, key: &str) -> Result<(), StoreError> {
        let key = key.to_string();
        self.run(move |conn| async move {
            conn.execute(
                "DELETE FROM counters WHERE kind = $1 AND key = $2",
                &[&code(kind), &key],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn admit(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        limits: &[Limit],
    ) -> Result<Admission, StoreError> {
        let key = key.to_string();
        let limits = limits.to_vec();
        let longest = limits.iter().map(|l| l.window).max().unwrap_or(0);
        let stale_after = now.saturating_add(longest.max(0));
        let admission = self
            .write(move |tx| {
                Box::pin(async move {
                    let kind = code(kind);
                    // Made first if missing, so that racing admissions of a new key wait for
                    // each other on its lock too. (A sweep may delete it between the two
                    // statements: then it is made again.)
                    let mut found = None;
                    for _ in 0..ATTEMPTS {
                        tx.execute(
                            "INSERT INTO counters (kind, key, stale_after) VALUES ($1, $2, $3)
                             ON CONFLICT (kind, key) DO NOTHING",
                            &[&kind, &key, &stale_after],
                        )
                        .await?;
                        found = tx
                            .query_opt(
                                "SELECT times, refused FROM counters
                                 WHERE kind = $1 AND key = $2 FOR UPDATE",
                                &[&kind, &key],
                            )
                            .await?;
                        if found.is_some() {
                            break;
                        }
                    }
                    let Some(row) = found else {
                        return Err(StoreError::Unavailable(
                            "a counter was swept while it was admitted".into(),
                        ));
                    };
                    let mut times: Vec<i64> = row.try_get(0)?;
                    let refused: bool = row.try_get(1)?;
                    if limit_reached(&times, now, &limits) {
                        if !refused {
                            tx.execute(
                                "UPDATE counters SET refused = true WHERE kind = $1 AND key = $2",
                                &[&kind, &key],
                            )
                            .await?;
                        }
                        return Ok((Admission::Refused { first: !refused }, Vec::new()));
                    }
                    times.push(now);
                    let keep = kept_for(&limits).max(1) as usize;
                    if times.len() > keep {
                        times.drain(..times.len() - keep);
                    }
                    tx.execute(
                        "UPDATE counters SET times = $3, refused = false,
                             stale_after = greatest(stale_after, $4)
                         WHERE kind = $1 AND key = $2",
                        &[&kind, &key, &times, &stale_after],
                    )
                    .await?;
                    Ok((Admission::Allowed, Vec::new()))
                })
            })
            .await?;
        self.wrote_counter(now).await;
        Ok(admission)
    }

    async fn lock(&self, kind: CounterKind, key: &str, until: i64) -> Result<(), StoreError> {
        let key = key.to_string();
        self.run(move |conn| async move {
            conn.execute(
                "INSERT INTO counters (kind, key, locked_until, stale_after)
                 VALUES ($1, $2, $3, $3)
                 ON CONFLICT (kind, key) DO UPDATE SET locked_until = EXCLUDED.locked_until",
                &[&code(kind), &key, &until],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn locked_until(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let key = key.to_string();
        self.run(move |conn| async move {
            let row = conn
                .query_opt(
                    "SELECT locked_until FROM counters WHERE kind = $1 AND key = $2",
                    &[&code(kind), &key],
                )
                .await?;
            let until: Option<i64> = match row {
                Some(row) => row.try_get(0)?,
                None => None,
            };
            Ok(until.filter(|u| *u > now))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_cluster;

    const KIND: CounterKind = CounterKind::ClientFailures;

    /// Two instances sharing one fresh database.
    fn two_instances(name: &str) -> (PgStore, PgStore) {
        let url = test_cluster::database(name);
        let open = || PgStore::open(&url, 4).expect("opens");
        (open(), open())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_admissions_on_two_instances_never_exceed_a_limit() {
        let (a, b) = two_instances("counters_admit");
        let limits = [Limit {
            max: 5,
            window: 600,
        }];
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    store
                        .admit(CounterKind::MailClient, "c", 100, &limits)
                        .await
                        .expect("admit")
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.expect("task"));
        }
        let allowed = outcomes.iter().filter(|o| **o == Admission::Allowed);
        assert_eq!(allowed.count(), 5, "{outcomes:?}");
        let first = outcomes
            .iter()
            .filter(|o| **o == Admission::Refused { first: true });
        assert_eq!(first.count(), 1, "{outcomes:?}");
        let counted = b.count(CounterKind::MailClient, "c", 100, 600).await;
        assert_eq!(counted.expect("count").count, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_events_on_two_instances_are_each_counted_once() {
        let (a, b) = two_instances("counters_events");
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    let seen = store.add_event(KIND, "k", 100 + i, 600, 100).await;
                    seen.expect("add").count
                })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.expect("task"));
        }
        // Each event saw the ones before it and itself: no two saw the same list.
        seen.sort_unstable();
        assert_eq!(seen, (1..=24).collect::<Vec<u32>>());
        let all = a.count(KIND, "k", 200, 600).await.expect("count");
        assert_eq!(all.count, 24);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stale_rows_are_swept_in_batches_and_recent_or_locked_ones_stay() {
        let url = test_cluster::database("counters_sweep");
        let store = PgStore::open(&url, 4).expect("opens");
        // (Written so that a sweep these writes start now and then finds nothing stale yet.)
        store
            .add_event(KIND, "future", 2000, 60, 10)
            .await
            .expect("add");
        for i in 0..5 {
            let key = format!("old{i}");
            store.add_event(KIND, &key, 100, 60, 10).await.expect("add");
        }
        store
            .add_event(KIND, "recent", 100, 1000, 10)
            .await
            .expect("add");
        store
            .add_event(KIND, "locked", 100, 60, 10)
            .await
            .expect("add");
        store.lock(KIND, "locked", 5000).await.expect("lock");

        for want in [2, 2, 1, 0] {
            assert_eq!(store.sweep_counters(1010, 2).await.expect("sweep"), want);
        }
        let count = |key: &'static str, window: i64| {
            let store = store.clone();
            async move { store.count(KIND, key, 1010, window).await.expect("count") }
        };
        assert_eq!(count("old0", 10_000).await.count, 0, "swept");
        assert_eq!(
            count("recent", 1000).await.count,
            1,
            "still within its window"
        );
        assert_eq!(
            count("future", 60).await.count,
            1,
            "stamped after the sweep's now"
        );
        assert_eq!(count("locked", 10_000).await.count, 1, "locked");
        let lock = store.locked_until(KIND, "locked", 1010).await;
        assert_eq!(lock.expect("read"), Some(5000));
        // Once its lock ends, nothing keeps it.
        assert_eq!(store.sweep_counters(5000, 10).await.expect("sweep"), 3);
    }
}
