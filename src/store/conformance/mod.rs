//! What every storage backend must guarantee, written once against [`Store`] and run on each
//! backend: uniqueness decided inside the write, races with one winner, single-use state,
//! sweeps, and what each write announces. Each case gets an empty, fresh store; counters and
//! waiting sign-ins are reached through `store.counters()` and `store.flows()`, never assumed
//! to be in memory.
//!
//! A backend runs the whole suite with one line at the end of this file:
//! `conformance_tests!(name, || async { (guard, fresh store) });` where the guard (a
//! temporary folder, a scratch database) lives as long as the test.

mod api_tokens;
mod counters;
mod events;
mod factors;
mod identities;
mod invites;
mod passkeys;
mod sessions;
mod settings;
mod users;

use std::sync::{Arc, Mutex};

use super::{
    passkey_id, IdentityRecord, Listener, NewAccount, NewSession, PasskeyRecord, Role, SessionKey,
    SessionRecord, SessionStage, SignIn, Store, StoreEvent, UserRecord, UserStatus, WriteError,
};

/// One `#[tokio::test]` per case, in a module named after the backend and then the group, so
/// a failure names the backend and the case.
macro_rules! conformance_tests {
    ($backend:ident, $fresh:expr) => {
        conformance_tests!(@cases $backend, $fresh, {
            users: [
                an_email_is_taken_once,
                one_email_wins_a_race,
                look_alike_emails_are_refused_until_their_user_is_gone,
                a_username_is_taken_once_and_follows_renames,
                one_username_wins_a_race,
                usernames_given_up_are_never_given_to_someone_else,
                setup_creates_the_first_owner_once,
                one_owner_wins_a_setup_race,
                the_last_active_owner_stays,
            ],
            sessions: [
                sessions_are_listed_per_user_and_swept_when_expired,
                a_sign_in_beyond_the_cap_ends_the_oldest_session,
                a_sign_in_replaces_the_sessions_it_presents,
                password_change_revokes_all_but_the_kept_session,
                touch_never_resurrects_a_deleted_session,
                sessions_go_with_their_user,
            ],
            invites: [
                an_invite_is_counted_with_the_new_user,
                invite_uses_are_counted_once_under_races,
                invites_are_listed_and_deleted_owner_role_only_when_asked,
                mailed_tokens_are_used_once_and_never_after_they_expire,
                expired_tokens_are_swept_in_batches_and_live_ones_stay,
            ],
            factors: [
                totp_is_confirmed_once_and_each_step_and_code_is_used_once,
                racing_requests_with_one_code_succeed_once,
                deleting_a_user_takes_their_factors,
            ],
            passkeys: [
                passkeys_are_listed_per_user_and_found_by_credential_id,
                one_registration_of_a_credential_wins_a_race,
                a_use_updates_the_credential_and_a_deleted_passkey_stays_deleted,
                passkeys_go_with_their_user,
                a_ceremony_state_is_taken_once_and_never_after_it_expires,
                one_taker_of_a_ceremony_state_wins_a_race,
            ],
            api_tokens: [
                api_tokens_are_found_by_key_and_listed_oldest_first,
                a_user_holds_at_most_the_cap_even_under_races,
                a_token_is_deleted_only_by_its_user_and_use_never_resurrects_it,
                tokens_are_revoked_with_disable_delete_and_reset,
            ],
            identities: [
                identities_are_found_by_provider_and_subject_only_and_go_with_their_user,
                an_unlink_keeps_the_last_way_in,
            ],
            settings: [
                overrides_are_set_kept_and_cleared,
                audit_is_listed_newest_first_in_pages,
                audit_past_retention_is_swept_oldest_first_in_batches,
                audit_sweep_keeps_the_newest_entry_so_ids_keep_increasing,
                audit_sweep_stops_at_an_entry_young_enough,
            ],
            counters: [
                events_are_counted_within_their_window,
                admission_checks_every_limit_and_says_which_refusal_is_first,
                racing_admissions_never_exceed_the_limit,
                locks_end_by_themselves_and_with_clear,
                flows_are_taken_once,
                a_client_at_its_limit_loses_its_oldest_flow,
                a_full_store_of_flows_drops_expired_ones_first,
            ],
            events: [
                writes_announce_exactly_what_they_changed,
                token_and_account_writes_announce_what_they_changed,
            ],
        });
    };
    (@cases $backend:ident, $fresh:expr, { $($group:ident: [$($case:ident),* $(,)?]),* $(,)? }) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                mod $group {
                    #[allow(unused_imports)]
                    use super::*;
                    $(
                        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                        async fn $case() {
                            let (_keep, store) = ($fresh)().await;
                            $crate::store::conformance::$group::$case(&store).await;
                        }
                    )*
                }
            )*
        }
    };
}

