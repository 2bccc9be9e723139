//! Users: one account per email (and per look-alike of it), usernames never reused, one owner
//! by setup, and never no active owner; each decided inside the write, so racing requests get
//! one winner.

use super::{assert_winners, create, owner, race, user, Store};
use crate::store::{AdminChange, ProfileChange, UserStatus, WriteError};

async fn rename(store: &Store, id: &str, name: Option<&str>) -> Result<(), WriteError> {
    let change = ProfileChange {
        username: Some(name.map(str::to_string)),
        ..ProfileChange::default()
    };
    store.update_profile(id, change, 5).await.map(drop)
}

async fn found(store: &Store, identifier: &str) -> Option<String> {
    store
        .find_user(identifier)
        .await
        .expect("read")
        .map(|u| u.id)
}

pub(crate) async fn an_email_is_taken_once(store: &Store) {
    create(store, user("1", "a@x.io", None))
        .await
        .expect("created");
    assert!(matches!(
        create(store, user("2", "a@x.io", None)).await,
        Err(WriteError::EmailTaken)
    ));
    assert_eq!(store.user_count().await.expect("count"), 1);
    assert_eq!(found(store, "a@x.io").await.as_deref(), Some("1"));
    assert!(store.get_user("2").await.expect("read").is_none());
    let ids: Vec<String> = store
        .list_users()
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(ids, ["1"]);
}

pub(crate) async fn one_email_wins_a_race(store: &Store) {
    // Half spell it as it is, half as a look-alike: still one account.
    let outcomes = race(store, 8, |s, i| async move {
        let email = if i % 2 == 0 { "a@x.io" } else { "\u{430}@x.io" };
        create(&s, user(&format!("u{i}"), email, None)).await
    })
    .await;
    assert_winners(&outcomes, 1, |e| {
        matches!(e, WriteError::EmailTaken | WriteError::EmailConfusable)
    });
    assert_eq!(store.user_count().await.expect("count"), 1);
}

pub(crate) async fn look_alike_emails_are_refused_until_their_user_is_gone(store: &Store) {
    store
        .create_owner(owner("1", "owner@example.com"), None)
        .await
        .expect("owner");
    for look_alike in [
        "\u{43e}wner@example.com",
        "own\u{e9}r@example.com",
        "0wner@example.com",
        "owner@examp1e.com",
    ] {
        assert!(
            matches!(
                create(store, user("2", look_alike, None)).await,
                Err(WriteError::EmailConfusable)
            ),
            "{look_alike:?}"
        );
    }
    assert!(matches!(
        create(store, user("2", "owner@example.com", None)).await,
        Err(WriteError::EmailTaken)
    ));
    assert_eq!(store.user_count().await.expect("count"), 1);

    create(store, user("3", "other@example.com", None))
        .await
        .expect("created");
    store.delete_user("3").await.expect("deleted");
    create(store, user("4", "0ther@example.com", None))
        .await
        .expect("a look-alike of someone gone is free");
}

pub(crate) async fn a_username_is_taken_once_and_follows_renames(store: &Store) {
    create(store, user("1", "a@x.io", Some("al")))
        .await
        .expect("created");
    assert!(matches!(
        create(store, user("3", "b@x.io", Some("al"))).await,
        Err(WriteError::UsernameTaken)
    ));
    assert_eq!(found(store, "al").await.as_deref(), Some("1"));

    create(store, user("4", "c@x.io", Some("cy")))
        .await
        .expect("created");
    assert!(matches!(
        rename(store, "1", Some("cy")).await,
        Err(WriteError::UsernameTaken)
    ));
    rename(store, "1", Some("al2")).await.expect("renamed");
    assert_eq!(found(store, "al").await, None);
    assert_eq!(found(store, "al2").await.as_deref(), Some("1"));
    let stored = store.get_user("1").await.expect("read").expect("found");
    assert_eq!(stored.username.as_deref(), Some("al2"));
}

