//! Sessions: one row each in `sessions`, keyed by the SHA-256 of the token, with the user,
//! the creation time (for the per-user cap) and `expires_at`, the effective expiry (the
//! earlier of absolute and idle expiry, also kept in the record's `indexed_expiry` as redb's
//! expiry index does), beside the record as `jsonb`. Sign-in, the session check's read,
//! logout, revocation, last-seen batches and the expiry sweep.
//!
//! How each rule is decided:
//! - A sign-in locks its user's row, so sign-ins of one user run one at a time: the per-user
//!   cap ends the oldest sessions (by creation, then key) beyond it, never the new one, and
//!   no two racing sign-ins both stay under it.
//! - A last-seen batch only updates rows that exist (a session deleted meanwhile is not
//!   brought back), only moves `last_seen` forward, and moves `expires_at` with it.
//! - The sweep deletes at most `limit` sessions whose effective expiry is before `now`, the
//!   earliest first.
//! - Ending a session (logout, the cap, a replaced session, the sweep) announces
//!   `SessionEnded`; revoking a user's sessions announces `UserChanged` once, when there were
//!   any. Opening or touching a session announces nothing.

use std::collections::HashMap;

use async_trait::async_trait;
use tokio_postgres::Transaction;

use super::users::{lock_user, replace_user, user_of};
use super::{from_json, identities, key32, to_json, PgStore};
use crate::store::records::{SessionRecord, UserRecord};
use crate::store::{
    IdentitySignIn, NewSession, SessionKey, Sessions, SignIn, StoreError, StoreEvent, WriteError,
};

#[async_trait]
impl Sessions for PgStore {
    async fn open_session(&self, sign_in: SignIn) -> Result<(), WriteError> {
        let max = self.sessions_per_user();
        self.write(move |tx| {
            Box::pin(async move {
                let SignIn {
                    session,
                    replaces,
                    identity,
                } = sign_in;
                let user_id = session.record.user_id.clone();
                let at = session.record.created_at;
                let before = lock_user(tx, &user_id).await?.ok_or(WriteError::NotFound)?;
                match identity {
                    Some(IdentitySignIn::Linked {
                        provider,
                        subject,
                        email,
                    }) => {
                        identities::note_sign_in(tx, &provider, &subject, &user_id, email, at)
                            .await?;
                    }
                    Some(IdentitySignIn::Link(mut identity)) => {
                        identity.user_id = user_id.clone();
                        identity.last_login_at = Some(at);
                        identities::link_in(tx, &identity).await?;
                    }
                    None => {}
                }
                let mut user = before.clone();
                user.last_login_at = Some(at);
                replace_user(tx, &before, &user).await?;
                insert_session(tx, &session).await?;
                let replaced: Vec<SessionKey> =
                    replaces.into_iter().filter(|k| *k != session.key).collect();
                let mut ended = delete_sessions(tx, &replaced).await?;
                ended.extend(end_oldest_sessions(tx, &user_id, &session.key, max).await?);
                let events = ended.into_iter().map(StoreEvent::SessionEnded).collect();
                Ok(((), events))
            })
        })
        .await
    }

    /// The session and its user in one query: the session check of every request.
    async fn get_session(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        let key = *key;
        self.run(move |conn| async move {
            let stmt = conn
                .prepare_cached(
                    "SELECT s.data AS session, u.data
                       FROM sessions s JOIN users u ON u.id = s.user_id
                      WHERE s.key = $1",
                )
                .await?;
            let Some(row) = conn.query_opt(&stmt, &[&key.as_slice()]).await? else {
                return Ok(None);
            };
            let session: SessionRecord = from_json(row.try_get("session")?)?;
            Ok(Some((session, user_of(&row)?)))
        })
        .await
    }

