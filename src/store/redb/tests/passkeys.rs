//! Passkeys (by credential id, per user, gone with their user) and the single-use state of
//! passkey ceremonies.

use super::*;
use crate::store::records::{passkey_id, PasskeyRecord};

fn passkey(credential_id: &[u8], user_id: &str, created_at: i64) -> PasskeyRecord {
    PasskeyRecord {
        id: passkey_id(credential_id),
        user_id: user_id.into(),
        credential_id: credential_id.to_vec(),
        name: "Laptop".into(),
        credential: r#"{"cred":"opaque"}"#.into(),
        created_at,
        last_used_at: None,
    }
}

/// A store with an owner `o` and a user `u`.
fn two_users() -> (tempfile::TempDir, RedbStore) {
    let (dir, store) = temp_store();
    let mut owner = user("o", "o@example.com", None);
    owner.role = Role::Owner;
    store.create_owner_blocking(owner, None).expect("owner");
    create(&store, user("u", "u@example.com", None)).expect("user");
    (dir, store)
}

fn ids(list: &[PasskeyRecord]) -> Vec<&[u8]> {
    list.iter().map(|p| p.credential_id.as_slice()).collect()
}

#[test]
fn passkeys_are_listed_per_user_and_found_by_credential_id() {
    let (_d, store) = two_users();
    assert!(store
        .add_passkey_blocking(passkey(b"u-2", "u", 20))
        .expect("add"));
    assert!(store
        .add_passkey_blocking(passkey(b"u-1", "u", 10))
        .expect("add"));
    assert!(store
        .add_passkey_blocking(passkey(b"o-1", "o", 15))
        .expect("add"));
    // Oldest first, each user only their own.
    let listed = store.user_passkeys_now("u").expect("list");
    assert_eq!(ids(&listed), [b"u-1".as_slice(), b"u-2"]);
    assert_eq!(ids(&store.user_passkeys_now("o").expect("list")), [b"o-1"]);
    assert!(store.user_passkeys_now("nobody").expect("list").is_empty());

    let (found, owner) = store
        .find_passkey_now(b"u-2")
        .expect("read")
        .expect("found");
    assert_eq!(found, passkey(b"u-2", "u", 20));
    assert_eq!(owner.id, "u");
    assert!(store.find_passkey_now(b"nope").expect("read").is_none());

    // A credential is registered once, to one user.
    assert!(!store
        .add_passkey_blocking(passkey(b"u-1", "u", 30))
        .expect("add"));
    assert!(!store
        .add_passkey_blocking(passkey(b"u-1", "o", 30))
        .expect("add"));
    assert_eq!(store.user_passkeys_now("o").expect("list").len(), 1);
    // Not for a user who is gone.
    assert!(matches!(
        store.add_passkey_blocking(passkey(b"x-1", "gone", 30)),
        Err(WriteError::NotFound)
    ));
    assert!(store.find_passkey_now(b"x-1").expect("read").is_none());
}

