//! The look-alike index: every user's email skeleton (UTS #39) → the user, so an address that
//! looks like an existing account's (a Cyrillic `о`, an accent, `rn` for `m`) is refused.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::{RedbStore, USERS, USERS_BY_EMAIL_SKELETON};
use crate::store::confusable::email_skeleton;
use crate::store::records::{self, UserRecord};
use crate::store::{StoreError, WriteError as UserWriteError};

/// Index `user`'s skeleton, refusing (`EmailConfusable`) one that belongs to another user.
pub(super) fn claim_skeleton(
    txn: &WriteTransaction,
    user: &UserRecord,
) -> Result<(), UserWriteError> {
    let skeleton = email_skeleton(&user.email);
    let mut index = txn
        .open_table(USERS_BY_EMAIL_SKELETON)
        .map_err(StoreError::from)?;
    let owner = index
        .get(skeleton.as_str())
        .map_err(StoreError::from)?
        .map(|v| v.value().to_string());
    if let Some(other) = owner.filter(|o| *o != user.id) {
        if still_has_skeleton(txn, &other, &skeleton)? {
            return Err(UserWriteError::EmailConfusable);
        }
    }
    index
        .insert(skeleton.as_str(), user.id.as_str())
        .map_err(StoreError::from)?;
    Ok(())
}

/// Whether user `id` exists with an address of this skeleton. An entry whose user is gone or
/// whose skeleton is computed differently now (newer Unicode data) is stale and may be taken.
fn still_has_skeleton(
    txn: &WriteTransaction,
    id: &str,
    skeleton: &str,
) -> Result<bool, StoreError> {
    let users = txn.open_table(USERS)?;
    let found = users.get(id)?;
    match found {
        Some(v) => {
            let user: UserRecord = records::decode(v.value())?;
            Ok(email_skeleton(&user.email) == skeleton)
        }
        None => Ok(false),
    }
}

/// Drop the index entry of `email` if it belongs to `user_id`. A look-alike that an older
/// database let in (see [`RedbStore::build_skeleton_index`]) takes the entry over, so that the
/// index keeps covering every stored address.
pub(super) fn release_skeleton(
    txn: &WriteTransaction,
    user_id: &str,
    email: &str,
) -> Result<(), StoreError> {
    let skeleton = email_skeleton(email);
    let mut index = txn.open_table(USERS_BY_EMAIL_SKELETON)?;
    let owned = index
        .get(skeleton.as_str())?
        .is_some_and(|v| v.value() == user_id);
    if !owned {
        return Ok(());
    }
    index.remove(skeleton.as_str())?;
    let mut heir: Option<UserRecord> = None;
    for entry in txn.open_table(USERS)?.iter()? {
        let user: UserRecord = records::decode(entry?.1.value())?;
        if user.id != user_id
            && email_skeleton(&user.email) == skeleton
            && heir.as_ref().is_none_or(|h| arrival(&user) < arrival(h))
        {
            heir = Some(user);
        }
    }
    if let Some(heir) = heir {
        index.insert(skeleton.as_str(), heir.id.as_str())?;
    }
    Ok(())
}

/// The order in which accounts were registered (ids break ties): the first of two look-alikes
/// keeps the index entry.
fn arrival(user: &UserRecord) -> (i64, &str) {
    (user.created_at, user.id.as_str())
}

impl RedbStore {
    /// Databases written before the index existed: build it when it is empty while users
    /// exist, the earliest account keeping a skeleton that several share (the others are
    /// logged). Never stops start-up; without the index look-alikes are simply not refused.
    pub(super) fn build_skeleton_index(&self) {
        match self.try_build_skeleton_index() {
            Ok(0) => {}
            Ok(n) => tracing::info!(users = n, "indexed the look-alike forms of email addresses"),
            Err(e) => tracing::warn!(
                error = %e,
                "could not index the look-alike forms of email addresses; look-alikes of existing addresses are not refused"
            ),
        }
    }

    /// Returns how many users were indexed.
    fn try_build_skeleton_index(&self) -> Result<usize, StoreError> {
        let db = self.db()?;
        {
            let txn = db.begin_read()?;
            if txn.open_table(USERS_BY_EMAIL_SKELETON)?.len()? > 0
                || txn.open_table(USERS)?.is_empty()?
            {
                return Ok(0);
            }
        }
        let txn = db.begin_write()?;
        let mut users: Vec<UserRecord> = Vec::new();
        for entry in txn.open_table(USERS)?.iter()? {
            let (id, value) = entry?;
            match records::decode(value.value()) {
                Ok(user) => users.push(user),
                Err(e) => {
                    tracing::warn!(user = id.value(), error = %e, "user not indexed by look-alike email")
                }
            }
        }
        users.sort_by(|a, b| arrival(a).cmp(&arrival(b)));
        let mut indexed = 0;
        {
            let mut index = txn.open_table(USERS_BY_EMAIL_SKELETON)?;
            for user in &users {
                let skeleton = email_skeleton(&user.email);
                let first = index.get(skeleton.as_str())?.map(|v| v.value().to_string());
                match first {
                    Some(first) => tracing::warn!(
                        user = %user.id,
                        looks_like = %first,
                        "two accounts have email addresses that look alike; the later one is kept but not indexed (change or delete one of them)"
                    ),
                    None => {
                        index.insert(skeleton.as_str(), user.id.as_str())?;
                        indexed += 1;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(indexed)
    }
}