    async fn end_sessions(&self, keys: Vec<SessionKey>) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.write(move |tx| {
            Box::pin(async move {
                let ended = delete_sessions(tx, &keys).await?;
                let n = ended.len();
                Ok((n, ended.into_iter().map(StoreEvent::SessionEnded).collect()))
            })
        })
        .await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<SessionKey>,
    ) -> Result<usize, StoreError> {
        let user_id = user_id.to_string();
        self.write(move |tx| {
            Box::pin(async move {
                let n = revoke_sessions(tx, &user_id, keep.as_ref()).await?;
                let events = if n > 0 {
                    vec![StoreEvent::UserChanged(user_id)]
                } else {
                    Vec::new()
                };
                Ok((n, events))
            })
        })
        .await
    }

    async fn user_sessions(
        &self,
        user_id: &str,
    ) -> Result<Vec<(SessionKey, SessionRecord)>, StoreError> {
        let user_id = user_id.to_string();
        self.run(move |conn| async move {
            let stmt = conn
                .prepare_cached("SELECT key, data FROM sessions WHERE user_id = $1 ORDER BY key")
                .await?;
            let rows = conn.query(&stmt, &[&user_id]).await?;
            rows.iter()
                .map(|r| Ok((key32(r.try_get("key")?)?, from_json(r.try_get("data")?)?)))
                .collect()
        })
        .await
    }

    /// Nothing is announced: last-seen only moves idle expiry later, which copies in memory
    /// follow by themselves.
    async fn touch_sessions(
        &self,
        touches: Vec<(SessionKey, i64)>,
        idle_secs: i64,
    ) -> Result<usize, StoreError> {
        if touches.is_empty() {
            return Ok(0);
        }
        self.write(move |tx| {
            Box::pin(async move {
                let keys: Vec<&[u8]> = touches.iter().map(|(k, _)| k.as_slice()).collect();
                // Rows another transaction holds (a logout, a revocation, another instance's
                // batch) are skipped, not waited for: such a batch never waits for anyone, so it
                // is never part of a deadlock, and a session being ended needs no touch.
                let rows = tx
                    .query(
                        "SELECT key, data FROM sessions WHERE key = ANY($1)
                          ORDER BY key FOR UPDATE SKIP LOCKED",
                        &[&keys],
                    )
                    .await?;
                let mut stored: HashMap<SessionKey, SessionRecord> = HashMap::new();
                for row in &rows {
                    stored.insert(
                        key32(row.try_get("key")?)?,
                        from_json(row.try_get("data")?)?,
                    );
                }
                let mut updated = 0;
                let mut changed: Vec<SessionKey> = Vec::new();
                for (key, seen) in &touches {
                    let Some(record) = stored.get_mut(key) else {
                        continue;
                    };
                    if *seen <= record.last_seen {
                        continue;
                    }
                    record.last_seen = *seen;
                    record.indexed_expiry = record.effective_expiry(idle_secs);
                    updated += 1;
                    if !changed.contains(key) {
                        changed.push(*key);
                    }
                }
                for key in &changed {
                    let Some(record) = stored.get(key) else {
                        continue;
                    };
                    tx.execute(
                        "UPDATE sessions SET expires_at = $2, data = $3 WHERE key = $1",
                        &[&key.as_slice(), &record.indexed_expiry, &to_json(record)?],
                    )
                    .await?;
                }
                Ok((updated, Vec::new()))
            })
        })
        .await
    }

    async fn sweep_expired_sessions(&self, now: i64, limit: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        "DELETE FROM sessions WHERE key IN (
                             SELECT key FROM sessions WHERE expires_at < $1
                              ORDER BY expires_at, key LIMIT $2 FOR UPDATE SKIP LOCKED)
                         RETURNING key, expires_at",
                        &[&now, &limit],
                    )
                    .await?;
                let mut ended: Vec<(i64, SessionKey)> = Vec::with_capacity(rows.len());
                for row in &rows {
                    ended.push((row.try_get("expires_at")?, key32(row.try_get("key")?)?));
                }
                ended.sort();
                let n = ended.len();
                let events = ended
                    .into_iter()
                    .map(|(_, k)| StoreEvent::SessionEnded(k))
                    .collect();
                Ok((n, events))
            })
        })
        .await
    }

    async fn session_count(&self) -> Result<u64, StoreError> {
        self.run(|conn| async move {
            let row = conn.query_one("SELECT count(*) FROM sessions", &[]).await?;
            let n: i64 = row.try_get(0)?;
            Ok(u64::try_from(n).unwrap_or_default())
        })
        .await
    }

    fn set_sessions_per_user(&self, max: usize) {
        self.inner
            .sessions_per_user
            .store(max.max(1), std::sync::atomic::Ordering::Relaxed);
    }
}

