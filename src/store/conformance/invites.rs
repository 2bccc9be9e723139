//! Invites (each use counted with the account it creates, never beyond its uses, even under
//! races) and single-use mailed tokens.

use super::{assert_winners, identity, owner_and_user, race, user, Store};
use crate::store::records::{invite_id, invite_key};
use crate::store::{
    InviteRecord, NewAccount, Role, TokenKind, TokenRecord, UserRecord, WriteError,
};

fn invite(code: &str, role: Role, max_uses: u32) -> InviteRecord {
    InviteRecord {
        id: invite_id(&invite_key(code)),
        role,
        groups: vec!["ops".into()],
        max_uses,
        used: 0,
        expires_at: None,
        created_at: 1,
        created_by: None,
    }
}

fn invited(user: UserRecord, code: &str) -> NewAccount {
    NewAccount {
        invite: Some(code.into()),
        ..NewAccount::of(user)
    }
}

pub(crate) async fn an_invite_is_counted_with_the_new_user(store: &Store) {
    store
        .create_invite("c0de".into(), invite("c0de", Role::Admin, 1))
        .await
        .expect("invite");
    let newcomer = UserRecord {
        created_at: 2,
        groups: vec!["dev".into()],
        ..user("u1", "a@example.com", None)
    };
    store
        .create_user(NewAccount {
            identity: Some(identity("corp", "s1", "u1")),
            ..invited(newcomer, "c0de")
        })
        .await
        .expect("created");
    let stored = store.get_user("u1").await.expect("read").expect("found");
    assert_eq!(stored.role, Role::Admin);
    let mut groups = stored.groups.clone();
    groups.sort();
    assert_eq!(groups, ["dev", "ops"], "the invite's groups are added");
    let used = store.get_invite("c0de").await.expect("read").expect("kept");
    assert_eq!(used.used, 1);

    let late = user("u2", "b@example.com", None);
    assert!(matches!(
        store.create_user(invited(late, "c0de")).await,
        Err(WriteError::InviteInvalid)
    ));
    assert!(matches!(
        store
            .create_user(invited(user("u3", "c@example.com", None), "nope"))
            .await,
        Err(WriteError::InviteInvalid)
    ));
    assert!(
        store.get_user("u2").await.expect("read").is_none(),
        "nothing half-written"
    );
    assert!(store
        .find_identity("corp", "s1")
        .await
        .expect("read")
        .is_some());

    // Expired at its expiry.
    let expiring = InviteRecord {
        expires_at: Some(10),
        ..invite("soon", Role::User, 5)
    };
    store
        .create_invite("soon".into(), expiring)
        .await
        .expect("invite");
    let too_late = UserRecord {
        created_at: 10,
        ..user("u4", "d@example.com", None)
    };
    assert!(matches!(
        store.create_user(invited(too_late, "soon")).await,
        Err(WriteError::InviteInvalid)
    ));
}

pub(crate) async fn invite_uses_are_counted_once_under_races(store: &Store) {
    store
        .create_invite("c0de".into(), invite("c0de", Role::User, 3))
        .await
        .expect("invite");
    let outcomes = race(store, 10, |s, i| async move {
        let newcomer = user(&format!("u{i}"), &format!("u{i}@x.io"), None);
        s.create_user(invited(newcomer, "c0de")).await
    })
    .await;
    assert_winners(&outcomes, 3, |e| matches!(e, WriteError::InviteInvalid));
    assert_eq!(store.user_count().await.expect("count"), 3);
    let used = store.get_invite("c0de").await.expect("read").expect("kept");
    assert_eq!((used.used, used.max_uses), (3, 3));
}

