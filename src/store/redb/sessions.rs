//! Sessions: sign-in (with the per-user cap and the replaced sessions), the session check's
//! read, logout, revocation, last-seen batches, the expiry sweep; and the helpers that keep the
//! session, per-user and expiry tables in step.

use redb::{
    ReadableDatabase, ReadableMultimapTable, ReadableTable, ReadableTableMetadata, WriteTransaction,
};

use super::users::{read_user, replace_user};
use super::{identities, RedbStore, SESSIONS, SESSION_EXPIRY, USERS, USER_SESSIONS};
use crate::store::records::{self, SessionRecord, UserRecord};
use crate::store::{IdentitySignIn, SessionKey, SignIn, StoreError, StoreEvent, WriteError};

impl RedbStore {
    pub(super) fn open_session_blocking(&self, sign_in: SignIn) -> Result<(), WriteError> {
        let SignIn {
            session,
            replaces,
            identity,
        } = sign_in;
        let user_id = session.record.user_id.clone();
        let txn = self.db()?.begin_write()?;
        let before = read_user(&txn, &user_id)?.ok_or(WriteError::NotFound)?;
        match identity {
            Some(IdentitySignIn::Linked {
                provider,
                subject,
                email,
            }) => {
                identities::note_sign_in(
                    &txn,
                    &provider,
                    &subject,
                    &user_id,
                    email,
                    session.record.created_at,
                )?;
            }
            Some(IdentitySignIn::Link(mut identity)) => {
                identity.user_id = user_id.clone();
                identity.last_login_at = Some(session.record.created_at);
                identities::link_in(&txn, identity)?;
            }
            None => {}
        }
        let mut user = before.clone();
        user.last_login_at = Some(session.record.created_at);
        replace_user(&txn, &before, &user)?;
        insert_session(&txn, &session.key, &session.record, session.idle_secs)?;
        let mut ended = Vec::new();
        for old in &replaces {
            if *old != session.key && remove_session(&txn, old)? {
                ended.push(StoreEvent::SessionEnded(*old));
            }
        }
        for key in end_oldest_sessions(&txn, &user_id, &session.key, self.sessions_per_user())? {
            ended.push(StoreEvent::SessionEnded(key));
        }
        txn.commit()?;
        self.publish(&ended);
        Ok(())
    }

    /// A session and its user, read in one snapshot: the session check of every request.
    pub(super) fn get_session_now(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let sessions = txn.open_table(SESSIONS)?;
        let session: SessionRecord = match sessions.get(key)? {
            Some(v) => SessionRecord::decode(v.value())?,
            None => return Ok(None),
        };
        let users = txn.open_table(USERS)?;
        let user: UserRecord = match users.get(session.user_id.as_str())? {
            Some(v) => records::decode(v.value())?,
            None => return Ok(None),
        };
        Ok(Some((session, user)))
    }

    pub(super) fn end_sessions_blocking(&self, keys: &[SessionKey]) -> Result<usize, StoreError> {
        let txn = self.db()?.begin_write()?;
        let mut ended = Vec::new();
        for key in keys {
            if remove_session(&txn, key)? {
                ended.push(StoreEvent::SessionEnded(*key));
            }
        }
        txn.commit()?;
        self.publish(&ended);
        Ok(ended.len())
    }

    pub(super) fn revoke_user_sessions_blocking(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
    ) -> Result<usize, StoreError> {
        let txn = self.db()?.begin_write()?;
        let n = revoke_all(&txn, user_id, keep)?;
        txn.commit()?;
        if n > 0 {
            self.publish(&[StoreEvent::UserChanged(user_id.to_string())]);
        }
        Ok(n)
    }

    pub(super) fn user_sessions_now(
        &self,
        user_id: &str,
    ) -> Result<Vec<(SessionKey, SessionRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let index = txn.open_multimap_table(USER_SESSIONS)?;
        let sessions = txn.open_table(SESSIONS)?;
        let mut out = Vec::new();
        for key in index.get(user_id)? {
            let key = key?.value();
            if let Some(v) = sessions.get(&key)? {
                out.push((key, SessionRecord::decode(v.value())?));
            }
        }
        Ok(out)
    }

