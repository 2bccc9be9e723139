//! The redb backend's own tests: indexes, races decided by transactions, migrations of older
//! files, sweeps, and what each write announces.

use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, TableHandle as _};

use super::users::{read_user, replace_user};
use super::*;
use crate::store::records::{
    invite_id, invite_key, AuditRecord, IdentityRecord, InviteRecord, TokenKind, TokenRecord,
    UserStatus,
};
use crate::store::{
    email_skeleton, Listener, NewAccount, NewSession, Override, PasswordSignIn, ProfileChange,
    Sessions, SignIn, Unlink, UnlinkRule, WriteError,
};

/// Records what a store announces.
#[derive(Default)]
struct Recorder(Mutex<Vec<StoreEvent>>);

impl Recorder {
    fn take(&self) -> Vec<StoreEvent> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

impl Listener for Recorder {
    fn changed(&self, event: &StoreEvent) {
        self.0.lock().expect("lock").push(event.clone());
    }
}

fn create(store: &RedbStore, user: UserRecord) -> Result<UserRecord, WriteError> {
    store.create_user_blocking(NewAccount {
        user,
        invite: None,
        identity: None,
        session: None,
    })
}

fn with_identity(user: UserRecord, identity: IdentityRecord, invite: Option<&str>) -> NewAccount {
    NewAccount {
        user,
        invite: invite.map(str::to_string),
        identity: Some(identity),
        session: None,
    }
}

fn rename(store: &RedbStore, id: &str, name: Option<&str>) -> Result<UserRecord, WriteError> {
    let change = ProfileChange {
        username: Some(name.map(str::to_string)),
        ..ProfileChange::default()
    };
    store.update_profile_blocking(id, change, 5)
}

/// No endpoint changes an address, but the indexes must follow if one ever does.
fn change_email(store: &RedbStore, id: &str, email: &str) -> Result<(), WriteError> {
    let txn = store.db()?.begin_write()?;
    let before = read_user(&txn, id)?.ok_or(WriteError::NotFound)?;
    let after = UserRecord {
        email: email.into(),
        ..before.clone()
    };
    replace_user(&txn, &before, &after)?;
    txn.commit()?;
    Ok(())
}

impl RedbStore {
    fn open_session_for_tests(
        &self,
        key: SessionKey,
        record: SessionRecord,
        idle_secs: i64,
    ) -> Result<(), WriteError> {
        self.open_session_blocking(SignIn {
            session: NewSession {
                key,
                record,
                idle_secs,
            },
            replaces: Vec::new(),
            identity: None,
        })
    }

    fn session_for_tests(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.get_session_now(key)?.map(|(s, _)| s))
    }
}

fn user(id: &str, email: &str, username: Option<&str>) -> UserRecord {
    UserRecord {
        id: id.into(),
        email: email.into(),
        username: username.map(str::to_string),
        full_name: None,
        first_name: None,
        last_name: None,
        role: Role::User,
        groups: vec![],
        status: UserStatus::Active,
        email_verified: false,
        password_hash: Some("h".into()),
        created_at: 1,
        updated_at: 1,
        last_login_at: None,
        expires_at: None,
    }
}

fn session(user_id: &str, created: i64, expires: i64) -> SessionRecord {
    SessionRecord {
        user_id: user_id.into(),
        created_at: created,
        expires_at: expires,
        last_seen: created,
        indexed_expiry: 0,
        remember: false,
        ip: None,
        user_agent: None,
    }
}

fn temp_store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("sub/db.redb")).expect("opens");
    (dir, store)
}

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

#[test]
fn data_survives_reopen_and_garbage_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    {
        let store = RedbStore::open(&path).expect("opens");
        create(&store, user("1", "a@x.io", None)).expect("user");
        store
            .set_overrides_blocking(Override::Set("closed".into()), Override::Keep)
            .expect("set");
    }
    let store = RedbStore::open(&path).expect("reopens");
    assert_eq!(store.user_count_blocking().expect("count"), 1);
    assert_eq!(
        store.overrides_now().expect("read").registration.as_deref(),
        Some("closed")
    );
    drop(store);

    let bad = dir.path().join("bad.redb");
    let garbage = b"this is not a database at all, just some bytes".repeat(200);
    std::fs::write(&bad, &garbage).expect("write");
    let err = RedbStore::open(&bad).err().expect("refused");
    assert!(
        matches!(err, OpenError::Corrupt(..) | OpenError::Other(..)),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&bad).expect("read"),
        garbage,
        "file must be untouched"
    );

    let truncated = dir.path().join("truncated.redb");
    let full = std::fs::read(&path).expect("read");
    std::fs::write(&truncated, &full[..full.len().min(100)]).expect("write");
    let before = std::fs::read(&truncated).expect("read");
    assert!(RedbStore::open(&truncated).is_err());
    assert_eq!(
        std::fs::read(&truncated).expect("read"),
        before,
        "file must be untouched"
    );
}

