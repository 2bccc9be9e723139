//! Counters (events in a window, admissions under limits, locks) and sign-ins waiting for a
//! provider, reached through the store: kept in memory by a single-process backend, stored by
//! a shared one, the same answers either way.

use super::{race, Store};
use crate::store::{Admission, CounterKind, EventWindow, FlowLimits, FlowRecord, Limit};

const KIND: CounterKind = CounterKind::ClientFailures;

pub(crate) async fn events_are_counted_within_their_window(store: &Store) {
    let c = store.counters();
    // (now) → count after adding, in a window of 60 seconds
    for (now, want) in [(100, 1), (110, 2), (150, 3), (165, 3), (300, 1)] {
        let seen = c.add_event(KIND, "k", now, 60, 10).await.expect("add");
        assert_eq!(seen.count, want, "at {now}");
    }
    let all = c.count(KIND, "k", 300, 1000).await.expect("count");
    assert_eq!(
        all,
        EventWindow {
            count: 5,
            oldest: 100
        }
    );
    // Only `keep` recent events are kept.
    for t in 0..10 {
        c.add_event(KIND, "short", t, 1000, 3).await.expect("add");
    }
    let kept = c.count(KIND, "short", 10, 1000).await.expect("count");
    assert_eq!(
        kept,
        EventWindow {
            count: 3,
            oldest: 7
        }
    );
    // Each kind and key apart.
    let other_kind = c.count(CounterKind::AccountFailures, "k", 300, 1000).await;
    assert_eq!(other_kind.expect("count"), EventWindow::default());
    let other_key = c.count(KIND, "j", 300, 1000).await.expect("count");
    assert_eq!(other_key, EventWindow::default());
    c.clear(KIND, "k").await.expect("clear");
    let cleared = c.count(KIND, "k", 300, 1000).await.expect("count");
    assert_eq!(cleared, EventWindow::default());
    let untouched = c.count(KIND, "short", 10, 1000).await.expect("count");
    assert_eq!(untouched.count, 3);
}

pub(crate) async fn admission_checks_every_limit_and_says_which_refusal_is_first(store: &Store) {
    let c = store.counters();
    let limits = [
        Limit {
            max: 1,
            window: 120,
        },
        Limit {
            max: 3,
            window: 3600,
        },
    ];
    let kind = CounterKind::MailRecipient;
    // (now) → admission, in order
    for (now, want) in [
        (0, Admission::Allowed),
        (60, Admission::Refused { first: true }),
        (90, Admission::Refused { first: false }),
        (121, Admission::Allowed),
        (250, Admission::Allowed),
        (400, Admission::Refused { first: true }),
        (3601, Admission::Allowed),
    ] {
        assert_eq!(
            c.admit(kind, "u", now, &limits).await.expect("admit"),
            want,
            "at {now}"
        );
    }
    // Refusals are not counted; admissions are.
    let counted = c.count(kind, "u", 3601, 3600).await.expect("count");
    assert_eq!(counted.count, 3);
    assert_eq!(
        c.admit(kind, "other", 60, &limits).await.expect("admit"),
        Admission::Allowed
    );
}

pub(crate) async fn racing_admissions_never_exceed_the_limit(store: &Store) {
    let limits = [Limit {
        max: 3,
        window: 600,
    }];
    let outcomes = race(store, 12, |s, _| async move {
        s.counters()
            .admit(CounterKind::MailClient, "c", 100, &limits)
            .await
            .expect("admit")
    })
    .await;
    let allowed = outcomes
        .iter()
        .filter(|a| **a == Admission::Allowed)
        .count();
    assert_eq!(allowed, 3, "{outcomes:?}");
    let firsts = outcomes
        .iter()
        .filter(|a| **a == Admission::Refused { first: true })
        .count();
    assert_eq!(firsts, 1, "{outcomes:?}");
}