    /// Record last-seen times (batched, off the request path). Sessions deleted meanwhile stay
    /// deleted. Returns how many were updated. Nothing is announced: last-seen only moves idle
    /// expiry later, which copies in memory follow by themselves.
    pub(super) fn touch_sessions_blocking(
        &self,
        touches: &[(SessionKey, i64)],
        idle_secs: i64,
    ) -> Result<usize, StoreError> {
        let txn = self.db()?.begin_write()?;
        let mut updated = 0;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut expiry = txn.open_table(SESSION_EXPIRY)?;
            for (key, seen) in touches {
                let mut record: SessionRecord = match sessions.get(key)? {
                    Some(v) => SessionRecord::decode(v.value())?,
                    None => continue,
                };
                if *seen <= record.last_seen {
                    continue;
                }
                expiry.remove((record.indexed_expiry, *key))?;
                record.last_seen = *seen;
                record.indexed_expiry = record.effective_expiry(idle_secs);
                expiry.insert((record.indexed_expiry, *key), ())?;
                sessions.insert(key, record.encode()?.as_slice())?;
                updated += 1;
            }
        }
        txn.commit()?;
        Ok(updated)
    }

    /// Delete sessions whose effective expiry is before `now`, at most `limit` per call.
    pub(super) fn sweep_expired_sessions_blocking(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let expired: Vec<SessionKey> = {
            let txn = self.db()?.begin_read()?;
            let expiry = txn.open_table(SESSION_EXPIRY)?;
            let mut keys = Vec::new();
            for entry in expiry.range(..(now, [0u8; 32]))? {
                if keys.len() >= limit {
                    break;
                }
                keys.push(entry?.0.value().1);
            }
            keys
        };
        if expired.is_empty() {
            return Ok(0);
        }
        self.end_sessions_blocking(&expired)
    }

    pub(super) fn session_count_now(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(SESSIONS)?.len()?)
    }
}

pub(super) fn insert_session(
    txn: &WriteTransaction,
    key: &SessionKey,
    record: &SessionRecord,
    idle_secs: i64,
) -> Result<(), StoreError> {
    let mut record = record.clone();
    record.indexed_expiry = record.effective_expiry(idle_secs);
    insert_session_indexed(txn, key, &record)
}

/// Store a session under the expiry it already carries (`indexed_expiry`), in all three tables.
pub(super) fn insert_session_indexed(
    txn: &WriteTransaction,
    key: &SessionKey,
    record: &SessionRecord,
) -> Result<(), StoreError> {
    txn.open_table(SESSIONS)?
        .insert(key, record.encode()?.as_slice())?;
    txn.open_multimap_table(USER_SESSIONS)?
        .insert(record.user_id.as_str(), key)?;
    txn.open_table(SESSION_EXPIRY)?
        .insert((record.indexed_expiry, *key), ())?;
    Ok(())
}

/// Remove a session from all three tables, using the expiry key recorded in the session.
pub(super) fn remove_session(txn: &WriteTransaction, key: &SessionKey) -> Result<bool, StoreError> {
    let mut sessions = txn.open_table(SESSIONS)?;
    let record: SessionRecord = match sessions.remove(key)? {
        Some(v) => SessionRecord::decode(v.value())?,
        None => return Ok(false),
    };
    txn.open_multimap_table(USER_SESSIONS)?
        .remove(record.user_id.as_str(), key)?;
    txn.open_table(SESSION_EXPIRY)?
        .remove((record.indexed_expiry, *key))?;
    Ok(true)
}

/// End a user's oldest sessions (by creation, to the second) beyond `max`, never `keep` (the
/// one just opened); returns the sessions ended.
pub(super) fn end_oldest_sessions(
    txn: &WriteTransaction,
    user_id: &str,
    keep: &SessionKey,
    max: usize,
) -> Result<Vec<SessionKey>, StoreError> {
    let keys: Vec<SessionKey> = {
        let index = txn.open_multimap_table(USER_SESSIONS)?;
        let mut keys = Vec::new();
        for k in index.get(user_id)? {
            keys.push(k?.value());
        }
        keys
    };
    if keys.len() <= max {
        return Ok(Vec::new());
    }
    let mut dated: Vec<(i64, SessionKey)> = Vec::with_capacity(keys.len());
    {
        let sessions = txn.open_table(SESSIONS)?;
        for key in keys.into_iter().filter(|k| k != keep) {
            let created = match sessions.get(&key)? {
                Some(v) => SessionRecord::decode(v.value())?.created_at,
                None => i64::MIN,
            };
            dated.push((created, key));
        }
    }
    dated.sort();
    // `dated` lacks `keep`, which counts towards `max`.
    let excess = (dated.len() + 1).saturating_sub(max);
    let mut ended = Vec::with_capacity(excess);
    for (_, key) in &dated[..excess] {
        remove_session(txn, key)?;
        ended.push(*key);
    }
    Ok(ended)
}

/// Remove every session of a user except `keep`; returns how many.
pub(super) fn revoke_all(
    txn: &WriteTransaction,
    user_id: &str,
    keep: Option<&SessionKey>,
) -> Result<usize, StoreError> {
    let keys: Vec<SessionKey> = {
        let index = txn.open_multimap_table(USER_SESSIONS)?;
        let mut keys = Vec::new();
        for k in index.get(user_id)? {
            let k = k?.value();
            if Some(&k) != keep {
                keys.push(k);
            }
        }
        keys
    };
    let mut n = 0;
    for key in &keys {
        if remove_session(txn, key)? {
            n += 1;
        }
    }
    Ok(n)
}