#[test]
fn invites_in_clear_are_moved_to_their_hashes_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    drop(RedbStore::open(&path).expect("store"));
    // A database written before codes were hashed.
    {
        let db = redb::Database::open(&path).expect("raw open");
        let txn = db.begin_write().expect("txn");
        {
            let mut t = txn.open_table(INVITES_V1).expect("v1");
            let v1 = serde_json::json!({"code": "old-code", "role": "owner", "groups": ["ops"],
                "max_uses": 2, "used": 1, "expires_at": null, "created_by": "u1", "created_at": 5});
            t.insert("old-code", records::encode(&v1).expect("enc").as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let store = RedbStore::open(&path).expect("reopen");
    let invite = store
        .get_invite_now("old-code")
        .expect("read")
        .expect("moved");
    assert_eq!(invite.id, invite_id(&invite_key("old-code")));
    assert_eq!(
        (invite.role, invite.used, invite.max_uses),
        (Role::Owner, 1, 2)
    );
    assert!(store.get_invite_now("wrong").expect("read").is_none());
    drop(store);
    // Nothing in clear remains.
    let db = redb::Database::open(&path).expect("raw open");
    let txn = db.begin_read().expect("txn");
    let names: Vec<String> = txn
        .list_tables()
        .expect("tables")
        .map(|t| t.name().to_string())
        .collect();
    assert!(!names.contains(&"invites_v1".to_string()), "{names:?}");
    let raw = std::fs::read(&path).expect("file");
    assert!(
        !raw.windows(8).any(|w| w == b"old-code"),
        "the code is still in the file"
    );
}

fn token(expires_at: i64) -> TokenRecord {
    TokenRecord {
        kind: TokenKind::PasswordReset,
        user_id: "u1".into(),
        expires_at,
    }
}

fn entry(at: i64, event: &str) -> AuditRecord {
    AuditRecord {
        at,
        event: event.into(),
        actor: None,
        target: None,
        ip: None,
        detail: None,
    }
}

fn events(store: &RedbStore) -> Vec<(u64, String)> {
    let mut all: Vec<(u64, String)> = store
        .list_audit_now(None, 100)
        .expect("list")
        .into_iter()
        .map(|(id, e)| (id, e.event))
        .collect();
    all.reverse();
    all
}

#[test]
fn expired_tokens_are_swept_in_batches_and_live_ones_stay() {
    let (_d, store) = temp_store();
    for (k, expires) in [(1u8, 100), (2, 150), (3, 200), (4, 201), (5, 1000)] {
        store
            .put_token_blocking(&[k; 32], &token(expires))
            .expect("put");
    }
    // Expiry is inclusive: a token is unusable from its `expires_at` on.
    assert_eq!(
        store.sweep_expired_tokens_blocking(200, 2).expect("sweep"),
        2
    );
    assert_eq!(
        store.sweep_expired_tokens_blocking(200, 2).expect("sweep"),
        1
    );
    assert_eq!(
        store.sweep_expired_tokens_blocking(200, 2).expect("sweep"),
        0
    );
    for (k, kept) in [(1u8, false), (2, false), (3, false), (4, true), (5, true)] {
        assert_eq!(
            store.get_token_now(&[k; 32]).expect("get").is_some(),
            kept,
            "{k}"
        );
    }
    assert_eq!(
        store
            .sweep_expired_tokens_blocking(i64::MAX, 100)
            .expect("sweep"),
        2
    );
    assert_eq!(
        store
            .sweep_expired_tokens_blocking(i64::MAX, 100)
            .expect("sweep"),
        0
    );
}

#[test]
fn audit_past_retention_is_swept_oldest_first_in_batches() {
    let (_d, store) = temp_store();
    store
        .append_audit_blocking(&[entry(10, "a"), entry(20, "b"), entry(30, "c")])
        .expect("append");
    store
        .append_audit_blocking(&[entry(40, "d"), entry(50, "e")])
        .expect("append");
    assert_eq!(store.sweep_audit_blocking(35, 2).expect("sweep"), 2);
    assert_eq!(
        events(&store),
        [(3, "c".into()), (4, "d".into()), (5, "e".into())]
    );
    assert_eq!(store.sweep_audit_blocking(35, 2).expect("sweep"), 1);
    assert_eq!(
        store.sweep_audit_blocking(35, 2).expect("sweep"),
        0,
        "d is young enough"
    );
    assert_eq!(events(&store), [(4, "d".into()), (5, "e".into())]);
}

#[test]
fn audit_sweep_keeps_the_newest_entry_so_ids_keep_increasing() {
    let (_d, store) = temp_store();
    store
        .append_audit_blocking(&[entry(10, "a"), entry(20, "b")])
        .expect("append");
    assert_eq!(store.sweep_audit_blocking(1000, 100).expect("sweep"), 1);
    assert_eq!(store.sweep_audit_blocking(1000, 100).expect("sweep"), 0);
    store
        .append_audit_blocking(&[entry(2000, "c")])
        .expect("append");
    assert_eq!(events(&store), [(2, "b".into()), (3, "c".into())]);
    assert_eq!(store.sweep_audit_blocking(3000, 100).expect("sweep"), 1);
    assert_eq!(events(&store), [(3, "c".into())]);
}

#[test]
fn audit_sweep_stops_at_an_entry_young_enough() {
    let (_d, store) = temp_store();
    // A clock stepped back: an older `at` after a younger one waits for it.
    store
        .append_audit_blocking(&[
            entry(10, "a"),
            entry(90, "b"),
            entry(20, "c"),
            entry(95, "d"),
        ])
        .expect("append");
    assert_eq!(store.sweep_audit_blocking(50, 100).expect("sweep"), 1);
    assert_eq!(
        events(&store),
        [(2, "b".into()), (3, "c".into()), (4, "d".into())]
    );
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