/// Records what a store announces.
#[derive(Default)]
pub(crate) struct Recorder(Mutex<Vec<StoreEvent>>);

impl Recorder {
    /// Listen to `store` from now on.
    pub(crate) fn on(store: &Store) -> Arc<Recorder> {
        let heard = Arc::new(Recorder::default());
        store.events().listen(heard.clone());
        heard
    }

    /// What was heard since the last call.
    pub(crate) fn take(&self) -> Vec<StoreEvent> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

impl Listener for Recorder {
    fn changed(&self, event: &StoreEvent) {
        self.0.lock().expect("lock").push(event.clone());
    }
}

/// An active user with a password.
pub(crate) fn user(id: &str, email: &str, username: Option<&str>) -> UserRecord {
    UserRecord {
        username: username.map(str::to_string),
        password_hash: Some("h".into()),
        ..UserRecord::new(id, email, Role::User, UserStatus::Active, 1)
    }
}

/// An active owner with a password.
pub(crate) fn owner(id: &str, email: &str) -> UserRecord {
    UserRecord {
        role: Role::Owner,
        ..user(id, email, None)
    }
}

/// Store `user` alone (no invite, identity or session).
pub(crate) async fn create(store: &Store, user: UserRecord) -> Result<UserRecord, WriteError> {
    store.create_user(NewAccount::of(user)).await
}

/// A store with an owner `o` (so users may be deleted) and a user `u`.
pub(crate) async fn owner_and_user(store: &Store) {
    store
        .create_owner(owner("o", "o@example.com"), None)
        .await
        .expect("owner");
    create(store, user("u", "u@example.com", None))
        .await
        .expect("user");
}

/// A link of `user_id` to (`provider`, `subject`), made at 1.
pub(crate) fn identity(provider: &str, subject: &str, user_id: &str) -> IdentityRecord {
    IdentityRecord {
        provider: provider.into(),
        subject: subject.into(),
        user_id: user_id.into(),
        email: None,
        linked_at: 1,
        last_login_at: None,
    }
}

/// A passkey of `user_id` named "Laptop".
pub(crate) fn passkey(credential_id: &[u8], user_id: &str, created_at: i64) -> PasskeyRecord {
    PasskeyRecord {
        id: passkey_id(credential_id),
        user_id: user_id.into(),
        credential_id: credential_id.to_vec(),
        name: "Laptop".into(),
        credential: r#"{"cred":"opaque"}"#.into(),
        created_at,
        last_used_at: None,
    }
}

/// A complete session of `user_id`.
pub(crate) fn session(user_id: &str, created: i64, expires: i64) -> SessionRecord {
    SessionRecord {
        user_id: user_id.into(),
        created_at: created,
        expires_at: expires,
        last_seen: created,
        indexed_expiry: 0,
        remember: false,
        ip: None,
        user_agent: None,
        amr: Vec::new(),
        stage: SessionStage::Complete,
    }
}

/// Open a session under `key` that replaces nothing.
pub(crate) async fn open(store: &Store, key: SessionKey, record: SessionRecord, idle_secs: i64) {
    store
        .open_session(SignIn {
            session: NewSession {
                key,
                record,
                idle_secs,
            },
            replaces: Vec::new(),
            identity: None,
        })
        .await
        .expect("session opened");
}

/// Whether the session under `key` is stored.
pub(crate) async fn has_session(store: &Store, key: SessionKey) -> bool {
    store.get_session(&key).await.expect("read").is_some()
}

/// Run `task` `n` times at once on `store` and collect the outcomes, in spawn order.
pub(crate) async fn race<T, F, Fut>(store: &Store, n: usize, task: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Store, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(task(store.clone(), i)))
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// Check racing writes' outcomes: exactly `winners` succeeded, and every other was refused
/// as `refused` allows.
pub(crate) fn assert_winners<T: std::fmt::Debug>(
    outcomes: &[Result<T, WriteError>],
    winners: usize,
    refused: fn(&WriteError) -> bool,
) {
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(won, winners, "{outcomes:?}");
    let unexpected = outcomes
        .iter()
        .any(|o| o.as_ref().is_err_and(|e| !refused(e)));
    assert!(!unexpected, "{outcomes:?}");
}

conformance_tests!(redb, || async {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_redb(&dir.path().join("db.redb"), 8 << 20).expect("opens");
    (dir, store)
});

conformance_tests!(postgres, || async {
    let url = crate::store::postgres::test_cluster::database("conformance");
    let store = crate::store::postgres::PgStore::open(&url, 4).expect("opens");
    ((), Store::new(Arc::new(store)))
});
