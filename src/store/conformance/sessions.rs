//! Sessions: listed per user, swept when expired (idle or absolute), capped per user, replaced
//! by a sign-in, revoked with a password change, never brought back by a late touch.

use super::{create, has_session, open, owner_and_user, session, user, Recorder, Store};
use crate::store::{NewSession, SignIn, StoreEvent};

async fn keys_of(store: &Store, user_id: &str) -> Vec<u8> {
    let mut keys: Vec<u8> = store
        .user_sessions(user_id)
        .await
        .expect("list")
        .iter()
        .map(|(k, _)| k[0])
        .collect();
    keys.sort();
    keys
}

pub(crate) async fn sessions_are_listed_per_user_and_swept_when_expired(store: &Store) {
    create(store, user("1", "a@x.io", None))
        .await
        .expect("user");
    create(store, user("2", "b@x.io", None))
        .await
        .expect("user");
    open(store, [1; 32], session("1", 100, 1000), 50).await;
    open(store, [2; 32], session("1", 100, 1000), 50).await;
    open(store, [3; 32], session("1", 100, 120), 50).await;
    open(store, [4; 32], session("2", 100, 5000), 5000).await;
    assert_eq!(keys_of(store, "1").await, [1, 2, 3]);
    assert_eq!(keys_of(store, "2").await, [4]);
    assert_eq!(store.session_count().await.expect("count"), 4);
    let (found, its_user) = store
        .get_session(&[1; 32])
        .await
        .expect("read")
        .expect("found");
    assert_eq!((found.user_id.as_str(), its_user.id.as_str()), ("1", "1"));
    assert_eq!(
        store
            .get_user("1")
            .await
            .expect("u")
            .and_then(|u| u.last_login_at),
        Some(100),
        "a sign-in notes the login time"
    );

    // 1 idles out at 150 unless touched; the touch moves it to 190. 2 idles out, 3 expires.
    let touched = store
        .touch_sessions(vec![([1; 32], 140)], 50)
        .await
        .expect("touch");
    assert_eq!(touched, 1);
    assert_eq!(
        store.sweep_expired_sessions(160, 1).await.expect("sweep"),
        1,
        "at most the limit"
    );
    assert_eq!(
        store.sweep_expired_sessions(160, 100).await.expect("sweep"),
        1
    );
    assert_eq!(
        store.sweep_expired_sessions(160, 100).await.expect("sweep"),
        0
    );
    assert!(has_session(store, [1; 32]).await);
    assert!(!has_session(store, [2; 32]).await);
    assert!(!has_session(store, [3; 32]).await);
    assert_eq!(
        store.sweep_expired_sessions(191, 100).await.expect("sweep"),
        1
    );
    assert_eq!(keys_of(store, "1").await, Vec::<u8>::new());
    assert_eq!(store.session_count().await.expect("count"), 1);
}

pub(crate) async fn a_sign_in_beyond_the_cap_ends_the_oldest_session(store: &Store) {
    store.set_sessions_per_user(3);
    create(store, user("1", "a@x.io", None))
        .await
        .expect("user");
    create(store, user("2", "b@x.io", None))
        .await
        .expect("user");
    open(store, [9; 32], session("2", 1, 1000), 500).await;
    let heard = Recorder::on(store);
    for k in 1..=5u8 {
        open(store, [k; 32], session("1", 100 + i64::from(k), 1000), 500).await;
    }
    // Ending a session is announced (copies kept in memory must go); adding one is not.
    assert_eq!(
        heard.take(),
        [
            StoreEvent::SessionEnded([1; 32]),
            StoreEvent::SessionEnded([2; 32])
        ]
    );
    assert_eq!(
        keys_of(store, "1").await,
        [3, 4, 5],
        "the newest three stay"
    );
    assert!(has_session(store, [9; 32]).await, "another user's stays");
}

pub(crate) async fn a_sign_in_replaces_the_sessions_it_presents(store: &Store) {
    create(store, user("1", "a@x.io", None))
        .await
        .expect("user");
    open(store, [1; 32], session("1", 100, 1000), 500).await;
    open(store, [2; 32], session("1", 100, 1000), 500).await;
    let heard = Recorder::on(store);
    store
        .open_session(SignIn {
            session: NewSession {
                key: [3; 32],
                record: session("1", 200, 1000),
                idle_secs: 500,
            },
            replaces: vec![[1; 32], [8; 32]],
            identity: None,
        })
        .await
        .expect("signed in");
    assert_eq!(keys_of(store, "1").await, [2, 3]);
    assert_eq!(heard.take(), [StoreEvent::SessionEnded([1; 32])]);
}

pub(crate) async fn password_change_revokes_all_but_the_kept_session(store: &Store) {
    create(store, user("1", "a@x.io", None))
        .await
        .expect("user");
    for k in 1..=3u8 {
        open(store, [k; 32], session("1", 100, 1000), 500).await;
    }
    let ended = store
        .set_password("1", "new".into(), 200, Some([2; 32]))
        .await
        .expect("set");
    assert_eq!(ended, 2);
    assert_eq!(keys_of(store, "1").await, [2]);
    assert_eq!(
        store
            .get_user("1")
            .await
            .expect("u")
            .and_then(|u| u.password_hash),
        Some("new".into())
    );
    assert_eq!(store.revoke_user_sessions("1", None).await.expect("all"), 1);
    assert_eq!(store.session_count().await.expect("count"), 0);
    // Nothing is left to sweep either.
    assert_eq!(
        store
            .sweep_expired_sessions(i64::MAX, 100)
            .await
            .expect("sweep"),
        0
    );
}

pub(crate) async fn touch_never_resurrects_a_deleted_session(store: &Store) {
    create(store, user("1", "a@x.io", None))
        .await
        .expect("user");
    open(store, [7; 32], session("1", 100, 1000), 500).await;
    open(store, [8; 32], session("1", 100, 1000), 500).await;
    assert_eq!(
        store
            .end_sessions(vec![[7; 32], [9; 32]])
            .await
            .expect("ended"),
        1
    );
    let touched = store
        .touch_sessions(vec![([7; 32], 300), ([8; 32], 300)], 500)
        .await
        .expect("touch");
    assert_eq!(touched, 1);
    assert!(!has_session(store, [7; 32]).await);
    let (kept, _) = store
        .get_session(&[8; 32])
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(kept.last_seen, 300);
    assert_eq!(keys_of(store, "1").await, [8]);
}

pub(crate) async fn sessions_go_with_their_user(store: &Store) {
    owner_and_user(store).await;
    open(store, [1; 32], session("u", 100, 1000), 500).await;
    open(store, [2; 32], session("o", 100, 1000), 500).await;
    store.delete_user("u").await.expect("deleted");
    assert!(!has_session(store, [1; 32]).await);
    assert!(store.user_sessions("u").await.expect("list").is_empty());
    assert!(has_session(store, [2; 32]).await);
    assert_eq!(store.session_count().await.expect("count"), 1);
}
