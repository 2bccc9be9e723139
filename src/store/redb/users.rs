//! Users: creation with everything that comes with it (invite use, identity, first session),
//! profile and password changes, and the helpers that keep the email, look-alike and username
//! indexes in step inside a write transaction.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::{
    identities, lifecycle, sessions, skeletons, RedbStore, OWNER_EXISTS, RETIRED_USERNAMES,
    SETTINGS, USERS, USERS_BY_EMAIL, USERS_BY_USERNAME,
};
use crate::store::records::{self, Role, UserRecord};
use crate::store::WriteError;
use crate::store::{NewAccount, NewSession, ProfileChange, SessionKey, StoreError, StoreEvent};

impl RedbStore {
    pub(super) fn owner_exists_now(&self) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_read()?;
        let found = txn.open_table(SETTINGS)?.get(OWNER_EXISTS)?.is_some();
        Ok(found)
    }

    pub(super) fn get_user_now(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let users = txn.open_table(USERS)?;
        let found = users.get(id)?;
        found.map(|v| records::decode(v.value())).transpose()
    }

    /// A user by (canonical) email or username: an identifier with `@` is an email.
    pub(super) fn find_user_now(&self, identifier: &str) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let index = if identifier.contains('@') {
            txn.open_table(USERS_BY_EMAIL)?
        } else {
            txn.open_table(USERS_BY_USERNAME)?
        };
        let id = match index.get(identifier)? {
            Some(id) => id.value().to_string(),
            None => return Ok(None),
        };
        let users = txn.open_table(USERS)?;
        let found = users.get(id.as_str())?;
        found.map(|v| records::decode(v.value())).transpose()
    }

    pub(super) fn list_users_now(&self) -> Result<Vec<UserRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let users = txn.open_table(USERS)?;
        let mut out = Vec::new();
        for entry in users.iter()? {
            out.push(records::decode(entry?.1.value())?);
        }
        Ok(out)
    }

    pub(super) fn user_count_blocking(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(USERS)?.len()?)
    }

    /// The first owner; exactly one of racing callers wins (the write transaction serialises
    /// them and the owner flag decides).
    pub(super) fn create_owner_blocking(
        &self,
        user: UserRecord,
        session: Option<NewSession>,
    ) -> Result<UserRecord, WriteError> {
        let txn = self.db()?.begin_write()?;
        if txn.open_table(SETTINGS)?.get(OWNER_EXISTS)?.is_some() {
            return Err(WriteError::AlreadySetup);
        }
        insert_user(&txn, &user)?;
        if let Some(s) = &session {
            sessions::insert_session(&txn, &s.key, &s.record, s.idle_secs)?;
        }
        txn.commit()?;
        Ok(user)
    }

    pub(super) fn create_user_blocking(
        &self,
        account: NewAccount,
    ) -> Result<UserRecord, WriteError> {
        let NewAccount {
            mut user,
            invite,
            identity,
            session,
        } = account;
        let txn = self.db()?.begin_write()?;
        if let Some(identity) = &identity {
            if identities::read_identity(&txn, &identities::key_of(identity))?.is_some() {
                return Err(WriteError::IdentityTaken);
            }
        }
        if let Some(code) = &invite {
            let now = user.created_at;
            lifecycle::use_invite(&txn, code, now, &mut user)?;
        }
        insert_user(&txn, &user)?;
        if let Some(identity) = &identity {
            let mut identity = identity.clone();
            identity.user_id = user.id.clone();
            if session.is_some() {
                identity.last_login_at = Some(user.created_at);
            }
            identities::put_identity(&txn, &identity)?;
        }
        if let Some(s) = &session {
            sessions::insert_session(&txn, &s.key, &s.record, s.idle_secs)?;
        }
        txn.commit()?;
        Ok(user)
    }

    pub(super) fn update_profile_blocking(
        &self,
        id: &str,
        change: ProfileChange,
        now: i64,
    ) -> Result<UserRecord, WriteError> {
        let txn = self.db()?.begin_write()?;
        let before = read_user(&txn, id)?.ok_or(WriteError::NotFound)?;
        let mut user = change.applied_to(&before);
        if user == before {
            return Ok(user);
        }
        user.updated_at = now;
        replace_user(&txn, &before, &user)?;
        txn.commit()?;
        self.publish(&[StoreEvent::UserChanged(id.to_string())]);
        Ok(user)
    }

    pub(super) fn set_password_blocking(
        &self,
        id: &str,
        hash: String,
        now: i64,
        keep: Option<SessionKey>,
    ) -> Result<usize, WriteError> {
        let txn = self.db()?.begin_write()?;
        let before = read_user(&txn, id)?.ok_or(WriteError::NotFound)?;
        let mut user = before.clone();
        user.password_hash = Some(hash);
        user.updated_at = now;
        replace_user(&txn, &before, &user)?;
        let revoked = sessions::revoke_all(&txn, id, keep.as_ref())?;
        if keep.is_none() {
            super::api_tokens::revoke_user_tokens(&txn, id)?;
        }
        txn.commit()?;
        self.publish(&[StoreEvent::UserChanged(id.to_string())]);
        Ok(revoked)
    }

    /// Replace a user's stored hash only if it is still `old` (re-hash on login after a
    /// parameter change must not undo a concurrent password change).
    pub(super) fn upgrade_password_hash_blocking(
        &self,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_write()?;
        let mut upgraded = false;
        if let Some(before) = read_user(&txn, id)? {
            if before.password_hash.as_deref() == Some(old) {
                let mut user = before.clone();
                user.password_hash = Some(new.to_string());
                replace_user(&txn, &before, &user).map_err(|e| match e {
                    WriteError::Store(s) => s,
                    other => StoreError::Unavailable(other.to_string()),
                })?;
                upgraded = true;
            }
        }
        txn.commit()?;
        Ok(upgraded)
    }
}

