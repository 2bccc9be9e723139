//! Snapshots round-trip: a store filled through the capabilities, exported, imported into an
//! empty store of either backend and exported again, is the same; the copy keeps working
//! (indexes, expiry, audit ids); a store that holds anything refuses an import.

use std::sync::Arc;

use crate::store::conformance::{create, identity, open, owner, passkey, session, user};
use crate::store::records::{
    invite_id, invite_key, ApiTokenRecord, AuditRecord, InviteRecord, PendingTotp, Role, TokenKind,
    TokenRecord, UserStatus,
};
use crate::store::{
    CounterKind, ImportError, NewAccount, NewSession, Override, ProfileChange, Snapshot, Store,
    WriteError,
};

/// The idle timeout of the filled store's session that is touched, and of the others.
const IDLE: i64 = 3600;
const LONG_IDLE: i64 = 100_000;

fn redb() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_redb(&dir.path().join("db.redb"), 8 << 20).expect("opens");
    (dir, store)
}

fn postgres(name: &str) -> (String, Store) {
    let url = crate::store::postgres::test_cluster::database(name);
    let store = crate::store::postgres::PgStore::open(&url, 4).expect("opens");
    (url, Store::new(Arc::new(store)))
}

fn audit_entry(at: i64, event: &str) -> AuditRecord {
    AuditRecord {
        at,
        event: event.into(),
        actor: Some("o".into()),
        target: None,
        ip: Some("192.0.2.1".into()),
        detail: None,
    }
}

fn api_token(user_id: &str, created_at: i64) -> ApiTokenRecord {
    ApiTokenRecord {
        id: format!("tok-{user_id}"),
        user_id: user_id.into(),
        name: "backup job".into(),
        prefix: "agt_abcd".into(),
        groups: Some(vec!["staff".into()]),
        created_at,
        expires_at: Some(9_000_000),
        last_used_at: None,
    }
}