pub(crate) async fn locks_end_by_themselves_and_with_clear(store: &Store) {
    let c = store.counters();
    let kind = CounterKind::AccountFailures;
    assert_eq!(c.locked_until(kind, "u", 100).await.expect("read"), None);
    c.lock(kind, "u", 500).await.expect("lock");
    assert_eq!(
        c.locked_until(kind, "u", 100).await.expect("read"),
        Some(500)
    );
    assert_eq!(
        c.locked_until(kind, "u", 499).await.expect("read"),
        Some(500)
    );
    assert_eq!(c.locked_until(kind, "u", 500).await.expect("read"), None);
    assert_eq!(
        c.locked_until(kind, "other", 100).await.expect("read"),
        None
    );
    let apart = c.locked_until(CounterKind::UnknownFailures, "u", 100).await;
    assert_eq!(apart.expect("read"), None);
    // A later lock moves the end; clearing ends it.
    c.lock(kind, "u", 900).await.expect("lock");
    assert_eq!(
        c.locked_until(kind, "u", 600).await.expect("read"),
        Some(900)
    );
    c.clear(kind, "u").await.expect("clear");
    assert_eq!(c.locked_until(kind, "u", 600).await.expect("read"), None);
}

fn flow(client: Option<&str>, at: i64) -> FlowRecord {
    FlowRecord {
        provider: "corp".into(),
        binding: [7; 32],
        nonce: "n".into(),
        pkce_verifier: "v".into(),
        rd: "/".into(),
        invite: None,
        link_user: None,
        remember: true,
        client: client.map(str::to_string),
        created_at: at,
    }
}

async fn put(store: &Store, key: u8, client: &str, at: i64, limits: FlowLimits) {
    store
        .flows()
        .put_flow([key; 32], flow(Some(client), at), limits)
        .await
        .expect("put");
}

async fn waiting(store: &Store, key: u8) -> bool {
    store
        .flows()
        .take_flow([key; 32])
        .await
        .expect("take")
        .is_some()
}

const ROOMY: FlowLimits = FlowLimits {
    capacity: 100,
    per_client: 10,
    ttl: 600,
};

pub(crate) async fn flows_are_taken_once(store: &Store) {
    let f = store.flows();
    f.put_flow([1; 32], flow(None, 5), ROOMY)
        .await
        .expect("put");
    f.put_flow([2; 32], flow(Some("c"), 5), ROOMY)
        .await
        .expect("put");
    assert_eq!(
        f.take_flow([1; 32]).await.expect("take"),
        Some(flow(None, 5))
    );
    assert_eq!(f.take_flow([1; 32]).await.expect("take"), None);
    assert_eq!(f.take_flow([3; 32]).await.expect("take"), None);
    let outcomes = race(store, 8, |s, _| async move {
        s.flows().take_flow([2; 32]).await.expect("take")
    })
    .await;
    assert_eq!(
        outcomes.iter().flatten().count(),
        1,
        "taken once, even by racers"
    );
}

pub(crate) async fn a_client_at_its_limit_loses_its_oldest_flow(store: &Store) {
    let limits = FlowLimits {
        per_client: 2,
        ..ROOMY
    };
    put(store, 9, "person", 0, limits).await;
    for (key, at) in [(1, 1), (2, 2), (3, 3)] {
        put(store, key, "flooder", at, limits).await;
    }
    assert!(!waiting(store, 1).await, "the flooder's oldest went");
    assert!(waiting(store, 2).await);
    assert!(waiting(store, 3).await);
    assert!(waiting(store, 9).await, "another client's stays");
}

pub(crate) async fn a_full_store_of_flows_drops_expired_ones_first(store: &Store) {
    let limits = FlowLimits {
        capacity: 3,
        per_client: 3,
        ttl: 600,
    };
    // Full with an expired flow: it goes first.
    put(store, 1, "a", 0, limits).await;
    put(store, 2, "b", 700, limits).await;
    put(store, 3, "c", 700, limits).await;
    put(store, 4, "d", 700, limits).await;
    assert!(!waiting(store, 1).await, "the expired flow went");
    for key in [2, 3, 4] {
        assert!(waiting(store, key).await, "{key}");
    }

    // Full with nothing expired: the busiest client's oldest goes, not a person's one.
    put(store, 10, "person", 800, limits).await;
    put(store, 11, "flooder", 801, limits).await;
    put(store, 12, "flooder", 802, limits).await;
    put(store, 13, "late", 803, limits).await;
    assert!(!waiting(store, 11).await, "the flooder's oldest went");
    for key in [10, 12, 13] {
        assert!(waiting(store, key).await, "{key}");
    }
}