pub(crate) async fn one_username_wins_a_race(store: &Store) {
    let outcomes = race(store, 8, |s, i| async move {
        create(
            &s,
            user(&format!("u{i}"), &format!("u{i}@x.io"), Some("al")),
        )
        .await
    })
    .await;
    assert_winners(&outcomes, 1, |e| matches!(e, WriteError::UsernameTaken));
    assert_eq!(store.user_count().await.expect("count"), 1);
}

pub(crate) async fn usernames_given_up_are_never_given_to_someone_else(store: &Store) {
    let alice = super::UserRecord {
        username: Some("alice".into()),
        ..owner("1", "a@x.io")
    };
    create(store, alice).await.expect("alice");
    create(store, user("2", "b@x.io", Some("bob")))
        .await
        .expect("bob");
    rename(store, "1", Some("alice2")).await.expect("renamed");
    // Free to find, but retired: nobody else gets it, by rename or creation.
    assert_eq!(found(store, "alice").await, None);
    assert!(matches!(
        rename(store, "2", Some("alice")).await,
        Err(WriteError::UsernameTaken)
    ));
    assert!(matches!(
        create(store, user("3", "c@x.io", Some("alice"))).await,
        Err(WriteError::UsernameTaken)
    ));
    // Its holder may take it back.
    rename(store, "1", Some("alice")).await.expect("back");
    // A deleted user's name stays retired too.
    store.delete_user("2").await.expect("deleted");
    assert!(matches!(
        create(store, user("4", "d@x.io", Some("bob"))).await,
        Err(WriteError::UsernameTaken)
    ));
    create(store, user("5", "e@x.io", Some("carol")))
        .await
        .expect("a name never used is free");
}

pub(crate) async fn setup_creates_the_first_owner_once(store: &Store) {
    assert!(!store.owner_exists().await.expect("read"));
    // A plain user (from the CLI, say) does not complete setup.
    create(store, user("0", "plain@x.io", None))
        .await
        .expect("plain user");
    assert!(!store.owner_exists().await.expect("read"));
    store
        .create_owner(owner("1", "a@x.io"), None)
        .await
        .expect("first");
    assert!(store.owner_exists().await.expect("read"));
    assert!(matches!(
        store.create_owner(owner("2", "b@x.io"), None).await,
        Err(WriteError::AlreadySetup)
    ));
    assert!(store.get_user("2").await.expect("read").is_none());
}

pub(crate) async fn one_owner_wins_a_setup_race(store: &Store) {
    let outcomes = race(store, 8, |s, i| async move {
        s.create_owner(owner(&format!("o{i}"), &format!("o{i}@x.io")), None)
            .await
    })
    .await;
    assert_winners(&outcomes, 1, |e| matches!(e, WriteError::AlreadySetup));
    assert_eq!(store.user_count().await.expect("count"), 1);
    assert!(store.owner_exists().await.expect("read"));
}

pub(crate) async fn the_last_active_owner_stays(store: &Store) {
    store
        .create_owner(owner("o", "o@x.io"), None)
        .await
        .expect("owner");
    let disable = AdminChange {
        status: Some(UserStatus::Disabled),
        ..AdminChange::default()
    };
    assert!(matches!(
        store.admin_update("o", disable.clone(), 5).await,
        Err(WriteError::LastOwner)
    ));
    assert!(matches!(
        store.delete_user("o").await,
        Err(WriteError::LastOwner)
    ));
    let kept = store.get_user("o").await.expect("read").expect("found");
    assert_eq!(kept.status, UserStatus::Active);
    // With a second active owner, the first may go.
    create(store, owner("p", "p@x.io"))
        .await
        .expect("second owner");
    let (changed, _) = store.admin_update("o", disable, 6).await.expect("disabled");
    assert_eq!(changed.status, UserStatus::Disabled);
    assert!(matches!(
        store.delete_user("p").await,
        Err(WriteError::LastOwner)
    ));
}
