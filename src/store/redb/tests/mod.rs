//! The redb backend's own tests: indexes, races decided by transactions, migrations of older
//! files, sweeps, and what each write announces. Shared fixtures here; the tests by subject in
//! the submodules.

mod factors;
mod files;
mod passkeys;
mod sessions;
mod users;

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
    store.create_user_blocking(NewAccount::of(user))
}

fn with_identity(user: UserRecord, identity: IdentityRecord, invite: Option<&str>) -> NewAccount {
    NewAccount {
        invite: invite.map(str::to_string),
        identity: Some(identity),
        ..NewAccount::of(user)
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
        username: username.map(str::to_string),
        password_hash: Some("h".into()),
        ..UserRecord::new(id, email, Role::User, UserStatus::Active, 1)
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
        amr: Vec::new(),
        stage: crate::store::SessionStage::Complete,
    }
}

fn temp_store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("sub/db.redb")).expect("opens");
    (dir, store)
}
