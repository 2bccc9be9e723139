//! Users, their indexes (email, username, look-alike skeletons), the first owner, and
//! provider identities.

use super::*;

#[test]
fn indexes_follow_user_writes() {
    let (_d, store) = temp_store();
    create(&store, user("1", "a@x.io", Some("al"))).expect("created");
    assert!(matches!(
        create(&store, user("2", "a@x.io", None)),
        Err(WriteError::EmailTaken)
    ));
    assert!(matches!(
        create(&store, user("3", "b@x.io", Some("al"))),
        Err(WriteError::UsernameTaken)
    ));
    assert_eq!(store.user_count_blocking().expect("count"), 1);
    assert_eq!(
        store.find_user_now("al").expect("read").map(|u| u.id),
        Some("1".into())
    );
    assert_eq!(
        store.find_user_now("a@x.io").expect("read").map(|u| u.id),
        Some("1".into())
    );

    create(&store, user("4", "c@x.io", Some("cy"))).expect("created");
    let clash = rename(&store, "1", Some("cy"));
    assert!(matches!(clash, Err(WriteError::UsernameTaken)));
    rename(&store, "1", Some("al2")).expect("renamed");
    assert!(store.find_user_now("al").expect("read").is_none());
    assert_eq!(
        store.find_user_now("al2").expect("read").map(|u| u.id),
        Some("1".into())
    );
}

/// The user that the look-alike index names for `email`'s skeleton.
fn skeleton_owner(store: &RedbStore, email: &str) -> Option<String> {
    let txn = store.db().expect("db").begin_read().expect("read");
    let index = txn.open_table(USERS_BY_EMAIL_SKELETON).expect("table");
    let owner = index
        .get(email_skeleton(email).as_str())
        .expect("get")
        .map(|v| v.value().to_string());
    owner
}

#[test]
fn look_alike_emails_are_refused_and_the_index_follows_renames_and_deletes() {
    let (_d, store) = temp_store();
    let mut owner = user("1", "owner@example.com", None);
    owner.role = Role::Owner;
    create(&store, owner.clone()).expect("created");
    for look_alike in [
        "\u{43e}wner@example.com",
        "own\u{e9}r@example.com",
        "0wner@example.com",
        "owner@examp1e.com",
    ] {
        assert!(
            matches!(
                create(&store, user("2", look_alike, None)),
                Err(WriteError::EmailConfusable)
            ),
            "{look_alike:?}"
        );
    }
    assert!(matches!(
        create(&store, user("2", "owner@example.com", None)),
        Err(WriteError::EmailTaken)
    ));
    assert_eq!(store.user_count_blocking().expect("count"), 1);

    create(&store, user("3", "other@example.com", None)).expect("created");
    let change_to = |id: &str, email: &str| change_email(&store, id, email);
    assert!(matches!(
        change_to("3", "\u{43e}wner@example.com"),
        Err(WriteError::EmailConfusable)
    ));
    assert_eq!(
        skeleton_owner(&store, "other@example.com").as_deref(),
        Some("3")
    );
    change_to("3", "renamed@example.com").expect("renamed");
    assert_eq!(skeleton_owner(&store, "other@example.com"), None);
    assert_eq!(
        skeleton_owner(&store, "renamed@example.com").as_deref(),
        Some("3")
    );
    // A rename to a spelling of the same skeleton keeps the entry.
    change_to("3", "renarned@example.com").expect("renamed");
    assert_eq!(
        skeleton_owner(&store, "renamed@example.com").as_deref(),
        Some("3")
    );

    store.delete_user_blocking("3").expect("deleted");
    assert_eq!(skeleton_owner(&store, "renamed@example.com"), None);
    create(&store, user("4", "renamed@example.com", None)).expect("the address is free again");

    // An entry naming a user who is gone (or computed by older Unicode data) is stale.
    {
        let txn = store.db().expect("db").begin_write().expect("write");
        txn.open_table(USERS_BY_EMAIL_SKELETON)
            .expect("table")
            .insert(email_skeleton("ghost@example.com").as_str(), "gone")
            .expect("insert");
        txn.commit().expect("commit");
    }
    create(&store, user("5", "ghost@example.com", None)).expect("a stale entry does not block");
    assert_eq!(
        skeleton_owner(&store, "ghost@example.com").as_deref(),
        Some("5")
    );
}

