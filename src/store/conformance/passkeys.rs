//! Passkeys (a credential registered once, to one user; found by credential id; gone with
//! their user) and the single-use, short-lived state of passkey ceremonies.

use super::{owner_and_user, passkey, race, Store};
use crate::store::records::passkey_id;
use crate::store::WriteError;

async fn ids(store: &Store, user_id: &str) -> Vec<Vec<u8>> {
    store
        .user_passkeys(user_id)
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.credential_id)
        .collect()
}

async fn add(store: &Store, credential_id: &[u8], user_id: &str, created_at: i64) -> bool {
    store
        .add_passkey(passkey(credential_id, user_id, created_at))
        .await
        .expect("add")
}

async fn is_found(store: &Store, credential_id: &[u8]) -> bool {
    store
        .find_passkey(credential_id)
        .await
        .expect("read")
        .is_some()
}

pub(crate) async fn passkeys_are_listed_per_user_and_found_by_credential_id(store: &Store) {
    owner_and_user(store).await;
    assert!(add(store, b"u-2", "u", 20).await);
    assert!(add(store, b"u-1", "u", 10).await);
    assert!(add(store, b"o-1", "o", 15).await);
    // Oldest first, each user only their own.
    assert_eq!(ids(store, "u").await, [b"u-1".to_vec(), b"u-2".to_vec()]);
    assert_eq!(ids(store, "o").await, [b"o-1".to_vec()]);
    assert!(ids(store, "nobody").await.is_empty());

    let (found, its_user) = store
        .find_passkey(b"u-2")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found, passkey(b"u-2", "u", 20));
    assert_eq!(its_user.id, "u");
    assert!(!is_found(store, b"nope").await);

    // A credential is registered once, to one user.
    assert!(!add(store, b"u-1", "u", 30).await);
    assert!(!add(store, b"u-1", "o", 30).await);
    assert_eq!(ids(store, "o").await.len(), 1);
    // Not for a user who is gone.
    assert!(matches!(
        store.add_passkey(passkey(b"x-1", "gone", 30)).await,
        Err(WriteError::NotFound)
    ));
    assert!(!is_found(store, b"x-1").await);
}

pub(crate) async fn one_registration_of_a_credential_wins_a_race(store: &Store) {
    owner_and_user(store).await;
    let outcomes = race(store, 8, |s, i| async move {
        let to = if i % 2 == 0 { "u" } else { "o" };
        s.add_passkey(passkey(b"shared", to, i as i64))
            .await
            .expect("add")
    })
    .await;
    assert_eq!(
        outcomes.iter().filter(|won| **won).count(),
        1,
        "{outcomes:?}"
    );
    let held = ids(store, "u").await.len() + ids(store, "o").await.len();
    assert_eq!(held, 1);
}

pub(crate) async fn a_use_updates_the_credential_and_a_deleted_passkey_stays_deleted(
    store: &Store,
) {
    owner_and_user(store).await;
    add(store, b"u-1", "u", 10).await;
    assert!(store
        .note_passkey_use(b"u-1", r#"{"cred":"counter 2"}"#.into(), 50)
        .await
        .expect("noted"));
    let (after, _) = store
        .find_passkey(b"u-1")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(after.credential, r#"{"cred":"counter 2"}"#);
    assert_eq!(after.last_used_at, Some(50));
    assert_eq!((after.name.as_str(), after.created_at), ("Laptop", 10));

    // Deleting takes the shown id, and only the user's own passkey.
    let id = passkey_id(b"u-1");
    assert!(!store.delete_passkey("o", &id).await.expect("delete"));
    assert!(!store
        .delete_passkey("u", "not-an-id")
        .await
        .expect("delete"));
    assert!(store.delete_passkey("u", &id).await.expect("delete"));
    assert!(!store.delete_passkey("u", &id).await.expect("delete"));
    assert!(!is_found(store, b"u-1").await);
    assert!(ids(store, "u").await.is_empty());
    // A sign-in that finishes after the deletion does not bring it back.
    assert!(!store
        .note_passkey_use(b"u-1", "{}".into(), 60)
        .await
        .expect("noted"));
    assert!(!is_found(store, b"u-1").await);
}

pub(crate) async fn passkeys_go_with_their_user(store: &Store) {
    owner_and_user(store).await;
    add(store, b"u-1", "u", 10).await;
    add(store, b"u-2", "u", 11).await;
    add(store, b"o-1", "o", 12).await;
    store.delete_user("u").await.expect("deleted");
    assert!(!is_found(store, b"u-1").await);
    assert!(!is_found(store, b"u-2").await);
    assert!(ids(store, "u").await.is_empty());
    assert_eq!(ids(store, "o").await.len(), 1);
    // The credential ids are free again (nothing of them is left behind).
    assert!(add(store, b"u-1", "o", 20).await);

    // Removing all of a user's passkeys (a reset of their second factors).
    assert_eq!(store.remove_passkeys("o").await.expect("removed"), 2);
    assert!(ids(store, "o").await.is_empty());
    assert_eq!(store.remove_passkeys("o").await.expect("removed"), 0);
}

async fn take(store: &Store, key: [u8; 32], now: i64) -> Option<Vec<u8>> {
    store.take_challenge(key, now).await.expect("take")
}

async fn put(store: &Store, key: [u8; 32], state: &[u8], expires_at: i64) {
    store
        .put_challenge(key, state.to_vec(), expires_at)
        .await
        .expect("put");
}

pub(crate) async fn a_ceremony_state_is_taken_once_and_never_after_it_expires(store: &Store) {
    let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    put(store, a, b"first", 100).await;
    // Putting again under the same key replaces it.
    put(store, a, b"second", 100).await;
    assert_eq!(take(store, a, 99).await, Some(b"second".to_vec()));
    assert_eq!(take(store, a, 99).await, None);
    assert_eq!(take(store, b, 0).await, None);

    // Expired at its expiry: not handed out, and gone.
    put(store, b, b"late", 100).await;
    assert_eq!(take(store, b, 100).await, None);
    put(store, b, b"late", 100).await;
    assert_eq!(take(store, b, 50).await, Some(b"late".to_vec()));

    // The sweep removes expired states only, at most `limit` at a time.
    put(store, a, b"old", 10).await;
    put(store, b, b"old", 20).await;
    put(store, c, b"fresh", 300).await;
    for want in [1, 1, 0] {
        let swept = store.sweep_expired_challenges(20, 1).await.expect("sweep");
        assert_eq!(swept, want);
    }
    assert_eq!(take(store, a, 0).await, None);
    assert_eq!(take(store, c, 200).await, Some(b"fresh".to_vec()));
}

pub(crate) async fn one_taker_of_a_ceremony_state_wins_a_race(store: &Store) {
    put(store, [4; 32], b"state", 100).await;
    let outcomes = race(store, 8, |s, _| async move {
        s.take_challenge([4; 32], 10).await.expect("take")
    })
    .await;
    let taken: Vec<&Vec<u8>> = outcomes.iter().flatten().collect();
    assert_eq!(taken, [&b"state".to_vec()]);
}
