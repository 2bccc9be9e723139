//! Provider identities linked to users: one row each in `identities`, keyed by (provider,
//! subject), with the user it is linked to beside the record as `jsonb`.
//!
//! How each rule is decided:
//! - An identity is linked to one user: the key decides. Linking is one upsert that only
//!   overwrites a row of the same user (keeping when it was first linked, and the last
//!   sign-in unless a new one is given), so of two racing links to different users exactly
//!   one wins and the other is `IdentityTaken`. A new account's identity must be new.
//! - A link is only made for a user that still exists: the user's row is locked for the rest
//!   of the write, so a deletion cannot slip in between.
//! - An unlink locks the user's row first, so two unlinks of one user run one at a time and
//!   cannot both pass the "keep a way to sign in" rule.

use async_trait::async_trait;
use tokio_postgres::Transaction;

use super::users::{lock_user, user_of};
use super::{from_json, to_json, unique_violation, PgStore};
use crate::store::records::{IdentityRecord, Role, UserRecord};
use crate::store::{Identities, PasswordSignIn, StoreError, Unlink, UnlinkRule, WriteError};

#[async_trait]
impl Identities for PgStore {
    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(IdentityRecord, UserRecord)>, StoreError> {
        let (provider, subject) = (provider.to_string(), subject.to_string());
        self.run(move |conn| async move {
            let stmt = conn
                .prepare_cached(
                    "SELECT i.data AS identity, u.data
                       FROM identities i JOIN users u ON u.id = i.user_id
                      WHERE i.provider = $1 AND i.subject = $2",
                )
                .await?;
            let Some(row) = conn.query_opt(&stmt, &[&provider, &subject]).await? else {
                return Ok(None);
            };
            let identity: IdentityRecord = from_json(row.try_get("identity")?)?;
            Ok(Some((identity, user_of(&row)?)))
        })
        .await
    }

    /// By provider name (byte order).
    async fn user_identities(&self, user_id: &str) -> Result<Vec<IdentityRecord>, StoreError> {
        let user_id = user_id.to_string();
        self.run(move |conn| async move {
            let rows = conn
                .query(
                    "SELECT data FROM identities WHERE user_id = $1
                      ORDER BY provider COLLATE \"C\", subject COLLATE \"C\"",
                    &[&user_id],
                )
                .await?;
            rows.iter().map(|r| from_json(r.try_get("data")?)).collect()
        })
        .await
    }

    async fn all_identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        self.run(|conn| async move {
            let rows = conn
                .query(
                    "SELECT data FROM identities
                      ORDER BY provider COLLATE \"C\", subject COLLATE \"C\"",
                    &[],
                )
                .await?;
            rows.iter().map(|r| from_json(r.try_get("data")?)).collect()
        })
        .await
    }

    async fn link_identity(&self, identity: IdentityRecord) -> Result<(), WriteError> {
        self.write(move |tx| {
            Box::pin(async move {
                link_in(tx, &identity).await?;
                Ok(((), Vec::new()))
            })
        })
        .await
    }

    async fn unlink_identity(
        &self,
        user_id: &str,
        provider: &str,
        rule: UnlinkRule,
    ) -> Result<Unlink, StoreError> {
        let (user_id, provider) = (user_id.to_string(), provider.to_string());
        self.write(move |tx| {
            Box::pin(async move {
                let Some(user) = lock_user(tx, &user_id).await? else {
                    return Ok((Unlink::NotLinked, Vec::new()));
                };
                let rows = tx
                    .query(
                        "SELECT provider FROM identities WHERE user_id = $1",
                        &[&user_id],
                    )
                    .await?;
                let mut linked = false;
                let mut remaining = Vec::new();
                for row in &rows {
                    let p: String = row.try_get(0)?;
                    if p == provider {
                        linked = true;
                    } else {
                        remaining.push(p);
                    }
                }
                if !linked {
                    return Ok((Unlink::NotLinked, Vec::new()));
                }
                if !keeps_a_way_in(&user, &remaining, &rule) {
                    return Ok((Unlink::Refused, Vec::new()));
                }
                tx.execute(
                    "DELETE FROM identities WHERE user_id = $1 AND provider = $2",
                    &[&user_id, &provider],
                )
                .await?;
                Ok((Unlink::Done, Vec::new()))
            })
        })
        .await
    }
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

