//! API tokens: found by key with their user, listed oldest first, at most a cap per user (even
//! under races), revoked with their user's disable, delete or password reset, and never
//! brought back by a late note of their use.

use super::{assert_winners, owner_and_user, race, Store};
use crate::store::{
    AdminChange, ApiTokenRecord, SessionKey, TokenKind, TokenRecord, UserStatus, WriteError,
};

fn token(key: SessionKey, user_id: &str, created_at: i64) -> ApiTokenRecord {
    ApiTokenRecord {
        id: format!("t{}", key[0]),
        user_id: user_id.into(),
        name: "backup job".into(),
        prefix: "agt_abcd".into(),
        groups: None,
        created_at,
        expires_at: None,
        last_used_at: None,
    }
}

async fn add(store: &Store, key: SessionKey, user_id: &str, created_at: i64) {
    store
        .create_api_token(key, token(key, user_id, created_at), 10)
        .await
        .expect("created");
}

async fn listed(store: &Store, user_id: &str) -> Vec<String> {
    store
        .user_api_tokens(user_id)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.id)
        .collect()
}

async fn is_found(store: &Store, key: SessionKey) -> bool {
    store.find_api_token(&key).await.expect("read").is_some()
}

pub(crate) async fn api_tokens_are_found_by_key_and_listed_oldest_first(store: &Store) {
    owner_and_user(store).await;
    add(store, [2; 32], "u", 20).await;
    add(store, [1; 32], "u", 10).await;
    add(store, [3; 32], "o", 15).await;
    assert_eq!(listed(store, "u").await, ["t1", "t2"]);
    assert_eq!(listed(store, "o").await, ["t3"]);
    assert!(listed(store, "nobody").await.is_empty());
    let (found, its_user) = store
        .find_api_token(&[2; 32])
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found, token([2; 32], "u", 20));
    assert_eq!(its_user.id, "u");
    assert!(!is_found(store, [9; 32]).await);
    // Not for a user who is gone.
    assert!(matches!(
        store
            .create_api_token([8; 32], token([8; 32], "gone", 1), 10)
            .await,
        Err(WriteError::NotFound)
    ));
    assert!(!is_found(store, [8; 32]).await);
}

pub(crate) async fn a_user_holds_at_most_the_cap_even_under_races(store: &Store) {
    owner_and_user(store).await;
    let outcomes = race(store, 8, |s, i| async move {
        let key = [i as u8 + 1; 32];
        s.create_api_token(key, token(key, "u", i as i64), 3).await
    })
    .await;
    assert_winners(&outcomes, 3, |e| matches!(e, WriteError::TooMany));
    assert_eq!(listed(store, "u").await.len(), 3);
    // The cap is per user; a deletion makes room.
    add(store, [20; 32], "o", 1).await;
    let first = listed(store, "u").await.remove(0);
    assert!(store.delete_api_token("u", &first).await.expect("delete"));
    store
        .create_api_token([21; 32], token([21; 32], "u", 50), 3)
        .await
        .expect("room again");
}

pub(crate) async fn a_token_is_deleted_only_by_its_user_and_use_never_resurrects_it(store: &Store) {
    owner_and_user(store).await;
    add(store, [1; 32], "u", 10).await;
    add(store, [2; 32], "u", 11).await;
    let noted = store
        .note_api_token_use(vec![([1; 32], 50), ([9; 32], 50)])
        .await
        .expect("noted");
    assert_eq!(noted, 1);
    // An older use recorded late does not move the time back.
    store
        .note_api_token_use(vec![([1; 32], 40)])
        .await
        .expect("noted");
    let (used, _) = store
        .find_api_token(&[1; 32])
        .await
        .expect("read")
        .expect("found");
    assert_eq!(used.last_used_at, Some(50));

    assert!(!store.delete_api_token("o", "t1").await.expect("delete"));
    assert!(!store.delete_api_token("u", "t9").await.expect("delete"));
    assert!(store.delete_api_token("u", "t1").await.expect("delete"));
    assert!(!store.delete_api_token("u", "t1").await.expect("delete"));
    assert_eq!(listed(store, "u").await, ["t2"]);
    let noted = store
        .note_api_token_use(vec![([1; 32], 60)])
        .await
        .expect("noted");
    assert_eq!(noted, 0);
    assert!(!is_found(store, [1; 32]).await);
    assert_eq!(listed(store, "u").await, ["t2"]);
}

pub(crate) async fn tokens_are_revoked_with_disable_delete_and_reset(store: &Store) {
    owner_and_user(store).await;
    // A user changing their own password keeps their tokens; a reset by an administrator
    // does not.
    add(store, [1; 32], "u", 1).await;
    store
        .set_password("u", "mine".into(), 5, Some([7; 32]))
        .await
        .expect("changed");
    assert!(is_found(store, [1; 32]).await);
    store
        .set_password("u", "reset".into(), 6, None)
        .await
        .expect("reset");
    assert!(!is_found(store, [1; 32]).await);
    assert!(listed(store, "u").await.is_empty());

    // A reset by mail.
    add(store, [2; 32], "u", 2).await;
    let mailed = TokenRecord {
        kind: TokenKind::PasswordReset,
        user_id: "u".into(),
        expires_at: 100,
    };
    store.put_token([5; 32], mailed).await.expect("put");
    store
        .reset_password([5; 32], "mailed".into(), 10)
        .await
        .expect("reset")
        .expect("used");
    assert!(!is_found(store, [2; 32]).await);

    // Disabling.
    add(store, [3; 32], "u", 3).await;
    let off = AdminChange {
        status: Some(UserStatus::Disabled),
        ..AdminChange::default()
    };
    store.admin_update("u", off, 11).await.expect("disabled");
    assert!(!is_found(store, [3; 32]).await);
    assert!(listed(store, "u").await.is_empty());

    // Deleting (the owner's stay).
    let on = AdminChange {
        status: Some(UserStatus::Active),
        ..AdminChange::default()
    };
    store.admin_update("u", on, 12).await.expect("enabled");
    add(store, [4; 32], "u", 4).await;
    add(store, [6; 32], "o", 4).await;
    store.delete_user("u").await.expect("deleted");
    assert!(!is_found(store, [4; 32]).await);
    assert!(listed(store, "u").await.is_empty());
    assert_eq!(listed(store, "o").await, ["t6"]);
}
