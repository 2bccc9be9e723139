//! Sessions: their indexes, the per-user cap, revocation, and last-seen updates.

use super::*;

#[test]
fn sessions_are_indexed_per_user_and_by_expiry() {
    let (_d, store) = temp_store();
    create(&store, user("1", "a@x.io", None)).expect("user");
    let (k1, k2, k3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    store
        .open_session_for_tests(k1, session("1", 100, 1000), 50)
        .expect("s1");
    store
        .open_session_for_tests(k2, session("1", 100, 1000), 50)
        .expect("s2");
    store
        .open_session_for_tests(k3, session("1", 100, 120), 50)
        .expect("s3");
    assert_eq!(store.user_sessions_now("1").expect("list").len(), 3);
    assert_eq!(
        store
            .get_user_now("1")
            .expect("u")
            .and_then(|u| u.last_login_at),
        Some(100)
    );

    // k1 idles out at 150 unless touched; touch moves it to 190.
    assert_eq!(
        store
            .touch_sessions_blocking(&[(k1, 140)], 50)
            .expect("touch"),
        1
    );
    assert_eq!(
        store
            .sweep_expired_sessions_blocking(160, 100)
            .expect("sweep"),
        2
    );
    assert!(store.session_for_tests(&k1).expect("read").is_some());
    assert!(store.session_for_tests(&k2).expect("read").is_none());
    assert!(store.session_for_tests(&k3).expect("read").is_none());
    assert_eq!(
        store
            .sweep_expired_sessions_blocking(191, 100)
            .expect("sweep"),
        1
    );
    assert_eq!(store.session_count_now().expect("count"), 0);
    assert!(store.user_sessions_now("1").expect("list").is_empty());
}

#[test]
fn a_sign_in_beyond_the_cap_ends_the_oldest_session() {
    let (_d, store) = temp_store();
    Sessions::set_sessions_per_user(&store, 3);
    create(&store, user("1", "a@x.io", None)).expect("user");
    create(&store, user("2", "b@x.io", None)).expect("user");
    store
        .open_session_for_tests([9; 32], session("2", 1, 1000), 500)
        .expect("other user's");
    let ended = Arc::new(Recorder::default());
    store.inner.events.listen(ended.clone());
    for k in 1..=5u8 {
        store
            .open_session_for_tests([k; 32], session("1", 100 + i64::from(k), 1000), 500)
            .expect("s");
    }
    // Ending a session is announced (copies kept in memory must go); adding one is not.
    assert_eq!(
        ended.take(),
        vec![
            StoreEvent::SessionEnded([1; 32]),
            StoreEvent::SessionEnded([2; 32])
        ]
    );
    let mut left: Vec<u8> = store
        .user_sessions_now("1")
        .expect("list")
        .iter()
        .map(|(k, _)| k[0])
        .collect();
    left.sort();
    assert_eq!(left, vec![3, 4, 5], "the newest three stay");
    assert!(store.session_for_tests(&[9; 32]).expect("read").is_some());
}

#[test]
fn password_change_revokes_all_but_the_kept_session() {
    let (_d, store) = temp_store();
    create(&store, user("1", "a@x.io", None)).expect("user");
    for k in 1..=3u8 {
        store
            .open_session_for_tests([k; 32], session("1", 100, 1000), 500)
            .expect("s");
    }
    assert_eq!(
        store
            .set_password_blocking("1", "new".into(), 200, Some([2u8; 32]))
            .expect("set"),
        2
    );
    assert!(store.session_for_tests(&[2u8; 32]).expect("read").is_some());
    assert!(store.session_for_tests(&[1u8; 32]).expect("read").is_none());
    assert_eq!(
        store
            .get_user_now("1")
            .expect("u")
            .and_then(|u| u.password_hash),
        Some("new".into())
    );
    assert_eq!(
        store.revoke_user_sessions_blocking("1", None).expect("all"),
        1
    );
    // Nothing left in the expiry index either.
    assert_eq!(
        store
            .sweep_expired_sessions_blocking(i64::MAX, 100)
            .expect("sweep"),
        0
    );
}

#[test]
fn touch_never_resurrects_a_deleted_session() {
    let (_d, store) = temp_store();
    create(&store, user("1", "a@x.io", None)).expect("user");
    store
        .open_session_for_tests([7; 32], session("1", 100, 1000), 500)
        .expect("s");
    assert!(store.end_sessions_blocking(&[[7; 32]]).expect("deleted") == 1);
    assert_eq!(
        store
            .touch_sessions_blocking(&[([7; 32], 300)], 500)
            .expect("touch"),
        0
    );
    assert!(store.session_for_tests(&[7; 32]).expect("read").is_none());
}

/// What each write announces: exactly what it changed, and nothing when nothing changed (a
/// copy in memory is dropped only when it must be).
#[test]
fn writes_announce_exactly_what_they_changed() {
    use crate::store::AdminChange;
    let (_d, store) = temp_store();
    let heard = Arc::new(Recorder::default());
    store.inner.events.listen(heard.clone());
    let ended = |k: u8| StoreEvent::SessionEnded([k; 32]);
    let changed = |id: &str| StoreEvent::UserChanged(id.into());
    type Write<'a> = Box<dyn Fn(&RedbStore) + 'a>;
    // (what is done) → what is heard
    let cases: Vec<(&str, Write, Vec<StoreEvent>)> = vec![
        (
            "create an owner and a user",
            Box::new(|s| {
                let owner = UserRecord {
                    role: Role::Owner,
                    ..user("0", "o@x.io", None)
                };
                create(s, owner).map(drop).expect("write");
                create(s, user("1", "a@x.io", None))
                    .map(drop)
                    .expect("write");
            }),
            vec![],
        ),
        (
            "open a session",
            Box::new(|s| {
                s.open_session_for_tests([1; 32], session("1", 100, 1000), 500)
                    .map(drop)
                    .expect("write")
            }),
            vec![],
        ),
        (
            "touch it",
            Box::new(|s| {
                s.touch_sessions_blocking(&[([1; 32], 150)], 500)
                    .map(drop)
                    .expect("write")
            }),
            vec![],
        ),
        (
            "end an unknown session",
            Box::new(|s| {
                s.end_sessions_blocking(&[[9; 32]])
                    .map(drop)
                    .expect("write")
            }),
            vec![],
        ),
        (
            "end it",
            Box::new(|s| {
                s.end_sessions_blocking(&[[1; 32], [9; 32]])
                    .map(drop)
                    .expect("write")
            }),
            vec![ended(1)],
        ),
        (
            "revoke a user without sessions",
            Box::new(|s| {
                s.revoke_user_sessions_blocking("1", None)
                    .map(drop)
                    .expect("write")
            }),
            vec![],
        ),
        (
            "an admin change that changes nothing",
            Box::new(|s| {
                let same = AdminChange {
                    status: Some(UserStatus::Active),
                    ..AdminChange::default()
                };
                s.admin_update_blocking("1", same, 5)
                    .map(drop)
                    .expect("write")
            }),
            vec![],
        ),
        (
            "a rename to the same name",
            Box::new(|s| rename(s, "1", None).map(drop).expect("write")),
            vec![],
        ),
        (
            "a rename",
            Box::new(|s| rename(s, "1", Some("al")).map(drop).expect("write")),
            vec![changed("1")],
        ),
        (
            "revoke a user with sessions",
            Box::new(|s| {
                s.open_session_for_tests([2; 32], session("1", 100, 1000), 500)
                    .map(drop)
                    .expect("write");
                s.revoke_user_sessions_blocking("1", None)
                    .map(drop)
                    .expect("write");
            }),
            vec![changed("1")],
        ),
        (
            "disable the user",
            Box::new(|s| {
                let off = AdminChange {
                    status: Some(UserStatus::Disabled),
                    ..AdminChange::default()
                };
                s.admin_update_blocking("1", off, 6)
                    .map(drop)
                    .expect("write")
            }),
            vec![changed("1")],
        ),
        (
            "sweep expired sessions",
            Box::new(|s| {
                s.open_session_for_tests([3; 32], session("1", 100, 120), 500)
                    .map(drop)
                    .expect("write");
                s.sweep_expired_sessions_blocking(10_000, 100)
                    .map(drop)
                    .expect("write");
            }),
            vec![ended(3)],
        ),
        (
            "sweep with nothing expired",
            Box::new(|s| {
                s.sweep_expired_sessions_blocking(10_000, 100)
                    .map(drop)
                    .expect("write")
            }),
            vec![],
        ),
        (
            "delete the user",
            Box::new(|s| s.delete_user_blocking("1").map(drop).expect("write")),
            vec![changed("1")],
        ),
    ];
    for (what, write, want) in cases {
        write(&store);
        assert_eq!(heard.take(), want, "{what}");
    }
}
