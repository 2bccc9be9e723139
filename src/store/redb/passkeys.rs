//! Passkeys by credential id, with a per-user index; and the state of passkey ceremonies
//! between start and finish, single-use, with its expiry.

use redb::{ReadableDatabase, ReadableMultimapTable, ReadableTable, WriteTransaction};

use super::users::read_user;
use super::{RedbStore, PASSKEYS, USERS, USER_PASSKEYS, WEBAUTHN_CHALLENGES};
use crate::store::records::{self, PasskeyRecord, UserRecord};
use crate::store::{StoreError, WriteError};

fn read_passkey(
    txn: &WriteTransaction,
    credential_id: &[u8],
) -> Result<Option<PasskeyRecord>, StoreError> {
    let table = txn.open_table(PASSKEYS)?;
    let found = table.get(credential_id)?;
    found.map(|v| records::decode(v.value())).transpose()
}

/// The credential ids of a user's passkeys.
fn user_credential_ids(txn: &WriteTransaction, user_id: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let index = txn.open_multimap_table(USER_PASSKEYS)?;
    let mut ids = Vec::new();
    for id in index.get(user_id)? {
        ids.push(id?.value().to_vec());
    }
    Ok(ids)
}

/// Store a passkey under its credential id, in its user's index too.
pub(super) fn put_passkey(
    txn: &WriteTransaction,
    passkey: &PasskeyRecord,
) -> Result<(), StoreError> {
    txn.open_table(PASSKEYS)?.insert(
        passkey.credential_id.as_slice(),
        records::encode(passkey)?.as_slice(),
    )?;
    txn.open_multimap_table(USER_PASSKEYS)?
        .insert(passkey.user_id.as_str(), passkey.credential_id.as_slice())?;
    Ok(())
}

/// Remove every passkey of a user (inside the transaction that deletes the user, or resets
/// their second factors). Returns how many there were.
pub(super) fn remove_user_passkeys(
    txn: &WriteTransaction,
    user_id: &str,
) -> Result<usize, StoreError> {
    let ids = user_credential_ids(txn, user_id)?;
    let mut table = txn.open_table(PASSKEYS)?;
    for id in &ids {
        table.remove(id.as_slice())?;
    }
    txn.open_multimap_table(USER_PASSKEYS)?
        .remove_all(user_id)?;
    Ok(ids.len())
}

impl RedbStore {
    /// A user's passkeys, oldest first.
    pub(super) fn user_passkeys_now(
        &self,
        user_id: &str,
    ) -> Result<Vec<PasskeyRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let index = txn.open_multimap_table(USER_PASSKEYS)?;
        let table = txn.open_table(PASSKEYS)?;
        let mut out = Vec::new();
        for id in index.get(user_id)? {
            if let Some(v) = table.get(id?.value())? {
                out.push(records::decode::<PasskeyRecord>(v.value())?);
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    pub(super) fn find_passkey_now(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<(PasskeyRecord, UserRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(PASSKEYS)?;
        let Some(found) = table.get(credential_id)? else {
            return Ok(None);
        };
        let passkey: PasskeyRecord = records::decode(found.value())?;
        let users = txn.open_table(USERS)?;
        let user = users.get(passkey.user_id.as_str())?;
        match user {
            Some(u) => Ok(Some((passkey, records::decode(u.value())?))),
            // A dangling passkey (cannot happen: users are deleted with their passkeys).
            None => Ok(None),
        }
    }

    /// Store a new passkey; false when its credential id is registered already (to anyone).
    pub(super) fn add_passkey_blocking(&self, passkey: PasskeyRecord) -> Result<bool, WriteError> {
        let txn = self.db()?.begin_write()?;
        // (The user may have been deleted since the ceremony started.)
        if read_user(&txn, &passkey.user_id)?.is_none() {
            return Err(WriteError::NotFound);
        }
        if read_passkey(&txn, &passkey.credential_id)?.is_some() {
            return Ok(false);
        }
        put_passkey(&txn, &passkey)?;
        txn.commit()?;
        Ok(true)
    }

    /// Keep the credential as a sign-in left it and when; false when the passkey is gone.
    pub(super) fn note_passkey_use_blocking(
        &self,
        credential_id: &[u8],
        credential: String,
        at: i64,
    ) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_write()?;
        let Some(mut passkey) = read_passkey(&txn, credential_id)? else {
            return Ok(false);
        };
        passkey.credential = credential;
        passkey.last_used_at = Some(at);
        txn.open_table(PASSKEYS)?
            .insert(credential_id, records::encode(&passkey)?.as_slice())?;
        txn.commit()?;
        Ok(true)
    }

    /// Delete one of a user's passkeys by its shown id; false when they have none by that id.
    pub(super) fn delete_passkey_blocking(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_write()?;
        let mut found = None;
        for credential_id in user_credential_ids(&txn, user_id)? {
            if read_passkey(&txn, &credential_id)?.is_some_and(|p| p.id == id) {
                found = Some(credential_id);
                break;
            }
        }
        let Some(credential_id) = found else {
            return Ok(false);
        };
        txn.open_table(PASSKEYS)?.remove(credential_id.as_slice())?;
        txn.open_multimap_table(USER_PASSKEYS)?
            .remove(user_id, credential_id.as_slice())?;
        txn.commit()?;
        Ok(true)
    }

    pub(super) fn remove_passkeys_blocking(&self, user_id: &str) -> Result<usize, StoreError> {
        let txn = self.db()?.begin_write()?;
        let removed = remove_user_passkeys(&txn, user_id)?;
        if removed == 0 {
            return Ok(0);
        }
        txn.commit()?;
        Ok(removed)
    }

    pub(super) fn put_challenge_blocking(
        &self,
        key: &[u8; 32],
        state: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(WEBAUTHN_CHALLENGES)?
            .insert(key, (expires_at, state))?;
        txn.commit()?;
        Ok(())
    }

    /// Remove a ceremony's state and return it unless it expired at `now`. The removal is
    /// committed before the state is handed out, so it is used once at most.
    pub(super) fn take_challenge_blocking(
        &self,
        key: &[u8; 32],
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // Most unknown keys need no write transaction (and no fsync).
        {
            let txn = self.db()?.begin_read()?;
            if txn.open_table(WEBAUTHN_CHALLENGES)?.get(key)?.is_none() {
                return Ok(None);
            }
        }
        let txn = self.db()?.begin_write()?;
        let taken = {
            let mut table = txn.open_table(WEBAUTHN_CHALLENGES)?;
            let removed = table.remove(key)?;
            removed.map(|v| {
                let (expires_at, state) = v.value();
                (expires_at, state.to_vec())
            })
        };
        let Some((expires_at, state)) = taken else {
            return Ok(None);
        };
        txn.commit()?;
        Ok((now < expires_at).then_some(state))
    }

    /// Delete ceremony states expired at `now`, at most `limit` per call.
    pub(super) fn sweep_expired_challenges_blocking(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.sweep_table(WEBAUTHN_CHALLENGES, limit, |(expires_at, _)| {
            Ok(expires_at <= now)
        })
    }
}
