//! The redb backend's own tests: the file across reopening, refusing garbage, migrations of
//! older files, and the look-alike index. What every backend must guarantee is in
//! [`crate::store::conformance`], which runs on this one too.

mod files;
mod skeletons;

use redb::{Database, ReadableDatabase, TableHandle as _};

use super::users::{read_user, replace_user};
use super::*;
use crate::store::conformance::{passkey, user};
use crate::store::records::{invite_id, invite_key};
use crate::store::{email_skeleton, NewAccount, Override, WriteError};

fn create(store: &RedbStore, user: UserRecord) -> Result<UserRecord, WriteError> {
    store.create_user_blocking(NewAccount::of(user))
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

fn temp_store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("sub/db.redb")).expect("opens");
    (dir, store)
}
