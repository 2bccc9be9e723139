//! Invites and mailed tokens. Invites are rows of `invites` keyed by the SHA-256 of their
//! code (the code itself is never stored), with the id they are shown and deleted by
//! ([`invite_id`] of the key); mailed tokens are rows of `mail_tokens` keyed by the SHA-256
//! of the token, with their user and expiry for the sweep. Both keep the record as `jsonb`.
//!
//! How each rule is decided:
//! - An invite's use is counted in the transaction that creates the account, with the
//!   invite's row locked, so racing registrations never use it more often than it allows
//!   (they also hold the accounts lock); a refused account leaves the count as it was.
//! - A mailed token is burnt by the transaction that uses it, with its row locked: of two
//!   racing uses one finds it, the other finds nothing. A token of the other kind is left
//!   as it is; an expired one is burnt and changes nothing. A reset sets the password and ends
//!   every session and API token of the user in the same transaction.
//! - Tokens are unusable from their `expires_at` on, and swept from then.

use async_trait::async_trait;
use tokio_postgres::Transaction;

use super::users::{lock_user, replace_user, revoke_api_tokens};
use super::{from_json, sessions, to_json, PgStore};
use crate::store::records::{
    invite_id, invite_key, InviteRecord, Role, TokenKind, TokenRecord, UserRecord, UserStatus,
};
use crate::store::{Invites, MailTokens, SessionKey, StoreError, StoreEvent, WriteError};

#[async_trait]
impl Invites for PgStore {
    async fn create_invite(&self, code: String, invite: InviteRecord) -> Result<(), StoreError> {
        self.write(move |tx| {
            Box::pin(async move {
                let key = invite_key(&code);
                tx.execute(
                    "INSERT INTO invites (key, id, data) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO UPDATE SET id = EXCLUDED.id, data = EXCLUDED.data",
                    &[&key.as_slice(), &invite_id(&key), &to_json(&invite)?],
                )
                .await?;
                Ok(((), Vec::new()))
            })
        })
        .await
    }

    async fn get_invite(&self, code: &str) -> Result<Option<InviteRecord>, StoreError> {
        self.record_by_key("SELECT data FROM invites WHERE key = $1", invite_key(code))
            .await
    }

    async fn list_invites(&self) -> Result<Vec<InviteRecord>, StoreError> {
        self.run(|conn| async move {
            let rows = conn
                .query("SELECT data FROM invites ORDER BY key", &[])
                .await?;
            rows.iter().map(|r| from_json(r.try_get("data")?)).collect()
        })
        .await
    }

    async fn delete_invite(&self, id: &str, owner_role_too: bool) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |tx| {
            Box::pin(async move {
                let Some(row) = tx
                    .query_opt(
                        "SELECT key, data FROM invites WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )
                    .await?
                else {
                    return Ok((false, Vec::new()));
                };
                let invite: InviteRecord = from_json(row.try_get("data")?)?;
                if invite.role == Role::Owner && !owner_role_too {
                    return Ok((false, Vec::new()));
                }
                let key: &[u8] = row.try_get("key")?;
                let n = tx
                    .execute("DELETE FROM invites WHERE key = $1", &[&key])
                    .await?;
                Ok((n > 0, Vec::new()))
            })
        })
        .await
    }
}

#[async_trait]
impl MailTokens for PgStore {
    async fn put_token(&self, key: SessionKey, token: TokenRecord) -> Result<(), StoreError> {
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO mail_tokens (key, user_id, expires_at, data)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (key) DO UPDATE SET user_id = EXCLUDED.user_id,
                         expires_at = EXCLUDED.expires_at, data = EXCLUDED.data",
                    &[
                        &key.as_slice(),
                        &token.user_id,
                        &token.expires_at,
                        &to_json(&token)?,
                    ],
                )
                .await?;
                Ok(((), Vec::new()))
            })
        })
        .await
    }

    async fn get_token(&self, key: &SessionKey) -> Result<Option<TokenRecord>, StoreError> {
        self.record_by_key("SELECT data FROM mail_tokens WHERE key = $1", *key)
            .await
    }

    async fn reset_password(
        &self,
        key: SessionKey,
        hash: String,
        now: i64,
    ) -> Result<Option<String>, WriteError> {
        self.redeem(key, TokenKind::PasswordReset, Some(hash), now)
            .await
    }

    async fn verify_email(&self, key: SessionKey, now: i64) -> Result<Option<String>, WriteError> {
        self.redeem(key, TokenKind::EmailVerification, None, now)
            .await
    }

    async fn sweep_expired_tokens(&self, now: i64, limit: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        "DELETE FROM mail_tokens WHERE key IN (
                             SELECT key FROM mail_tokens WHERE expires_at <= $1
                              ORDER BY expires_at, key LIMIT $2 FOR UPDATE SKIP LOCKED)",
                        &[&now, &limit],
                    )
                    .await?;
                Ok((usize::try_from(n).unwrap_or(usize::MAX), Vec::new()))
            })
        })
        .await
    }
}

