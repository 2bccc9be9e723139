//! API tokens by the SHA-256 of the token, with a per-user index. Revoking a user's tokens
//! happens inside the transactions that disable, delete or reset the user.

use redb::{ReadableDatabase, ReadableMultimapTable, ReadableTable, WriteTransaction};

use super::users::read_user;
use super::{RedbStore, API_TOKENS, USERS, USER_API_TOKENS};
use crate::store::records::{self, ApiTokenRecord, UserRecord};
use crate::store::{SessionKey, StoreError, StoreEvent, UserStatus, WriteError};

fn token_keys(txn: &WriteTransaction, user_id: &str) -> Result<Vec<SessionKey>, StoreError> {
    let index = txn.open_multimap_table(USER_API_TOKENS)?;
    let mut keys = Vec::new();
    for k in index.get(user_id)? {
        keys.push(k?.value());
    }
    Ok(keys)
}

/// Store a token under its key, in its user's index too.
pub(super) fn put_token(
    txn: &WriteTransaction,
    key: &SessionKey,
    token: &ApiTokenRecord,
) -> Result<(), StoreError> {
    txn.open_table(API_TOKENS)?
        .insert(key, records::encode(token)?.as_slice())?;
    txn.open_multimap_table(USER_API_TOKENS)?
        .insert(token.user_id.as_str(), key)?;
    Ok(())
}

/// Remove every API token of a user, inside the transaction that disables, deletes or resets
/// them. Returns how many there were (the user's change announcement drops cached copies).
pub(super) fn revoke_user_tokens(
    txn: &WriteTransaction,
    user_id: &str,
) -> Result<usize, StoreError> {
    let keys = token_keys(txn, user_id)?;
    let mut table = txn.open_table(API_TOKENS)?;
    for key in &keys {
        table.remove(key)?;
    }
    txn.open_multimap_table(USER_API_TOKENS)?
        .remove_all(user_id)?;
    Ok(keys.len())
}

impl RedbStore {
    pub(super) fn create_api_token_blocking(
        &self,
        key: SessionKey,
        token: ApiTokenRecord,
        max_per_user: usize,
    ) -> Result<(), WriteError> {
        let txn = self.db()?.begin_write()?;
        // Decided in the write: a disable, deletion or expiry that committed first wins.
        let usable = read_user(&txn, &token.user_id)?.is_some_and(|u| {
            u.status == UserStatus::Active && u.expires_at.is_none_or(|t| t > token.created_at)
        });
        if !usable {
            return Err(WriteError::NotFound);
        }
        if token_keys(&txn, &token.user_id)?.len() >= max_per_user {
            return Err(WriteError::TooMany);
        }
        put_token(&txn, &key, &token)?;
        txn.commit()?;
        Ok(())
    }

    pub(super) fn find_api_token_now(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(ApiTokenRecord, UserRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let tokens = txn.open_table(API_TOKENS)?;
        let Some(found) = tokens.get(key)? else {
            return Ok(None);
        };
        let token: ApiTokenRecord = records::decode(found.value())?;
        let users = txn.open_table(USERS)?;
        let user = users.get(token.user_id.as_str())?;
        match user {
            Some(u) => Ok(Some((token, records::decode(u.value())?))),
            // (Cannot happen: users are deleted with their tokens.)
            None => Ok(None),
        }
    }

    pub(super) fn user_api_tokens_now(
        &self,
        user_id: &str,
    ) -> Result<Vec<ApiTokenRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let index = txn.open_multimap_table(USER_API_TOKENS)?;
        let tokens = txn.open_table(API_TOKENS)?;
        let mut out = Vec::new();
        for key in index.get(user_id)? {
            if let Some(v) = tokens.get(key?.value())? {
                out.push(records::decode::<ApiTokenRecord>(v.value())?);
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    pub(super) fn delete_api_token_blocking(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_write()?;
        let mut found = None;
        {
            let tokens = txn.open_table(API_TOKENS)?;
            for key in token_keys(&txn, user_id)? {
                if let Some(v) = tokens.get(key)? {
                    if records::decode::<ApiTokenRecord>(v.value())?.id == id {
                        found = Some(key);
                        break;
                    }
                }
            }
        }
        let Some(key) = found else {
            return Ok(false);
        };
        txn.open_table(API_TOKENS)?.remove(key)?;
        txn.open_multimap_table(USER_API_TOKENS)?
            .remove(user_id, key)?;
        txn.commit()?;
        self.publish(&[StoreEvent::TokenEnded(key)]);
        Ok(true)
    }

    pub(super) fn note_api_token_use_blocking(
        &self,
        uses: &[(SessionKey, i64)],
    ) -> Result<usize, StoreError> {
        let txn = self.db()?.begin_write()?;
        let mut n = 0;
        {
            let mut tokens = txn.open_table(API_TOKENS)?;
            for (key, at) in uses {
                let found = tokens
                    .get(key)?
                    .map(|v| records::decode::<ApiTokenRecord>(v.value()))
                    .transpose()?;
                let Some(mut token) = found else {
                    continue;
                };
                if token.last_used_at.is_some_and(|t| t >= *at) {
                    continue;
                }
                token.last_used_at = Some(*at);
                tokens.insert(key, records::encode(&token)?.as_slice())?;
                n += 1;
            }
        }
        txn.commit()?;
        Ok(n)
    }
}