pub(crate) async fn invites_are_listed_and_deleted_owner_role_only_when_asked(store: &Store) {
    store
        .create_invite("a".into(), invite("a", Role::User, 1))
        .await
        .expect("invite");
    store
        .create_invite("b".into(), invite("b", Role::Owner, 1))
        .await
        .expect("invite");
    let mut listed: Vec<String> = store
        .list_invites()
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.id)
        .collect();
    listed.sort();
    let mut want = vec![invite_id(&invite_key("a")), invite_id(&invite_key("b"))];
    want.sort();
    assert_eq!(listed, want);
    // Looked up by its code only, never by its id.
    assert!(store.get_invite(&want[0]).await.expect("read").is_none());

    let owner_invite = invite_id(&invite_key("b"));
    assert!(!store
        .delete_invite(&owner_invite, false)
        .await
        .expect("delete"));
    assert!(store.get_invite("b").await.expect("read").is_some());
    assert!(store
        .delete_invite(&owner_invite, true)
        .await
        .expect("delete"));
    assert!(store
        .delete_invite(&invite_id(&invite_key("a")), false)
        .await
        .expect("delete"));
    assert!(!store.delete_invite("unknown", true).await.expect("delete"));
    assert!(store.list_invites().await.expect("list").is_empty());
}

fn token(kind: TokenKind, user_id: &str, expires_at: i64) -> TokenRecord {
    TokenRecord {
        kind,
        user_id: user_id.into(),
        expires_at,
    }
}

pub(crate) async fn mailed_tokens_are_used_once_and_never_after_they_expire(store: &Store) {
    owner_and_user(store).await;
    let (reset, verify, late) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    store
        .put_token(reset, token(TokenKind::PasswordReset, "u", 100))
        .await
        .expect("put");
    store
        .put_token(verify, token(TokenKind::EmailVerification, "u", 100))
        .await
        .expect("put");
    store
        .put_token(late, token(TokenKind::PasswordReset, "u", 50))
        .await
        .expect("put");
    assert_eq!(
        store.get_token(&reset).await.expect("read"),
        Some(token(TokenKind::PasswordReset, "u", 100))
    );
    // The wrong kind is refused and the token stays.
    assert_eq!(store.verify_email(reset, 10).await.expect("use"), None);
    assert!(store.get_token(&reset).await.expect("read").is_some());

    let done = store
        .reset_password(reset, "new".into(), 10)
        .await
        .expect("use");
    assert_eq!(done.as_deref(), Some("u"));
    assert_eq!(
        store
            .reset_password(reset, "again".into(), 11)
            .await
            .expect("use"),
        None
    );
    let u = store.get_user("u").await.expect("read").expect("found");
    assert_eq!(u.password_hash.as_deref(), Some("new"));

    assert_eq!(
        store
            .verify_email(verify, 10)
            .await
            .expect("use")
            .as_deref(),
        Some("u")
    );
    assert_eq!(store.verify_email(verify, 10).await.expect("use"), None);
    assert!(
        store
            .get_user("u")
            .await
            .expect("read")
            .expect("found")
            .email_verified
    );

    assert_eq!(
        store
            .reset_password(late, "x".into(), 50)
            .await
            .expect("use"),
        None
    );
    let u = store.get_user("u").await.expect("read").expect("found");
    assert_eq!(
        u.password_hash.as_deref(),
        Some("new"),
        "an expired token changes nothing"
    );
}

pub(crate) async fn expired_tokens_are_swept_in_batches_and_live_ones_stay(store: &Store) {
    for (k, expires) in [(1u8, 100), (2, 150), (3, 200), (4, 201), (5, 1000)] {
        store
            .put_token([k; 32], token(TokenKind::PasswordReset, "u1", expires))
            .await
            .expect("put");
    }
    // Expiry is inclusive: a token is unusable from its `expires_at` on.
    for want in [2, 1, 0] {
        assert_eq!(
            store.sweep_expired_tokens(200, 2).await.expect("sweep"),
            want
        );
    }
    for (k, kept) in [(1u8, false), (2, false), (3, false), (4, true), (5, true)] {
        let found = store.get_token(&[k; 32]).await.expect("get").is_some();
        assert_eq!(found, kept, "{k}");
    }
    assert_eq!(
        store
            .sweep_expired_tokens(i64::MAX, 100)
            .await
            .expect("sweep"),
        2
    );
    assert_eq!(
        store
            .sweep_expired_tokens(i64::MAX, 100)
            .await
            .expect("sweep"),
        0
    );
}