#[test]
fn opening_an_older_database_builds_the_look_alike_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.redb");
    // As written before the index existed: two look-alikes side by side.
    let mut owner = user("b-owner", "owner@example.com", None);
    owner.created_at = 10;
    let mut copy = user("a-copy", "\u{43e}wner@example.com", None);
    copy.created_at = 20;
    let mut other = user("c-other", "other@example.com", None);
    other.role = Role::Owner;
    {
        let db = Database::create(&path).expect("create");
        let txn = db.begin_write().expect("write");
        {
            let mut users = txn.open_table(USERS).expect("users");
            let mut by_email = txn.open_table(USERS_BY_EMAIL).expect("by email");
            for u in [&owner, &copy, &other] {
                users
                    .insert(
                        u.id.as_str(),
                        records::encode(u).expect("encode").as_slice(),
                    )
                    .expect("insert");
                by_email
                    .insert(u.email.as_str(), u.id.as_str())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
    }
    let store = RedbStore::open(&path).expect("opens");
    assert_eq!(
        store.user_count_blocking().expect("count"),
        3,
        "nobody is dropped"
    );
    // The earlier account keeps the skeleton, whatever the ids' order.
    assert_eq!(
        skeleton_owner(&store, "owner@example.com").as_deref(),
        Some("b-owner")
    );
    assert_eq!(
        skeleton_owner(&store, "other@example.com").as_deref(),
        Some("c-other")
    );
    assert!(matches!(
        create(&store, user("d", "0wner@example.com", None)),
        Err(WriteError::EmailConfusable)
    ));
    // Deleting the first hands the entry to the look-alike that is still there.
    store.delete_user_blocking("b-owner").expect("deleted");
    assert_eq!(
        skeleton_owner(&store, "owner@example.com").as_deref(),
        Some("a-copy")
    );
    assert!(matches!(
        create(&store, user("d", "owner@example.com", None)),
        Err(WriteError::EmailConfusable)
    ));
    drop(store);
    // Built once: a reopened database keeps its index as it is.
    let store = RedbStore::open(&path).expect("reopens");
    assert_eq!(
        skeleton_owner(&store, "owner@example.com").as_deref(),
        Some("a-copy")
    );
}

#[test]
fn first_owner_is_created_once() {
    let (_d, store) = temp_store();
    let owner = |id: &str, email: &str| UserRecord {
        role: Role::Owner,
        ..user(id, email, None)
    };
    // A plain user (from the CLI, say) does not complete setup.
    create(&store, user("0", "plain@x.io", None)).expect("plain user");
    assert!(!store.owner_exists_now().expect("read"));
    store
        .create_owner_blocking(owner("1", "a@x.io"), None)
        .expect("first");
    assert!(store.owner_exists_now().expect("read"));
    assert!(matches!(
        store.create_owner_blocking(owner("2", "b@x.io"), None),
        Err(WriteError::AlreadySetup)
    ));
}

#[test]
fn usernames_given_up_are_never_given_to_someone_else() {
    let (_d, store) = temp_store();
    let owner = UserRecord {
        role: Role::Owner,
        ..user("1", "a@x.io", Some("alice"))
    };
    create(&store, owner.clone()).expect("alice");
    create(&store, user("2", "b@x.io", Some("bob"))).expect("bob");
    let rename = |id: &str, name: Option<&str>| rename(&store, id, name);
    rename("1", Some("alice2")).expect("renamed");
    // Free in the index, but retired: nobody else gets it, by rename or creation.
    assert!(store.find_user_now("alice").expect("read").is_none());
    assert!(matches!(
        rename("2", Some("alice")),
        Err(WriteError::UsernameTaken)
    ));
    assert!(matches!(
        create(&store, user("3", "c@x.io", Some("alice"))),
        Err(WriteError::UsernameTaken)
    ));
    // Its holder may take it back.
    rename("1", Some("alice")).expect("back");
    // A deleted user's name stays retired too.
    store.delete_user_blocking("2").expect("deleted");
    assert!(matches!(
        create(&store, user("4", "d@x.io", Some("bob"))),
        Err(WriteError::UsernameTaken)
    ));
    create(&store, user("5", "e@x.io", Some("carol"))).expect("a name never used is free");
}

fn member(id: &str, email: &str) -> UserRecord {
    UserRecord {
        email_verified: true,
        password_hash: None,
        ..user(id, email, None)
    }
}

fn identity(provider: &str, subject: &str, user_id: &str) -> IdentityRecord {
    IdentityRecord {
        provider: provider.into(),
        subject: subject.into(),
        user_id: user_id.into(),
        email: None,
        linked_at: 1,
        last_login_at: None,
    }
}

#[test]
fn identities_are_found_by_provider_and_subject_only_and_go_with_their_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("db.redb")).expect("store");
    let mut owner = member("o", "o@example.com");
    owner.role = Role::Owner;
    store
        .create_owner_blocking(owner.clone(), None)
        .expect("owner");
    let u = member("u1", "a@example.com");
    store
        .create_user_blocking(with_identity(u, identity("corp", "sub-1", "u1"), None))
        .expect("created");
    let (i, found) = store
        .find_identity_now("corp", "sub-1")
        .expect("read")
        .expect("found");
    assert_eq!(
        (i.user_id.as_str(), found.email.as_str()),
        ("u1", "a@example.com")
    );
    assert!(store
        .find_identity_now("corp", "a@example.com")
        .expect("read")
        .is_none());
    assert!(store
        .find_identity_now("other", "sub-1")
        .expect("read")
        .is_none());

    // The same subject cannot be created twice or linked to someone else.
    let twin = member("u2", "b@example.com");
    assert!(matches!(
        store.create_user_blocking(with_identity(twin, identity("corp", "sub-1", "u2"), None)),
        Err(WriteError::IdentityTaken)
    ));
    assert!(
        store.get_user_now("u2").expect("read").is_none(),
        "nothing half-written"
    );
    assert!(matches!(
        store.link_identity_blocking(identity("corp", "sub-1", "o")),
        Err(WriteError::IdentityTaken)
    ));
    // A user deleted meanwhile gets no link.
    assert!(matches!(
        store.link_identity_blocking(identity("corp", "sub-9", "gone")),
        Err(WriteError::NotFound)
    ));
    assert!(store
        .all_identities_now()
        .expect("all")
        .iter()
        .all(|i| i.subject != "sub-9"));
    store
        .link_identity_blocking(identity("google", "g-1", "u1"))
        .expect("second provider");
    let linked = store.user_identities_now("u1").expect("list");
    assert_eq!(
        linked
            .iter()
            .map(|i| i.provider.as_str())
            .collect::<Vec<_>>(),
        ["corp", "google"]
    );
    // u1 has no password: without another configured provider the link must stay.
    let keep = |configured: &[&str]| UnlinkRule::KeepAWayIn {
        configured: configured.iter().map(|c| c.to_string()).collect(),
        password: PasswordSignIn::Everyone,
    };
    let refuse = store
        .unlink_identity_blocking("u1", "google", &keep(&["google"]))
        .expect("unlink");
    assert_eq!(refuse, Unlink::Refused);
    assert_eq!(store.user_identities_now("u1").expect("list").len(), 2);
    let done = store
        .unlink_identity_blocking("u1", "google", &keep(&["google", "corp"]))
        .expect("unlink");
    assert_eq!(done, Unlink::Done);
    assert_eq!(
        store
            .unlink_identity_blocking("u1", "google", &UnlinkRule::Always)
            .expect("unlink"),
        Unlink::NotLinked
    );

    store.delete_user_blocking("u1").expect("delete");
    assert!(store
        .find_identity_now("corp", "sub-1")
        .expect("read")
        .is_none());
    assert!(store.all_identities_now().expect("all").is_empty());
}

#[test]
fn an_invite_is_counted_with_the_new_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("db.redb")).expect("store");
    store
        .create_invite_blocking(
            "c0de",
            &InviteRecord {
                id: invite_id(&invite_key("c0de")),
                role: Role::Admin,
                groups: vec!["ops".into()],
                max_uses: 1,
                used: 0,
                expires_at: None,
                created_at: 1,
                created_by: None,
            },
        )
        .expect("invite");
    let u = UserRecord {
        created_at: 2,
        ..member("u1", "a@example.com")
    };
    store
        .create_user_blocking(with_identity(u, identity("corp", "s1", "u1"), Some("c0de")))
        .expect("created");
    let stored = store.get_user_now("u1").expect("read").expect("found");
    assert_eq!(
        (stored.role, stored.groups.clone()),
        (Role::Admin, vec!["ops".to_string()])
    );
    let v = member("u2", "b@example.com");
    assert!(matches!(
        store.create_user_blocking(with_identity(v, identity("corp", "s2", "u2"), Some("c0de"))),
        Err(WriteError::InviteInvalid)
    ));
}