/// Store a session (replacing one under the same key), its `expires_at` and `indexed_expiry`
/// set to its effective expiry.
pub(super) async fn insert_session(
    tx: &Transaction<'_>,
    session: &NewSession,
) -> Result<(), StoreError> {
    let mut record = session.record.clone();
    record.indexed_expiry = record.effective_expiry(session.idle_secs);
    tx.execute(
        "INSERT INTO sessions (key, user_id, created_at, expires_at, data)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key) DO UPDATE SET user_id = EXCLUDED.user_id,
             created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
             data = EXCLUDED.data",
        &[
            &session.key.as_slice(),
            &record.user_id,
            &record.created_at,
            &record.indexed_expiry,
            &to_json(&record)?,
        ],
    )
    .await?;
    Ok(())
}

/// Delete the sessions under `keys`; returns those that existed, in the order given.
async fn delete_sessions(
    tx: &Transaction<'_>,
    keys: &[SessionKey],
) -> Result<Vec<SessionKey>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let params: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    let rows = tx
        .query(
            "DELETE FROM sessions WHERE key = ANY($1) RETURNING key",
            &[&params],
        )
        .await?;
    let mut gone: Vec<SessionKey> = Vec::with_capacity(rows.len());
    for row in &rows {
        gone.push(key32(row.try_get("key")?)?);
    }
    let mut ended = Vec::with_capacity(gone.len());
    for key in keys {
        if gone.contains(key) && !ended.contains(key) {
            ended.push(*key);
        }
    }
    Ok(ended)
}

/// End a user's oldest sessions (by creation, to the second, then key) beyond `max`, never
/// `keep` (the one just opened); returns the sessions ended, oldest first.
async fn end_oldest_sessions(
    tx: &Transaction<'_>,
    user_id: &str,
    keep: &SessionKey,
    max: usize,
) -> Result<Vec<SessionKey>, StoreError> {
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let rows = tx
        .query(
            "DELETE FROM sessions WHERE key IN (
                 SELECT key FROM sessions WHERE user_id = $1 AND key <> $2
                  ORDER BY created_at, key
                  LIMIT GREATEST((SELECT count(*) FROM sessions WHERE user_id = $1) - $3, 0))
             RETURNING created_at, key",
            &[&user_id, &keep.as_slice(), &max],
        )
        .await?;
    let mut ended: Vec<(i64, SessionKey)> = Vec::with_capacity(rows.len());
    for row in &rows {
        ended.push((row.try_get("created_at")?, key32(row.try_get("key")?)?));
    }
    ended.sort();
    Ok(ended.into_iter().map(|(_, k)| k).collect())
}

/// Remove every session of a user except `keep`; returns how many.
pub(super) async fn revoke_sessions(
    tx: &Transaction<'_>,
    user_id: &str,
    keep: Option<&SessionKey>,
) -> Result<usize, StoreError> {
    let keep: Option<&[u8]> = keep.map(|k| k.as_slice());
    let n = tx
        .execute(
            "DELETE FROM sessions WHERE user_id = $1 AND ($2::bytea IS NULL OR key <> $2)",
            &[&user_id, &keep],
        )
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}