impl PgStore {
    /// The record `sql` reads (its `data`) under a 32-byte `key`.
    async fn record_by_key<T>(
        &self,
        sql: &'static str,
        key: [u8; 32],
    ) -> Result<Option<T>, StoreError>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        self.run(move |conn| async move {
            let stmt = conn.prepare_cached(sql).await?;
            conn.query_opt(&stmt, &[&key.as_slice()])
                .await?
                .map(|r| from_json(r.try_get("data")?))
                .transpose()
        })
        .await
    }

    /// Redeem a single-use token of `kind`: change its user as `kind` says (a reset also sets
    /// `hash` and ends every session and API token) and burn the token, in one transaction.
    /// Returns the user id, or `None` for an unknown, used, expired or wrong-kind token.
    async fn redeem(
        &self,
        key: SessionKey,
        kind: TokenKind,
        hash: Option<String>,
        now: i64,
    ) -> Result<Option<String>, WriteError> {
        self.write(move |tx| {
            Box::pin(async move {
                let user = match take_token(tx, &key, kind, now).await? {
                    Some(token) => lock_user(tx, &token.user_id).await?,
                    None => None,
                };
                let Some(before) = user else {
                    return Ok((None, Vec::new()));
                };
                let mut user = before.clone();
                match kind {
                    TokenKind::PasswordReset => user.password_hash = hash,
                    TokenKind::EmailVerification => user.email_verified = true,
                }
                user.updated_at = now;
                replace_user(tx, &before, &user).await?;
                if kind == TokenKind::PasswordReset {
                    sessions::revoke_sessions(tx, &user.id, None).await?;
                    revoke_api_tokens(tx, &user.id).await?;
                }
                let events = vec![StoreEvent::UserChanged(user.id.clone())];
                Ok((Some(user.id), events))
            })
        })
        .await
    }
}

/// Take a token of `kind` out (it is burnt when `tx` commits, whatever happens next), if
/// still valid at `now`. A token of another kind stays.
async fn take_token(
    tx: &Transaction<'_>,
    key: &SessionKey,
    kind: TokenKind,
    now: i64,
) -> Result<Option<TokenRecord>, StoreError> {
    let Some(row) = tx
        .query_opt(
            "SELECT data FROM mail_tokens WHERE key = $1 FOR UPDATE",
            &[&key.as_slice()],
        )
        .await?
    else {
        return Ok(None);
    };
    let token: TokenRecord = from_json(row.try_get("data")?)?;
    if token.kind != kind {
        return Ok(None);
    }
    tx.execute("DELETE FROM mail_tokens WHERE key = $1", &[&key.as_slice()])
        .await?;
    Ok((now < token.expires_at).then_some(token))
}

/// Count one use of an invite inside `tx` (its row locked) and give `user` its role and
/// groups (added to the user's own) and active status; `InviteInvalid` when it is unknown,
/// used up or expired at `now`.
pub(super) async fn use_invite(
    tx: &Transaction<'_>,
    code: &str,
    now: i64,
    user: &mut UserRecord,
) -> Result<(), WriteError> {
    let key = invite_key(code);
    let row = tx
        .query_opt(
            "SELECT data FROM invites WHERE key = $1 FOR UPDATE",
            &[&key.as_slice()],
        )
        .await?
        .ok_or(WriteError::InviteInvalid)?;
    let mut invite: InviteRecord = from_json(row.try_get("data")?)?;
    if !invite.usable(now) {
        return Err(WriteError::InviteInvalid);
    }
    invite.used += 1;
    user.role = invite.role;
    let own = std::mem::replace(&mut user.groups, invite.groups.clone());
    for g in own {
        if !user.groups.contains(&g) {
            user.groups.push(g);
        }
    }
    user.status = UserStatus::Active;
    tx.execute(
        "UPDATE invites SET data = $2 WHERE key = $1",
        &[&key.as_slice(), &to_json(&invite)?],
    )
    .await?;
    Ok(())
}
