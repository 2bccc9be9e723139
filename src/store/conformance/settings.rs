//! Settings overrides (set, kept, cleared) and the audit log (listed newest first in pages,
//! swept oldest first past its retention, always keeping the newest entry so ids only grow).

use super::Store;
use crate::store::{AuditRecord, Override, StoredOverrides};

pub(crate) async fn overrides_are_set_kept_and_cleared(store: &Store) {
    assert_eq!(
        store.overrides().await.expect("read"),
        StoredOverrides::default()
    );
    let after = store
        .set_overrides(Override::Set("closed".into()), Override::Set(false))
        .await
        .expect("set");
    let both = StoredOverrides {
        registration: Some("closed".into()),
        native_signin: Some(false),
    };
    assert_eq!(after, both);
    assert_eq!(store.overrides().await.expect("read"), both);
    // Keep leaves a value; Set replaces one; Clear goes back to the file's.
    let after = store
        .set_overrides(Override::Keep, Override::Set(true))
        .await
        .expect("set");
    assert_eq!(after.registration.as_deref(), Some("closed"));
    assert_eq!(after.native_signin, Some(true));
    let after = store
        .set_overrides(Override::Clear, Override::Keep)
        .await
        .expect("set");
    let only_signin = StoredOverrides {
        registration: None,
        native_signin: Some(true),
    };
    assert_eq!(after, only_signin);
    assert_eq!(store.overrides().await.expect("read"), only_signin);
    store
        .set_overrides(Override::Keep, Override::Clear)
        .await
        .expect("set");
    assert_eq!(
        store.overrides().await.expect("read"),
        StoredOverrides::default()
    );
}

fn entry(at: i64, event: &str) -> AuditRecord {
    AuditRecord {
        at,
        event: event.into(),
        actor: None,
        target: None,
        ip: None,
        detail: None,
    }
}

async fn append(store: &Store, entries: &[(i64, &str)]) {
    let entries = entries.iter().map(|(at, e)| entry(*at, e)).collect();
    store.append_audit(entries).await.expect("append");
}

/// Every entry's event, oldest first, after checking that ids grow with them.
async fn events(store: &Store) -> Vec<String> {
    let mut all = store.list_audit(None, 1000).await.expect("list");
    all.reverse();
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "ids grow: {all:?}");
    all.into_iter().map(|(_, e)| e.event).collect()
}

pub(crate) async fn audit_is_listed_newest_first_in_pages(store: &Store) {
    assert!(store.list_audit(None, 10).await.expect("list").is_empty());
    append(store, &[(10, "a"), (20, "b"), (30, "c")]).await;
    append(store, &[(40, "d"), (50, "e")]).await;
    let first = store.list_audit(None, 2).await.expect("list");
    let names: Vec<&str> = first.iter().map(|(_, e)| e.event.as_str()).collect();
    assert_eq!(names, ["e", "d"]);
    assert_eq!(first[0].1, entry(50, "e"), "stored as given");
    let below = first.last().map(|(id, _)| *id);
    let next = store.list_audit(below, 2).await.expect("list");
    let names: Vec<&str> = next.iter().map(|(_, e)| e.event.as_str()).collect();
    assert_eq!(names, ["c", "b"]);
    let below = next.last().map(|(id, _)| *id);
    let last = store.list_audit(below, 2).await.expect("list");
    let names: Vec<&str> = last.iter().map(|(_, e)| e.event.as_str()).collect();
    assert_eq!(names, ["a"]);
    assert!(store
        .list_audit(last.last().map(|(id, _)| *id), 2)
        .await
        .expect("list")
        .is_empty());
}

pub(crate) async fn audit_past_retention_is_swept_oldest_first_in_batches(store: &Store) {
    append(store, &[(10, "a"), (20, "b"), (30, "c")]).await;
    append(store, &[(40, "d"), (50, "e")]).await;
    assert_eq!(store.sweep_audit(35, 2).await.expect("sweep"), 2);
    assert_eq!(events(store).await, ["c", "d", "e"]);
    assert_eq!(store.sweep_audit(35, 2).await.expect("sweep"), 1);
    assert_eq!(
        store.sweep_audit(35, 2).await.expect("sweep"),
        0,
        "d is young enough"
    );
    assert_eq!(events(store).await, ["d", "e"]);
}

pub(crate) async fn audit_sweep_keeps_the_newest_entry_so_ids_keep_increasing(store: &Store) {
    append(store, &[(10, "a"), (20, "b")]).await;
    let newest_before = store.list_audit(None, 1).await.expect("list")[0].0;
    assert_eq!(store.sweep_audit(1000, 100).await.expect("sweep"), 1);
    assert_eq!(store.sweep_audit(1000, 100).await.expect("sweep"), 0);
    append(store, &[(2000, "c")]).await;
    assert_eq!(events(store).await, ["b", "c"]);
    let (id, newest) = store.list_audit(None, 1).await.expect("list").remove(0);
    assert!(id > newest_before, "an id is never given twice");
    assert_eq!(newest.event, "c");
    assert_eq!(store.sweep_audit(3000, 100).await.expect("sweep"), 1);
    assert_eq!(events(store).await, ["c"]);
}

pub(crate) async fn audit_sweep_stops_at_an_entry_young_enough(store: &Store) {
    // A clock stepped back: an older `at` after a younger one waits for it.
    append(store, &[(10, "a"), (90, "b"), (20, "c"), (95, "d")]).await;
    assert_eq!(store.sweep_audit(50, 100).await.expect("sweep"), 1);
    assert_eq!(events(store).await, ["b", "c", "d"]);
}