#[test]
fn a_use_updates_the_credential_and_a_deleted_passkey_stays_deleted() {
    let (_d, store) = two_users();
    store
        .add_passkey_blocking(passkey(b"u-1", "u", 10))
        .expect("add");
    assert!(store
        .note_passkey_use_blocking(b"u-1", r#"{"cred":"counter 2"}"#.into(), 50)
        .expect("noted"));
    let (after, _) = store
        .find_passkey_now(b"u-1")
        .expect("read")
        .expect("found");
    assert_eq!(after.credential, r#"{"cred":"counter 2"}"#);
    assert_eq!(after.last_used_at, Some(50));
    assert_eq!((after.name.as_str(), after.created_at), ("Laptop", 10));

    // Deleting takes the shown id, and only the user's own passkey.
    let id = passkey_id(b"u-1");
    assert!(!store.delete_passkey_blocking("o", &id).expect("delete"));
    assert!(!store
        .delete_passkey_blocking("u", "not-an-id")
        .expect("delete"));
    assert!(store.delete_passkey_blocking("u", &id).expect("delete"));
    assert!(!store.delete_passkey_blocking("u", &id).expect("delete"));
    assert!(store.find_passkey_now(b"u-1").expect("read").is_none());
    assert!(store.user_passkeys_now("u").expect("list").is_empty());
    // A sign-in that finishes after the deletion does not bring it back.
    assert!(!store
        .note_passkey_use_blocking(b"u-1", "{}".into(), 60)
        .expect("noted"));
    assert!(store.find_passkey_now(b"u-1").expect("read").is_none());
}

#[test]
fn passkeys_go_with_their_user() {
    let (_d, store) = two_users();
    store
        .add_passkey_blocking(passkey(b"u-1", "u", 10))
        .expect("add");
    store
        .add_passkey_blocking(passkey(b"u-2", "u", 11))
        .expect("add");
    store
        .add_passkey_blocking(passkey(b"o-1", "o", 12))
        .expect("add");
    store.delete_user_blocking("u").expect("deleted");
    assert!(store.find_passkey_now(b"u-1").expect("read").is_none());
    assert!(store.find_passkey_now(b"u-2").expect("read").is_none());
    assert!(store.user_passkeys_now("u").expect("list").is_empty());
    assert_eq!(store.user_passkeys_now("o").expect("list").len(), 1);
    // The credential ids are free again (nothing of them is left behind).
    assert!(store
        .add_passkey_blocking(passkey(b"u-1", "o", 20))
        .expect("add"));

    // Removing all of a user's passkeys (a reset of their second factors).
    assert_eq!(store.remove_passkeys_blocking("o").expect("removed"), 2);
    assert!(store.user_passkeys_now("o").expect("list").is_empty());
    assert_eq!(store.remove_passkeys_blocking("o").expect("removed"), 0);
}

#[test]
fn passkeys_survive_a_reopen() {
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
    assert_eq!(ids(&store.user_passkeys_now("u").expect("list")), [b"u-1"]);
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

#[test]
fn a_ceremony_state_is_taken_once_and_never_after_it_expires() {
    let (_d, store) = temp_store();
    let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    store
        .put_challenge_blocking(&a, b"first", 100)
        .expect("put");
    // Putting again under the same key replaces it.
    store
        .put_challenge_blocking(&a, b"second", 100)
        .expect("put");
    assert_eq!(
        store.take_challenge_blocking(&a, 99).expect("take"),
        Some(b"second".to_vec())
    );
    assert_eq!(store.take_challenge_blocking(&a, 99).expect("take"), None);
    assert_eq!(store.take_challenge_blocking(&b, 0).expect("take"), None);

    // Expired at its expiry: not handed out, and gone.
    store.put_challenge_blocking(&b, b"late", 100).expect("put");
    assert_eq!(store.take_challenge_blocking(&b, 100).expect("take"), None);
    store.put_challenge_blocking(&b, b"late", 100).expect("put");
    assert_eq!(
        store.take_challenge_blocking(&b, 50).expect("take"),
        Some(b"late".to_vec())
    );

    // The sweep removes expired states only.
    store.put_challenge_blocking(&a, b"old", 10).expect("put");
    store.put_challenge_blocking(&b, b"old", 20).expect("put");
    store
        .put_challenge_blocking(&c, b"fresh", 300)
        .expect("put");
    assert_eq!(
        store
            .sweep_expired_challenges_blocking(20, 1)
            .expect("sweep"),
        1
    );
    assert_eq!(
        store
            .sweep_expired_challenges_blocking(20, 10)
            .expect("sweep"),
        1
    );
    assert_eq!(
        store
            .sweep_expired_challenges_blocking(20, 10)
            .expect("sweep"),
        0
    );
    assert_eq!(store.take_challenge_blocking(&a, 0).expect("take"), None);
    assert_eq!(
        store.take_challenge_blocking(&c, 200).expect("take"),
        Some(b"fresh".to_vec())
    );
}