/// Whether (provider, subject) of `identity` is linked to anyone.
pub(super) async fn identity_exists(
    tx: &Transaction<'_>,
    identity: &IdentityRecord,
) -> Result<bool, StoreError> {
    let row = tx
        .query_opt(
            "SELECT 1 FROM identities WHERE provider = $1 AND subject = $2",
            &[&identity.provider, &identity.subject],
        )
        .await?;
    Ok(row.is_some())
}

/// Store a new identity (a new account's); `IdentityTaken` when it is linked already.
pub(super) async fn insert_identity(
    tx: &Transaction<'_>,
    identity: &IdentityRecord,
) -> Result<(), WriteError> {
    tx.execute(
        "INSERT INTO identities (provider, subject, user_id, data) VALUES ($1, $2, $3, $4)",
        &[
            &identity.provider,
            &identity.subject,
            &identity.user_id,
            &to_json(identity)?,
        ],
    )
    .await
    .map_err(|e| {
        if unique_violation(&e).is_some() {
            WriteError::IdentityTaken
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// Link `identity` to its user inside `tx`: `NotFound` when the user is gone,
/// `IdentityTaken` when it is linked to another user; re-linking to the same user keeps when
/// it was first linked (and the last sign-in, unless `identity` has one).
pub(super) async fn link_in(
    tx: &Transaction<'_>,
    identity: &IdentityRecord,
) -> Result<(), WriteError> {
    let user = tx
        .query_opt(
            "SELECT 1 FROM users WHERE id = $1 FOR SHARE",
            &[&identity.user_id],
        )
        .await?;
    if user.is_none() {
        return Err(WriteError::NotFound);
    }
    let stored = tx
        .query_opt(
            "INSERT INTO identities (provider, subject, user_id, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (provider, subject) DO UPDATE
                SET data = EXCLUDED.data || jsonb_build_object(
                    'linked_at', identities.data->'linked_at',
                    'last_login_at', COALESCE(
                        NULLIF(EXCLUDED.data->'last_login_at', 'null'::jsonb),
                        identities.data->'last_login_at'))
              WHERE identities.user_id = EXCLUDED.user_id
             RETURNING 1",
            &[
                &identity.provider,
                &identity.subject,
                &identity.user_id,
                &to_json(identity)?,
            ],
        )
        .await?;
    if stored.is_none() {
        return Err(WriteError::IdentityTaken);
    }
    Ok(())
}

/// Note a sign-in through the identity linked to `user_id` (its address as given now);
/// `NotFound` when the link went away meanwhile.
pub(super) async fn note_sign_in(
    tx: &Transaction<'_>,
    provider: &str,
    subject: &str,
    user_id: &str,
    email: Option<String>,
    at: i64,
) -> Result<(), WriteError> {
    let row = tx
        .query_opt(
            "SELECT data FROM identities
              WHERE provider = $1 AND subject = $2 AND user_id = $3 FOR UPDATE",
            &[&provider, &subject, &user_id],
        )
        .await?
        .ok_or(WriteError::NotFound)?;
    let mut identity: IdentityRecord = from_json(row.try_get("data")?)?;
    identity.email = email;
    identity.last_login_at = Some(at);
    tx.execute(
        "UPDATE identities SET data = $3 WHERE provider = $1 AND subject = $2",
        &[&provider, &subject, &to_json(&identity)?],
    )
    .await?;
    Ok(())
}

/// Remove every identity of a user (inside the transaction that deletes the user).
pub(super) async fn remove_user_identities(
    tx: &Transaction<'_>,
    user_id: &str,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM identities WHERE user_id = $1", &[&user_id])
        .await?;
    Ok(())
}
