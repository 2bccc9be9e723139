//! The look-alike index (email skeleton → user): kept in step with every write that changes
//! an address, tolerant of stale entries, and built once for files written before it existed.

use super::*;

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
fn the_look_alike_index_follows_address_changes_and_deletes() {
    let (_d, store) = temp_store();
    let mut owner = user("1", "owner@example.com", None);
    owner.role = Role::Owner;
    create(&store, owner).expect("created");
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
