//! API tokens by the SHA-256 of the token, with a per-user index, removed with their user by
//! the foreign key. A new token is decided with its user's row locked, so a disable, deletion
//! or expiry that commits first wins, and racing creates on any instance never go beyond the
//! per-user cap. Revoking a user's tokens happens inside the transactions that disable,
//! delete or reset the user.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{from_json, key32, to_json, PgStore};
use crate::store::{
    ApiTokenRecord, ApiTokens, SessionKey, StoreError, StoreEvent, UserRecord, UserStatus,
    WriteError,
};

#[async_trait]
impl ApiTokens for PgStore {
    async fn create_api_token(
        &self,
        key: SessionKey,
        token: ApiTokenRecord,
        max_per_user: usize,
    ) -> Result<(), WriteError> {
        self.write(move |tx| {
            Box::pin(async move {
                // Creates for one user wait for each other here (`NO KEY UPDATE`: other
                // writes referring to the user, like a new session, need not wait).
                let user = tx
                    .query_opt(
                        "SELECT data FROM users WHERE id = $1 FOR NO KEY UPDATE",
                        &[&token.user_id],
                    )
                    .await?;
                let user: Option<UserRecord> =
                    user.map(|row| from_json(row.try_get(0)?)).transpose()?;
                // Decided in the write: a disable, deletion or expiry that committed first wins.
                let usable = user.is_some_and(|u| {
                    u.status == UserStatus::Active
                        && u.expires_at.is_none_or(|t| t > token.created_at)
                });
                if !usable {
                    return Err(WriteError::NotFound);
                }
                let held: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM api_tokens WHERE user_id = $1",
                        &[&token.user_id],
                    )
                    .await?
                    .try_get(0)?;
                if usize::try_from(held).unwrap_or(usize::MAX) >= max_per_user {
                    return Err(WriteError::TooMany);
                }
                // (A key is the hash of 256 random bits: it cannot repeat; as in redb, one
                // would replace the record.)
                tx.execute(
                    "INSERT INTO api_tokens (key, id, user_id, created_at, data)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE
                     SET id = EXCLUDED.id, user_id = EXCLUDED.user_id,
                         created_at = EXCLUDED.created_at, data = EXCLUDED.data",
                    &[
                        &key.as_slice(),
                        &token.id,
                        &token.user_id,
                        &token.created_at,
                        &to_json(&token)?,
                    ],
                )
                .await?;
                Ok(((), Vec::new()))
            })
        })
        .await
    }

    async fn find_api_token(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(ApiTokenRecord, UserRecord)>, StoreError> {
        let key = *key;
        self.run(move |conn| async move {
            let row = conn
                .query_opt(
                    "SELECT t.data, u.data FROM api_tokens t JOIN users u ON u.id = t.user_id
                     WHERE t.key = $1",
                    &[&key.as_slice()],
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

    async fn user_api_tokens(&self, user_id: &str) -> Result<Vec<ApiTokenRecord>, StoreError> {
        let user_id = user_id.to_string();
        self.run(|conn| async move {
            // (Ids compared as bytes, as redb sorts them.)
            let rows = conn
                .query(
                    r#"SELECT data FROM api_tokens WHERE user_id = $1
                       ORDER BY created_at, id COLLATE "C""#,
                    &[&user_id],
                )
                .await?;
            rows.iter().map(|r| from_json(r.try_get(0)?)).collect()
        })
        .await
    }

    async fn delete_api_token(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt(
                        "DELETE FROM api_tokens WHERE key = (
                             SELECT key FROM api_tokens WHERE user_id = $1 AND id = $2
                             ORDER BY key LIMIT 1)
                         RETURNING key",
                        &[&user_id, &id],
                    )
                    .await?;
                match row {
                    Some(row) => {
                        let key = key32(row.try_get(0)?)?;
                        Ok((true, vec![StoreEvent::TokenEnded(key)]))
                    }
                    None => Ok((false, Vec::new())),
                }
            })
        })
        .await
    }

    /// The batch's tokens are locked in key order (two instances' batches never deadlock),
    /// changed as redb changes them, one use after the other, and written back together.
    async fn note_api_token_use(&self, uses: Vec<(SessionKey, i64)>) -> Result<usize, StoreError> {
        if uses.is_empty() {
            return Ok(0);
        }
        self.write(move |tx| {
            Box::pin(async move {
                let keys: Vec<&[u8]> = uses.iter().map(|(k, _)| k.as_slice()).collect();
                let rows = tx
                    .query(
                        "SELECT key, data FROM api_tokens WHERE key = ANY($1)
                         ORDER BY key FOR UPDATE",
                        &[&keys],
                    )
                    .await?;
                let mut tokens: HashMap<SessionKey, (ApiTokenRecord, bool)> = HashMap::new();
                for row in &rows {
                    let token: ApiTokenRecord = from_json(row.try_get(1)?)?;
                    tokens.insert(key32(row.try_get(0)?)?, (token, false));
                }
                let mut n = 0;
                for (key, at) in &uses {
                    // Only tokens still there: a deleted one is not brought back.
                    let Some((token, changed)) = tokens.get_mut(key) else {
                        continue;
                    };
                    if token.last_used_at.is_some_and(|t| t >= *at) {
                        continue;
                    }
                    token.last_used_at = Some(*at);
                    *changed = true;
                    n += 1;
                }
                let mut keys: Vec<&[u8]> = Vec::new();
                let mut data = Vec::new();
                for (key, (token, changed)) in &tokens {
                    if *changed {
                        keys.push(key.as_slice());
                        data.push(to_json(token)?);
                    }
                }
                if !keys.is_empty() {
                    tx.execute(
                        "UPDATE api_tokens t SET data = u.data
                         FROM unnest($1::bytea[], $2::jsonb[]) AS u (key, data)
                         WHERE t.key = u.key",
                        &[&keys, &data],
                    )
                    .await?;
                }
                Ok((n, Vec::new()))
            })
        })
        .await
    }
}