/// A store with some of everything, written through the capabilities as the gateway writes.
async fn fill(store: &Store) {
    let boss = crate::store::UserRecord {
        username: Some("boss".into()),
        full_name: Some("The Boss".into()),
        groups: vec!["staff".into()],
        email_verified: true,
        last_login_at: Some(2),
        expires_at: Some(8_000_000),
        ..owner("o", "owner@example.com")
    };
    store
        .create_owner(
            boss,
            Some(NewSession {
                key: [1; 32],
                record: session("o", 10, 1_000_000),
                idle_secs: LONG_IDLE,
            }),
        )
        .await
        .expect("owner");
    // A rename retires the old name.
    create(store, user("a", "alice@example.com", Some("alice")))
        .await
        .expect("alice");
    store
        .update_profile(
            "a",
            ProfileChange {
                username: Some(Some("alicia".into())),
                ..ProfileChange::default()
            },
            20,
        )
        .await
        .expect("renamed");
    // A deletion keeps the name retired, and the user's mailed token stays.
    create(store, user("gone", "gone@example.com", Some("ghost")))
        .await
        .expect("gone");
    store
        .put_token(
            [40; 32],
            TokenRecord {
                kind: TokenKind::EmailVerification,
                user_id: "gone".into(),
                expires_at: 5_000,
            },
        )
        .await
        .expect("token");
    store.delete_user("gone").await.expect("deleted");
    // An invite used once, by a user who signs up with a provider identity and a session.
    let code = "invite-code".to_string();
    let key = invite_key(&code);
    let invite = InviteRecord {
        id: invite_id(&key),
        role: Role::Admin,
        groups: vec!["ops".into()],
        max_uses: 3,
        used: 0,
        expires_at: Some(7_000_000),
        created_by: Some("o".into()),
        created_at: 30,
    };
    store
        .create_invite(code.clone(), invite)
        .await
        .expect("invite");
    store
        .create_user(NewAccount {
            user: crate::store::UserRecord {
                status: UserStatus::Pending,
                ..user("b", "bob@example.com", None)
            },
            invite: Some(code),
            identity: Some(identity("corp", "sub-b", "b")),
            session: Some(NewSession {
                key: [2; 32],
                record: crate::store::SessionRecord {
                    remember: true,
                    ip: Some("2001:db8::1".into()),
                    user_agent: Some("Firefox".into()),
                    amr: vec!["provider:corp".into()],
                    ..session("b", 40, 2_000_000)
                },
                idle_secs: LONG_IDLE,
            }),
        })
        .await
        .expect("bob");
    // A second session whose last-seen time moved its expiry, and a half-open one.
    open(store, [3; 32], session("a", 50, 3_000_000), IDLE).await;
    store
        .touch_sessions(vec![([3; 32], 500)], IDLE)
        .await
        .expect("touched");
    open(
        store,
        [4; 32],
        crate::store::SessionRecord {
            amr: vec!["pwd".into()],
            stage: crate::store::SessionStage::SecondFactor,
            ..session("o", 60, 4_000_000)
        },
        LONG_IDLE,
    )
    .await;
    store
        .put_token(
            [41; 32],
            TokenRecord {
                kind: TokenKind::PasswordReset,
                user_id: "a".into(),
                expires_at: 6_000,
            },
        )
        .await
        .expect("token");
    store
        .link_identity(identity("github", "123", "a"))
        .await
        .expect("linked");
    // An active authenticator app with one recovery code used, and a secret waiting.
    store
        .begin_totp(
            "o",
            PendingTotp {
                sealed_secret: vec![1, 2, 3],
                created_at: 70,
            },
        )
        .await
        .expect("begun");
    assert!(store
        .confirm_totp("o", 99, vec![[5; 32], [6; 32]], 71)
        .await
        .expect("confirmed"));
    assert!(store
        .use_recovery_code("o", [5; 32], 72)
        .await
        .expect("used"));
    store
        .begin_totp(
            "a",
            PendingTotp {
                sealed_secret: vec![9; 40],
                created_at: 73,
            },
        )
        .await
        .expect("begun");
    assert!(store
        .add_passkey(passkey(b"credential-1", "a", 80))
        .await
        .expect("passkey"));
    assert!(store
        .note_passkey_use(b"credential-1", r#"{"cred":"used"}"#.into(), 81)
        .await
        .expect("noted"));
    store
        .create_api_token([50; 32], api_token("a", 90), 10)
        .await
        .expect("api token");
    store
        .note_api_token_use(vec![([50; 32], 91)])
        .await
        .expect("noted");
    store
        .set_overrides(Override::Set("invite".into()), Override::Set(false))
        .await
        .expect("overrides");
    // Ids 1..=4; the sweep takes the first, so the copy must keep ids, not count them.
    store
        .append_audit(
            (0..4)
                .map(|i| audit_entry(100 + i, &format!("event_{i}")))
                .collect(),
        )
        .await
        .expect("audit");
    assert_eq!(store.sweep_audit(101, 10).await.expect("swept"), 1);
    // Short-lived state, never copied.
    store
        .put_challenge([60; 32], vec![1], 9_000_000_000)
        .await
        .expect("challenge");
    store
        .counters()
        .add_event(CounterKind::AccountFailures, "a", 100, 60, 10)
        .await
        .expect("counted");
}

/// `store` filled, and its snapshot, checked to hold what [`fill`] wrote.
async fn filled(store: &Store) -> Snapshot {
    fill(store).await;
    let snapshot = store.export().await.expect("export");
    let counts: Vec<usize> = snapshot.counts().iter().map(|(_, n)| *n).collect();
    // users, retired, sessions, invites, mailed, identities, factors, passkeys, API, audit
    assert_eq!(counts, [3, 2, 4, 1, 2, 2, 2, 1, 1, 3], "{snapshot:#?}");
    assert!(snapshot.owner_exists);
    assert_eq!(snapshot.overrides.registration.as_deref(), Some("invite"));
    assert_eq!(snapshot.overrides.native_signin, Some(false));
    let ids: Vec<u64> = snapshot.audit.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [2, 3, 4]);
    let touched = snapshot
        .sessions
        .iter()
        .find(|(k, _)| *k == [3; 32])
        .expect("touched session");
    assert_eq!(touched.1.indexed_expiry, 500 + IDLE);
    assert_eq!(
        snapshot.retired_usernames,
        [
            ("alice".to_string(), "a".to_string()),
            ("ghost".into(), "gone".into())
        ]
    );
    snapshot
}

