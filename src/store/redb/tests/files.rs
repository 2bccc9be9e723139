//! The file: data across reopening, refusing garbage, migrations at open, and the tables'
//! versioned names.

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

#[test]
fn passkeys_and_ceremonies_survive_a_reopen_in_versioned_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    {
        let store = RedbStore::open(&path).expect("store");
        create(&store, user("u", "u@example.com", None)).expect("user");
        store
            .add_passkey_blocking(passkey(b"u-1", "u", 10))
            .expect("add");
        store
            .put_challenge_blocking(&[1; 32], b"state", 100)
            .expect("put");
    }
    let store = RedbStore::open(&path).expect("reopens");
    let kept = store.user_passkeys_now("u").expect("list");
    assert_eq!(kept, [passkey(b"u-1", "u", 10)]);
    assert_eq!(
        store.take_challenge_blocking(&[1; 32], 50).expect("take"),
        Some(b"state".to_vec())
    );
    // The tables are named with their version.
    use redb::MultimapTableHandle as _;
    let txn = store.db().expect("db").begin_read().expect("read");
    let tables: Vec<String> = txn
        .list_tables()
        .expect("tables")
        .map(|t| t.name().to_string())
        .collect();
    let multimaps: Vec<String> = txn
        .list_multimap_tables()
        .expect("tables")
        .map(|t| t.name().to_string())
        .collect();
    assert!(tables.contains(&"passkeys_v1".into()), "{tables:?}");
    assert!(
        tables.contains(&"webauthn_challenges_v1".into()),
        "{tables:?}"
    );
    assert!(
        multimaps.contains(&"user_passkeys_v1".into()),
        "{multimaps:?}"
    );
}
