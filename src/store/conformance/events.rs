//! What each write announces: exactly what it changed, and nothing when nothing changed (a
//! copy kept in memory is dropped only when it must be), before the write returns.

use super::{create, open, owner, session, user, Recorder, Store};
use crate::store::{
    AdminChange, ApiTokenRecord, ProfileChange, StoreEvent, TokenKind, TokenRecord, UserStatus,
};

fn ended(k: u8) -> StoreEvent {
    StoreEvent::SessionEnded([k; 32])
}

fn changed(id: &str) -> StoreEvent {
    StoreEvent::UserChanged(id.into())
}

fn status(status: UserStatus) -> AdminChange {
    AdminChange {
        status: Some(status),
        ..AdminChange::default()
    }
}

async fn rename(store: &Store, id: &str, name: Option<&str>) {
    let change = ProfileChange {
        username: Some(name.map(str::to_string)),
        ..ProfileChange::default()
    };
    store.update_profile(id, change, 5).await.expect("renamed");
}

pub(crate) async fn writes_announce_exactly_what_they_changed(store: &Store) {
    let heard = Recorder::on(store);
    let hears = |what: &str, want: &[StoreEvent]| assert_eq!(heard.take(), want, "{what}");

    create(store, owner("0", "o@x.io")).await.expect("owner");
    create(store, user("1", "a@x.io", None))
        .await
        .expect("user");
    hears("create an owner and a user", &[]);
    open(store, [1; 32], session("1", 100, 1000), 500).await;
    hears("open a session", &[]);
    let touch = store.touch_sessions(vec![([1; 32], 150)], 500).await;
    touch.expect("touched");
    hears("touch it", &[]);
    store.end_sessions(vec![[9; 32]]).await.expect("ended");
    hears("end an unknown session", &[]);
    store
        .end_sessions(vec![[1; 32], [9; 32]])
        .await
        .expect("ended");
    hears("end it", &[ended(1)]);
    store
        .revoke_user_sessions("1", None)
        .await
        .expect("revoked");
    hears("revoke a user without sessions", &[]);
    let same = status(UserStatus::Active);
    store.admin_update("1", same, 5).await.expect("updated");
    hears("an admin change that changes nothing", &[]);
    rename(store, "1", None).await;
    hears("a rename to the same name", &[]);
    rename(store, "1", Some("al")).await;
    hears("a rename", &[changed("1")]);
    open(store, [2; 32], session("1", 100, 1000), 500).await;
    store
        .revoke_user_sessions("1", None)
        .await
        .expect("revoked");
    hears("revoke a user with sessions", &[changed("1")]);
    let off = status(UserStatus::Disabled);
    store.admin_update("1", off, 6).await.expect("disabled");
    hears("disable the user", &[changed("1")]);
    open(store, [3; 32], session("1", 100, 120), 500).await;
    store
        .sweep_expired_sessions(10_000, 100)
        .await
        .expect("swept");
    hears("sweep expired sessions", &[ended(3)]);
    store
        .sweep_expired_sessions(10_000, 100)
        .await
        .expect("swept");
    hears("sweep with nothing expired", &[]);
    store.delete_user("1").await.expect("deleted");
    hears("delete the user", &[changed("1")]);
}

fn api_token(key: u8, user_id: &str) -> ApiTokenRecord {
    ApiTokenRecord {
        id: format!("t{key}"),
        user_id: user_id.into(),
        name: "job".into(),
        prefix: "agt_".into(),
        groups: None,
        created_at: 1,
        expires_at: None,
        last_used_at: None,
    }
}

fn mailed(kind: TokenKind, user_id: &str) -> TokenRecord {
    TokenRecord {
        kind,
        user_id: user_id.into(),
        expires_at: 1000,
    }
}

pub(crate) async fn token_and_account_writes_announce_what_they_changed(store: &Store) {
    create(store, owner("0", "o@x.io")).await.expect("owner");
    create(store, user("1", "a@x.io", None))
        .await
        .expect("user");
    let heard = Recorder::on(store);
    let hears = |what: &str, want: &[StoreEvent]| assert_eq!(heard.take(), want, "{what}");

    store
        .create_api_token([1; 32], api_token(1, "1"), 10)
        .await
        .expect("created");
    store
        .note_api_token_use(vec![([1; 32], 5)])
        .await
        .expect("noted");
    hears("create and use an API token", &[]);
    store.delete_api_token("1", "t9").await.expect("deleted");
    hears("delete an unknown token", &[]);
    store.delete_api_token("1", "t1").await.expect("deleted");
    hears("delete a token", &[StoreEvent::TokenEnded([1; 32])]);

    store
        .set_password("1", "new".into(), 10, None)
        .await
        .expect("set");
    hears("a password reset by an administrator", &[changed("1")]);
    store
        .put_token([5; 32], mailed(TokenKind::EmailVerification, "1"))
        .await
        .expect("put");
    store
        .put_token([6; 32], mailed(TokenKind::PasswordReset, "1"))
        .await
        .expect("put");
    hears("mail tokens", &[]);
    store.verify_email([6; 32], 20).await.expect("wrong kind");
    store
        .reset_password([7; 32], "x".into(), 20)
        .await
        .expect("unknown");
    hears("tokens that are not usable", &[]);
    store.verify_email([5; 32], 20).await.expect("verified");
    hears("verify an address", &[changed("1")]);
    store
        .reset_password([6; 32], "x".into(), 20)
        .await
        .expect("reset");
    hears("a reset by mail", &[changed("1")]);

    let expiring = AdminChange {
        expires_at: Some(Some(100)),
        ..AdminChange::default()
    };
    store
        .admin_update("1", expiring, 30)
        .await
        .expect("updated");
    hears("an expiry set", &[changed("1")]);
    let (expired, _) = store.expire_accounts(50).await.expect("expired");
    assert!(expired.is_empty());
    hears("nothing expired yet", &[]);
    let (expired, _) = store.expire_accounts(100).await.expect("expired");
    assert_eq!(expired, ["1"]);
    hears("an account expired", &[changed("1")]);
    let off = store.get_user("1").await.expect("read").expect("found");
    assert_eq!(off.status, UserStatus::Disabled);
}
