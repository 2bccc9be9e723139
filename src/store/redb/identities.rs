//! Provider identities linked to users, by (provider, subject), with a per-user index.

use redb::{ReadableDatabase, ReadableMultimapTable, ReadableTable, WriteTransaction};

use super::users::read_user;
use super::{RedbStore, IDENTITIES, USERS, USER_IDENTITIES};
use crate::store::records::{self, IdentityRecord, Role, UserRecord};
use crate::store::{PasswordSignIn, StoreError, Unlink, UnlinkRule, WriteError};

/// The table key of an identity (provider names cannot contain a newline, so it is
/// unambiguous).
pub(super) fn identity_key(provider: &str, subject: &str) -> String {
    format!("{provider}\n{subject}")
}

/// [`identity_key`] of a record.
pub(super) fn key_of(identity: &IdentityRecord) -> String {
    identity_key(&identity.provider, &identity.subject)
}

pub(super) fn read_identity(
    txn: &WriteTransaction,
    key: &str,
) -> Result<Option<IdentityRecord>, StoreError> {
    let table = txn.open_table(IDENTITIES)?;
    let found = table.get(key)?;
    found.map(|v| records::decode(v.value())).transpose()
}

pub(super) fn put_identity(
    txn: &WriteTransaction,
    identity: &IdentityRecord,
) -> Result<(), StoreError> {
    let key = key_of(identity);
    txn.open_table(IDENTITIES)?
        .insert(key.as_str(), records::encode(identity)?.as_slice())?;
    txn.open_multimap_table(USER_IDENTITIES)?
        .insert(identity.user_id.as_str(), key.as_str())?;
    Ok(())
}

/// Remove every identity of a user (inside the transaction that deletes the user).
pub(super) fn remove_user_identities(
    txn: &WriteTransaction,
    user_id: &str,
) -> Result<(), StoreError> {
    let keys: Vec<String> = {
        let index = txn.open_multimap_table(USER_IDENTITIES)?;
        let mut keys = Vec::new();
        for k in index.get(user_id)? {
            keys.push(k?.value().to_string());
        }
        keys
    };
    let mut table = txn.open_table(IDENTITIES)?;
    for k in &keys {
        table.remove(k.as_str())?;
    }
    txn.open_multimap_table(USER_IDENTITIES)?
        .remove_all(user_id)?;
    Ok(())
}

/// Note a sign-in through the identity linked to `user_id` (its address as given now);
/// `NotFound` when the link went away meanwhile.
pub(super) fn note_sign_in(
    txn: &WriteTransaction,
    provider: &str,
    subject: &str,
    user_id: &str,
    email: Option<String>,
    at: i64,
) -> Result<(), WriteError> {
    let mut identity = read_identity(txn, &identity_key(provider, subject))?
        .filter(|i| i.user_id == user_id)
        .ok_or(WriteError::NotFound)?;
    identity.email = email;
    identity.last_login_at = Some(at);
    put_identity(txn, &identity)?;
    Ok(())
}

/// Link `identity` to its user inside `txn`: refused when linked to another user; re-linking
/// to the same user keeps when it was first linked.
pub(super) fn link_in(
    txn: &WriteTransaction,
    mut identity: IdentityRecord,
) -> Result<(), WriteError> {
    // (The user may have been deleted since the caller found them.)
    if read_user(txn, &identity.user_id)?.is_none() {
        return Err(WriteError::NotFound);
    }
    if let Some(existing) = read_identity(txn, &key_of(&identity))? {
        if existing.user_id != identity.user_id {
            return Err(WriteError::IdentityTaken);
        }
        identity.linked_at = existing.linked_at;
        if identity.last_login_at.is_none() {
            identity.last_login_at = existing.last_login_at;
        }
    }
    put_identity(txn, &identity)?;
    Ok(())
}

/// Whether a user keeps a way to sign in with `remaining` links (providers) under `rule`.
fn keeps_a_way_in(user: &UserRecord, remaining: &[String], rule: &UnlinkRule) -> bool {
    match rule {
        UnlinkRule::Always => true,
        UnlinkRule::KeepAWayIn {
            configured,
            password,
        } => {
            let password_counts = match password {
                PasswordSignIn::Everyone => true,
                PasswordSignIn::OwnerOnly => user.role == Role::Owner,
            };
            remaining.iter().any(|r| configured.contains(r))
                || (user.password_hash.is_some() && password_counts)
        }
    }
}

impl RedbStore {
    pub(super) fn find_identity_now(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(IdentityRecord, UserRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(IDENTITIES)?;
        let Some(found) = table.get(identity_key(provider, subject).as_str())? else {
            return Ok(None);
        };
        let identity: IdentityRecord = records::decode(found.value())?;
        let users = txn.open_table(USERS)?;
        let user = users.get(identity.user_id.as_str())?;
        match user {
            Some(u) => Ok(Some((identity, records::decode(u.value())?))),
            // A dangling link (cannot happen: users are deleted with their identities).
            None => Ok(None),
        }
    }

    /// A user's linked identities, by provider name.
    pub(super) fn user_identities_now(
        &self,
        user_id: &str,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let index = txn.open_multimap_table(USER_IDENTITIES)?;
        let table = txn.open_table(IDENTITIES)?;
        let mut out = Vec::new();
        for k in index.get(user_id)? {
            if let Some(v) = table.get(k?.value())? {
                out.push(records::decode::<IdentityRecord>(v.value())?);
            }
        }
        out.sort_by(|a, b| a.provider.cmp(&b.provider));
        Ok(out)
    }

    pub(super) fn all_identities_now(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(IDENTITIES)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(records::decode::<IdentityRecord>(entry?.1.value())?);
        }
        Ok(out)
    }

    pub(super) fn link_identity_blocking(
        &self,
        identity: IdentityRecord,
    ) -> Result<(), WriteError> {
        let txn = self.db()?.begin_write()?;
        link_in(&txn, identity)?;
        txn.commit()?;
        Ok(())
    }

    /// Remove a user's link to a provider, checked against `rule` in the same transaction
    /// (so two removals at once cannot both pass a "keep one way to sign in" rule).
    pub(super) fn unlink_identity_blocking(
        &self,
        user_id: &str,
        provider: &str,
        rule: &UnlinkRule,
    ) -> Result<Unlink, StoreError> {
        let txn = self.db()?.begin_write()?;
        let (keys, remaining) = {
            let index = txn.open_multimap_table(USER_IDENTITIES)?;
            let (mut keys, mut remaining) = (Vec::new(), Vec::new());
            for k in index.get(user_id)? {
                let k = k?.value().to_string();
                let p = k.split('\n').next().unwrap_or_default().to_string();
                if p == provider {
                    keys.push(k);
                } else {
                    remaining.push(p);
                }
            }
            (keys, remaining)
        };
        let Some(user) = read_user(&txn, user_id)? else {
            return Ok(Unlink::NotLinked);
        };
        if keys.is_empty() {
            return Ok(Unlink::NotLinked);
        }
        if !keeps_a_way_in(&user, &remaining, rule) {
            return Ok(Unlink::Refused);
        }
        for k in &keys {
            txn.open_table(IDENTITIES)?.remove(k.as_str())?;
            txn.open_multimap_table(USER_IDENTITIES)?
                .remove(user_id, k.as_str())?;
        }
        txn.commit()?;
        Ok(Unlink::Done)
    }
}
