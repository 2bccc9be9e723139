//! Passkeys by credential id (the primary key, so a credential is registered once, to one
//! user, whichever instance races), with a per-user index and removed with their user by the
//! foreign key; and the state of passkey ceremonies between start and finish, taken once by a
//! `DELETE ... RETURNING`, with its expiry.

use async_trait::async_trait;

use super::{from_json, to_json, PgStore};
use crate::store::{Challenges, PasskeyRecord, Passkeys, StoreError, UserRecord, WriteError};

#[async_trait]
impl Passkeys for PgStore {
    async fn user_passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
        let user_id = user_id.to_string();
        self.run(|conn| async move {
            // (Ids compared as bytes, as redb sorts them.)
            let rows = conn
                .query(
                    r#"SELECT data FROM passkeys WHERE user_id = $1
                       ORDER BY created_at, id COLLATE "C""#,
                    &[&user_id],
                )
                .await?;
            rows.iter().map(|r| from_json(r.try_get(0)?)).collect()
        })
        .await
    }

    async fn find_passkey(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<(PasskeyRecord, UserRecord)>, StoreError> {
        let credential_id = credential_id.to_vec();
        self.run(|conn| async move {
            let row = conn
                .query_opt(
                    "SELECT p.data, u.data FROM passkeys p JOIN users u ON u.id = p.user_id
                     WHERE p.credential_id = $1",
                    &[&credential_id],
                )
                .await?;
            match row {
                Some(row) => Ok(Some((
                    from_json(row.try_get(0)?)?,
                    from_json(row.try_get(1)?)?,
                ))),
                None => Ok(None),
            }
        })
        .await
    }

    async fn add_passkey(&self, passkey: PasskeyRecord) -> Result<bool, WriteError> {
        self.write(move |tx| {
            Box::pin(async move {
                // (The user may have been deleted since the ceremony started; the share lock
                // keeps them until this commits.)
                let user = tx
                    .query_opt(
                        "SELECT 1 FROM users WHERE id = $1 FOR SHARE",
                        &[&passkey.user_id],
                    )
                    .await?;
                if user.is_none() {
                    return Err(WriteError::NotFound);
                }
                let added = tx
                    .execute(
                        "INSERT INTO passkeys (credential_id, id, user_id, created_at, data)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (credential_id) DO NOTHING",
                        &[
                            &passkey.credential_id,
                            &passkey.id,
                            &passkey.user_id,
                            &passkey.created_at,
                            &to_json(&passkey)?,
                        ],
                    )
                    .await?;
                Ok((added == 1, Vec::new()))
            })
        })
        .await
    }

    async fn note_passkey_use(
        &self,
        credential_id: &[u8],
        credential: String,
        at: i64,
    ) -> Result<bool, StoreError> {
        let credential_id = credential_id.to_vec();
        self.write(move |tx| {
            Box::pin(async move {
                // Only a row still there is changed: a deleted passkey is not brought back.
                let row = tx
                    .query_opt(
                        "SELECT data FROM passkeys WHERE credential_id = $1 FOR UPDATE",
                        &[&credential_id],
                    )
                    .await?;
                let Some(row) = row else {
                    return Ok((false, Vec::new()));
                };
                let mut passkey: PasskeyRecord = from_json(row.try_get(0)?)?;
                passkey.credential = credential;
                passkey.last_used_at = Some(at);
                tx.execute(
                    "UPDATE passkeys SET data = $2 WHERE credential_id = $1",
                    &[&credential_id, &to_json(&passkey)?],
                )
                .await?;
                Ok((true, Vec::new()))
            })
        })
        .await
    }

    async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.run(|conn| async move {
            let deleted = conn
                .execute(
                    "DELETE FROM passkeys WHERE user_id = $1 AND id = $2",
                    &[&user_id, &id],
                )
                .await?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn remove_passkeys(&self, user_id: &str) -> Result<usize, StoreError> {
        let user_id = user_id.to_string();
        self.run(|conn| async move {
            let deleted = conn
                .execute("DELETE FROM passkeys WHERE user_id = $1", &[&user_id])
                .await?;
            Ok(deleted as usize)
        })
        .await
    }
}

#[async_trait]
impl Challenges for PgStore {
    async fn put_challenge(
        &self,
        key: [u8; 32],
        state: Vec<u8>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.run(move |conn| async move {
            conn.execute(
                "INSERT INTO passkey_challenges (key, expires_at, state) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE
                 SET expires_at = EXCLUDED.expires_at, state = EXCLUDED.state",
                &[&key.as_slice(), &expires_at, &state],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Removed in the statement that reads it, so one taker gets it; an expired state is
    /// removed too, and not handed out.
    async fn take_challenge(&self, key: [u8; 32], now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(move |conn| async move {
            let row = conn
                .query_opt(
                    "DELETE FROM passkey_challenges WHERE key = $1 RETURNING expires_at, state",
                    &[&key.as_slice()],
                )
                .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let expires_at: i64 = row.try_get(0)?;
            Ok((now < expires_at).then(|| row.try_get(1)).transpose()?)
        })
        .await
    }

    /// Racing sweeps skip each other's rows rather than wait for them.
    async fn sweep_expired_challenges(&self, now: i64, limit: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| async move {
            let deleted = conn
                .execute(
                    "DELETE FROM passkey_challenges WHERE key IN (
                         SELECT key FROM passkey_challenges WHERE expires_at <= $1
                         ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&now, &limit],
                )
                .await?;
            Ok(deleted as usize)
        })
        .await
    }
}