pub(super) fn read_user(
    txn: &WriteTransaction,
    id: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let users = txn.open_table(USERS)?;
    let found = users.get(id)?;
    found.map(|v| records::decode(v.value())).transpose()
}

/// Store a new user with its index entries, refusing a taken email or username, a retired
/// username and a look-alike email.
pub(super) fn insert_user(txn: &WriteTransaction, user: &UserRecord) -> Result<(), WriteError> {
    store_user(txn, user, true)
}

/// Store a user copied from another store, as [`insert_user`] does, except that a look-alike
/// of an earlier user's address (which stores written before the look-alike rule may hold) is
/// kept without the look-alike index entry, as [`RedbStore::build_skeleton_index`] keeps it.
/// Returns whether it was such a look-alike.
pub(super) fn import_user(txn: &WriteTransaction, user: &UserRecord) -> Result<bool, WriteError> {
    match store_user(txn, user, true) {
        // Refused before anything was written.
        Err(WriteError::EmailConfusable) => store_user(txn, user, false).map(|()| true),
        other => other.map(|()| false),
    }
}

fn store_user(
    txn: &WriteTransaction,
    user: &UserRecord,
    claim_skeleton: bool,
) -> Result<(), WriteError> {
    let mut by_email = txn.open_table(USERS_BY_EMAIL)?;
    if by_email.get(user.email.as_str())?.is_some() {
        return Err(WriteError::EmailTaken);
    }
    if claim_skeleton {
        skeletons::claim_skeleton(txn, user)?;
    }
    let mut by_username = txn.open_table(USERS_BY_USERNAME)?;
    if let Some(name) = &user.username {
        if by_username.get(name.as_str())?.is_some() || !username_free_for(txn, name, &user.id)? {
            return Err(WriteError::UsernameTaken);
        }
        by_username.insert(name.as_str(), user.id.as_str())?;
    }
    by_email.insert(user.email.as_str(), user.id.as_str())?;
    txn.open_table(USERS)?
        .insert(user.id.as_str(), records::encode(user)?.as_slice())?;
    note_owner(txn, user)?;
    Ok(())
}

/// Write `after` over `before`, moving index entries whose email or username changed.
pub(super) fn replace_user(
    txn: &WriteTransaction,
    before: &UserRecord,
    after: &UserRecord,
) -> Result<(), WriteError> {
    if before.email != after.email {
        let mut by_email = txn.open_table(USERS_BY_EMAIL)?;
        if by_email.get(after.email.as_str())?.is_some() {
            return Err(WriteError::EmailTaken);
        }
        by_email.remove(before.email.as_str())?;
        by_email.insert(after.email.as_str(), after.id.as_str())?;
        skeletons::release_skeleton(txn, &before.id, &before.email)?;
        skeletons::claim_skeleton(txn, after)?;
    }
    if before.username != after.username {
        let mut by_username = txn.open_table(USERS_BY_USERNAME)?;
        if let Some(new) = &after.username {
            if by_username.get(new.as_str())?.is_some() || !username_free_for(txn, new, &after.id)?
            {
                return Err(WriteError::UsernameTaken);
            }
        }
        if let Some(old) = &before.username {
            by_username.remove(old.as_str())?;
            retire_username(txn, old, &before.id)?;
        }
        if let Some(new) = &after.username {
            by_username.insert(new.as_str(), after.id.as_str())?;
        }
    }
    txn.open_table(USERS)?
        .insert(after.id.as_str(), records::encode(after)?.as_slice())?;
    note_owner(txn, after)?;
    Ok(())
}

/// Whether `name` was never given up by anyone but `user_id` (who may take it back).
fn username_free_for(
    txn: &WriteTransaction,
    name: &str,
    user_id: &str,
) -> Result<bool, StoreError> {
    let retired = txn.open_table(RETIRED_USERNAMES)?;
    let holder = retired.get(name)?.map(|v| v.value().to_string());
    Ok(holder.is_none_or(|h| h == user_id))
}

/// Keep a username given up by `user_id` away from everyone else.
pub(super) fn retire_username(
    txn: &WriteTransaction,
    name: &str,
    user_id: &str,
) -> Result<(), StoreError> {
    let mut retired = txn.open_table(RETIRED_USERNAMES)?;
    if retired.get(name)?.is_none() {
        retired.insert(name, user_id)?;
    }
    Ok(())
}

/// Record, in the writing transaction, that an owner exists.
pub(super) fn note_owner(txn: &WriteTransaction, user: &UserRecord) -> Result<(), StoreError> {
    if user.role == Role::Owner {
        txn.open_table(SETTINGS)?
            .insert(OWNER_EXISTS, records::encode(&true)?.as_slice())?;
    }
    Ok(())
}
