//! The file: data across reopening, refusing garbage, migrations at open, and the sweeps of
//! tokens and audit entries.

use super::*;

#[test]
fn data_survives_reopen_and_garbage_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    {
        let store = RedbStore::open(&path).expect("opens");
        create(&store, user("1", "a@x.io", None)).expect("user");
        store
            .set_overrides_blocking(Override::Set("closed".into()), Override::Keep)
            .expect("set");
    }
    let store = RedbStore::open(&path).expect("reopens");
    assert_eq!(store.user_count_blocking().expect("count"), 1);
    assert_eq!(
        store.overrides_now().expect("read").registration.as_deref(),
        Some("closed")
    );
    drop(store);

    let bad = dir.path().join("bad.redb");
    let garbage = b"this is not a database at all, just some bytes".repeat(200);
    std::fs::write(&bad, &garbage).expect("write");
    let err = RedbStore::open(&bad).err().expect("refused");
    assert!(
        matches!(err, OpenError::Corrupt(..) | OpenError::Other(..)),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&bad).expect("read"),
        garbage,
        "file must be untouched"
    );

    let truncated = dir.path().join("truncated.redb");
    let full = std::fs::read(&path).expect("read");
    std::fs::write(&truncated, &full[..full.len().min(100)]).expect("write");
    let before = std::fs::read(&truncated).expect("read");
    assert!(RedbStore::open(&truncated).is_err());
    assert_eq!(
        std::fs::read(&truncated).expect("read"),
        before,
        "file must be untouched"
    );
}

#[test]
fn invites_in_clear_are_moved_to_their_hashes_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    drop(RedbStore::open(&path).expect("store"));
    // A database written before codes were hashed.
    {
        let db = redb::Database::open(&path).expect("raw open");
        let txn = db.begin_write().expect("txn");
        {
            let mut t = txn.open_table(INVITES_V1).expect("v1");
            let v1 = serde_json::json!({"code": "old-code", "role": "owner", "groups": ["ops"],
                "max_uses": 2, "used": 1, "expires_at": null, "created_by": "u1", "created_at": 5});
            t.insert("old-code", records::encode(&v1).expect("enc").as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let store = RedbStore::open(&path).expect("reopen");
    let invite = store
        .get_invite_now("old-code")
        .expect("read")
        .expect("moved");
    assert_eq!(invite.id, invite_id(&invite_key("old-code")));
    assert_eq!(
        (invite.role, invite.used, invite.max_uses),
        (Role::Owner, 1, 2)
    );
    assert!(store.get_invite_now("wrong").expect("read").is_none());
    drop(store);
    // Nothing in clear remains.
    let db = redb::Database::open(&path).expect("raw open");
    let txn = db.begin_read().expect("txn");
    let names: Vec<String> = txn
        .list_tables()
        .expect("tables")
        .map(|t| t.name().to_string())
        .collect();
    assert!(!names.contains(&"invites_v1".to_string()), "{names:?}");
    let raw = std::fs::read(&path).expect("file");
    assert!(
        !raw.windows(8).any(|w| w == b"old-code"),
        "the code is still in the file"
    );
}

fn token(expires_at: i64) -> TokenRecord {
    TokenRecord {
        kind: TokenKind::PasswordReset,
        user_id: "u1".into(),
        expires_at,
    }
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

fn events(store: &RedbStore) -> Vec<(u64, String)> {
    let mut all: Vec<(u64, String)> = store
        .list_audit_now(None, 100)
        .expect("list")
        .into_iter()
        .map(|(id, e)| (id, e.event))
        .collect();
    all.reverse();
    all
}

#[test]
fn expired_tokens_are_swept_in_batches_and_live_ones_stay() {
    let (_d, store) = temp_store();
    for (k, expires) in [(1u8, 100), (2, 150), (3, 200), (4, 201), (5, 1000)] {
        store
            .put_token_blocking(&[k; 32], &token(expires))
            .expect("put");
    }
    // Expiry is inclusive: a token is unusable from its `expires_at` on.
    assert_eq!(
        store.sweep_expired_tokens_blocking(200, 2).expect("sweep"),
        2
    );
    assert_eq!(
        store.sweep_expired_tokens_blocking(200, 2).expect("sweep"),
        1
    );
    assert_eq!(
        store.sweep_expired_tokens_blocking(200, 2).expect("sweep"),
        0
    );
    for (k, kept) in [(1u8, false), (2, false), (3, false), (4, true), (5, true)] {
        assert_eq!(
            store.get_token_now(&[k; 32]).expect("get").is_some(),
            kept,
            "{k}"
        );
    }
    assert_eq!(
        store
            .sweep_expired_tokens_blocking(i64::MAX, 100)
            .expect("sweep"),
        2
    );
    assert_eq!(
        store
            .sweep_expired_tokens_blocking(i64::MAX, 100)
            .expect("sweep"),
        0
    );
}

#[test]
fn audit_past_retention_is_swept_oldest_first_in_batches() {
    let (_d, store) = temp_store();
    store
        .append_audit_blocking(&[entry(10, "a"), entry(20, "b"), entry(30, "c")])
        .expect("append");
    store
        .append_audit_blocking(&[entry(40, "d"), entry(50, "e")])
        .expect("append");
    assert_eq!(store.sweep_audit_blocking(35, 2).expect("sweep"), 2);
    assert_eq!(
        events(&store),
        [(3, "c".into()), (4, "d".into()), (5, "e".into())]
    );
    assert_eq!(store.sweep_audit_blocking(35, 2).expect("sweep"), 1);
    assert_eq!(
        store.sweep_audit_blocking(35, 2).expect("sweep"),
        0,
        "d is young enough"
    );
    assert_eq!(events(&store), [(4, "d".into()), (5, "e".into())]);
}

#[test]
fn audit_sweep_keeps_the_newest_entry_so_ids_keep_increasing() {
    let (_d, store) = temp_store();
    store
        .append_audit_blocking(&[entry(10, "a"), entry(20, "b")])
        .expect("append");
    assert_eq!(store.sweep_audit_blocking(1000, 100).expect("sweep"), 1);
    assert_eq!(store.sweep_audit_blocking(1000, 100).expect("sweep"), 0);
    store
        .append_audit_blocking(&[entry(2000, "c")])
        .expect("append");
    assert_eq!(events(&store), [(2, "b".into()), (3, "c".into())]);
    assert_eq!(store.sweep_audit_blocking(3000, 100).expect("sweep"), 1);
    assert_eq!(events(&store), [(3, "c".into())]);
}

#[test]
fn audit_sweep_stops_at_an_entry_young_enough() {
    let (_d, store) = temp_store();
    // A clock stepped back: an older `at` after a younger one waits for it.
    store
        .append_audit_blocking(&[
            entry(10, "a"),
            entry(90, "b"),
            entry(20, "c"),
            entry(95, "d"),
        ])
        .expect("append");
    assert_eq!(store.sweep_audit_blocking(50, 100).expect("sweep"), 1);
    assert_eq!(
        events(&store),
        [(2, "b".into()), (3, "c".into()), (4, "d".into())]
    );
}