/// Import `snapshot` into `target`, export it again, and require the same.
async fn copy_into(target: &Store, snapshot: &Snapshot) {
    target.import(snapshot.clone()).await.expect("import");
    let again = target.export().await.expect("export the copy");
    assert_eq!(snapshot.differences(&again), Vec::<&str>::new());
    assert_eq!(&again, snapshot);
}

/// The copy works as the original did: every index answers, and the rules hold.
async fn works_like_the_original(store: &Store) {
    assert!(store.owner_exists().await.expect("read"));
    assert!(matches!(
        store.create_owner(owner("x", "x@example.com"), None).await,
        Err(WriteError::AlreadySetup)
    ));
    for (identifier, id) in [
        ("owner@example.com", "o"),
        ("boss", "o"),
        ("alicia", "a"),
        ("bob@example.com", "b"),
    ] {
        let user = store.find_user(identifier).await.expect("read");
        assert_eq!(user.map(|u| u.id).as_deref(), Some(id), "{identifier}");
    }
    let bob = store.get_user("b").await.expect("read").expect("bob");
    assert_eq!((bob.role, bob.status), (Role::Admin, UserStatus::Active));
    assert_eq!(bob.groups, ["ops"]);
    // Retired names stay retired; a look-alike address is refused; a taken one too.
    for (candidate, refusal) in [
        (user("n1", "n1@example.com", Some("alice")), "username"),
        (user("n2", "n2@example.com", Some("ghost")), "username"),
        (user("n3", "\u{43e}wner@example.com", None), "look-alike"),
        (user("n4", "bob@example.com", None), "email"),
    ] {
        let outcome = create(store, candidate).await;
        assert!(
            matches!(
                outcome,
                Err(WriteError::UsernameTaken
                    | WriteError::EmailConfusable
                    | WriteError::EmailTaken)
            ),
            "{refusal}: {outcome:?}"
        );
    }
    // Sessions are found with their user, listed per user, and end when they would have.
    let (s, u) = store
        .get_session(&[2; 32])
        .await
        .expect("read")
        .expect("bob's session");
    assert_eq!((s.user_id.as_str(), u.id.as_str()), ("b", "b"));
    assert_eq!(store.user_sessions("o").await.expect("list").len(), 2);
    assert_eq!(
        store
            .sweep_expired_sessions(500 + IDLE, 100)
            .await
            .expect("swept"),
        0
    );
    assert_eq!(
        store
            .sweep_expired_sessions(500 + IDLE + 1, 100)
            .await
            .expect("swept"),
        1,
        "the touched session ends at its indexed expiry"
    );
    // Invites by code, with their use counted; mailed tokens by key.
    let invite = store
        .get_invite("invite-code")
        .await
        .expect("read")
        .expect("invite");
    assert_eq!(invite.used, 1);
    assert!(store.get_token(&[41; 32]).await.expect("read").is_some());
    assert_eq!(
        store.verify_email([40; 32], 1).await.expect("used"),
        None,
        "a deleted user's token stays useless"
    );
    // Links, factors, passkeys and API tokens, each by its own key.
    let (link, linked) = store
        .find_identity("corp", "sub-b")
        .await
        .expect("read")
        .expect("identity");
    assert_eq!((link.last_login_at, linked.id.as_str()), (Some(1), "b"));
    assert_eq!(store.user_identities("a").await.expect("read").len(), 1);
    let factors = store.factors("o").await.expect("read");
    assert_eq!(factors.recovery_left(), 1);
    assert!(!store.accept_totp_step("o", 99).await.expect("replay"));
    assert!(store.accept_totp_step("o", 100).await.expect("next step"));
    let (key, holder) = store
        .find_passkey(b"credential-1")
        .await
        .expect("read")
        .expect("passkey");
    assert_eq!(
        (key.credential.as_str(), holder.id.as_str()),
        (r#"{"cred":"used"}"#, "a")
    );
    assert_eq!(store.user_passkeys("a").await.expect("read").len(), 1);
    let (token, owner_of) = store
        .find_api_token(&[50; 32])
        .await
        .expect("read")
        .expect("token");
    assert_eq!((token.last_used_at, owner_of.id.as_str()), (Some(91), "a"));
    assert_eq!(store.user_api_tokens("a").await.expect("read").len(), 1);
    // Short-lived state was left behind.
    assert_eq!(store.take_challenge([60; 32], 1).await.expect("read"), None);
    // New audit entries continue after the copied ones.
    store
        .append_audit(vec![audit_entry(200, "after_the_move")])
        .await
        .expect("audit");
    let newest = store.list_audit(None, 1).await.expect("read");
    assert_eq!(newest[0].0, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redb_store_copies_into_an_empty_one_whole_and_working() {
    let (_a, original) = redb();
    let snapshot = filled(&original).await;
    let (_b, copy) = redb();
    copy_into(&copy, &snapshot).await;
    works_like_the_original(&copy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_is_refused_by_a_store_that_holds_anything() {
    let (_a, original) = redb();
    let snapshot = filled(&original).await;
    let refused = original.import(snapshot.clone()).await;
    assert!(
        matches!(refused, Err(ImportError::NotEmpty("users"))),
        "{refused:?}"
    );
    // Even an audit entry or an override alone.
    let (_b, logged) = redb();
    logged
        .append_audit(vec![audit_entry(1, "started")])
        .await
        .expect("audit");
    let refused = logged.import(snapshot.clone()).await;
    assert!(
        matches!(refused, Err(ImportError::NotEmpty("audit entries"))),
        "{refused:?}"
    );
    let (_c, configured) = redb();
    configured
        .set_overrides(Override::Keep, Override::Set(true))
        .await
        .expect("set");
    let refused = configured.import(snapshot).await;
    assert!(
        matches!(refused, Err(ImportError::NotEmpty(k)) if k.starts_with("settings")),
        "{refused:?}"
    );
    // Short-lived state does not count.
    let (_d, busy) = redb();
    busy.put_challenge([1; 32], vec![1], 10)
        .await
        .expect("challenge");
    busy.import(Snapshot::default())
        .await
        .expect("empty enough");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_missing_users_are_refused_until_left_out() {
    let (_a, original) = redb();
    let mut snapshot = filled(&original).await;
    snapshot.users.retain(|u| u.id != "a");
    assert_eq!(
        snapshot.orphans(),
        [
            ("sessions", 1),
            ("provider identities", 1),
            ("second factors", 1),
            ("passkeys", 1),
            ("API tokens", 1)
        ]
    );
    let (_b, copy) = redb();
    let refused = copy.import(snapshot.clone()).await;
    assert!(
        matches!(&refused, Err(ImportError::Inconsistent(m)) if m.contains("1 sessions")),
        "{refused:?}"
    );
    assert_eq!(snapshot.drop_orphans(), 5);
    assert!(snapshot.orphans().is_empty());
    copy_into(&copy, &snapshot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_addresses_of_an_older_store_are_kept_and_the_first_stays_indexed() {
    let mut snapshot = Snapshot {
        users: vec![owner("boss", "boss@example.com")],
        owner_exists: true,
        ..Snapshot::default()
    };
    for (id, email, at) in [
        ("late", "0wner@example.com", 20),
        ("early", "owner@example.com", 10),
    ] {
        snapshot.users.push(crate::store::UserRecord {
            created_at: at,
            ..user(id, email, None)
        });
    }
    let snapshot = snapshot.sorted();
    let (_a, store) = redb();
    copy_into(&store, &snapshot).await;
    for (email, id) in [
        ("owner@example.com", "early"),
        ("0wner@example.com", "late"),
    ] {
        let found = store.find_user(email).await.expect("read").map(|u| u.id);
        assert_eq!(found.as_deref(), Some(id));
    }
    // The earlier account keeps the look-alike rule working for newcomers.
    assert!(matches!(
        create(&store, user("new", "owner@examp1e.com", None)).await,
        Err(WriteError::EmailConfusable)
    ));
    store.delete_user("early").await.expect("deleted");
    assert!(matches!(
        create(&store, user("new", "owner@examp1e.com", None)).await,
        Err(WriteError::EmailConfusable)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redb_store_moves_to_postgres_and_back_unchanged() {
    let (_a, original) = redb();
    let snapshot = filled(&original).await;
    let (url, shared) = postgres("snapshot_move");
    copy_into(&shared, &snapshot).await;

    // Sessions are swept by their indexed expiry; new audit ids continue after the highest.
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let expiry: i64 = db
        .query_one(
            "SELECT expires_at FROM sessions WHERE key = $1",
            &[&[3u8; 32].as_slice()],
        )
        .await
        .expect("session")
        .get(0);
    assert_eq!(expiry, 500 + IDLE);
    let next: i64 = db
        .query_one(
            "INSERT INTO audit (at, data) VALUES (1, '{}') RETURNING id",
            &[],
        )
        .await
        .expect("insert")
        .get(0);
    assert_eq!(next, 5);
    db.execute("DELETE FROM audit WHERE id = 5", &[])
        .await
        .expect("delete");

    let refused = shared.import(snapshot.clone()).await;
    assert!(
        matches!(refused, Err(ImportError::NotEmpty("users"))),
        "{refused:?}"
    );

    let from_postgres = shared.export().await.expect("export");
    let (_c, back) = redb();
    copy_into(&back, &from_postgres).await;
    assert_eq!(from_postgres, snapshot);
    works_like_the_original(&back).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_an_import_when_it_holds_anything_and_writes_nothing_then() {
    let (url, shared) = postgres("snapshot_refused");
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    db.execute("INSERT INTO audit (at, data) VALUES (1, '{}')", &[])
        .await
        .expect("insert");
    let (_a, original) = redb();
    let snapshot = filled(&original).await;
    let refused = shared.import(snapshot.clone()).await;
    assert!(
        matches!(refused, Err(ImportError::NotEmpty("audit entries"))),
        "{refused:?}"
    );
    let users: i64 = db
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(users, 0);
    // Records of a user the copy lacks are refused before anything is written.
    db.execute("DELETE FROM audit", &[]).await.expect("delete");
    let mut orphaned = snapshot;
    orphaned.users.retain(|u| u.id != "b");
    let refused = shared.import(orphaned).await;
    assert!(
        matches!(refused, Err(ImportError::Inconsistent(_))),
        "{refused:?}"
    );
    // Two users with one email: the database's rule, named.
    let mut twice = Snapshot::default();
    twice.users.push(user("1", "same@example.com", None));
    twice.users.push(user("2", "same@example.com", None));
    let refused = shared.import(twice).await;
    assert!(
        matches!(&refused, Err(ImportError::Inconsistent(m)) if m.contains("users_email_key")),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_filled_by_its_capabilities_moves_to_redb_and_postgres_unchanged() {
    let (_url, shared) = postgres("snapshot_filled");
    let snapshot = filled(&shared).await;
    let (_a, file) = redb();
    copy_into(&file, &snapshot).await;
    works_like_the_original(&file).await;
    let (_other_url, other) = postgres("snapshot_filled_copy");
    copy_into(&other, &snapshot).await;
    works_like_the_original(&other).await;
}
