//! Users: one row each in `users`, with the columns the uniqueness rules need (email, its
//! look-alike skeleton, username, role, status) beside the whole record as `jsonb`; creation
//! with everything that comes with it (invite use, identity, first session), profile and
//! password changes, administrators' changes, deletion and account expiry.
//!
//! How each rule is decided, inside the writing transaction:
//! - Every write that creates a user, changes an email, username, role or status, deletes a
//!   user or decides the owner first takes the accounts lock ([`Lock::Accounts`]), so those
//!   writes run one at a time as under redb's single writer, and each sees what the one before
//!   it committed. The unique constraints on email and username stay as a backstop.
//! - A taken email is `EmailTaken`; an address with the skeleton of another existing user's
//!   address is `EmailConfusable` (the other user's skeleton is computed again, so a row whose
//!   stored skeleton is stale does not count).
//! - A username is taken while another user holds it, or while it is in `retired_usernames`
//!   for someone else: a rename or a deletion retires it for good, but its holder may take it
//!   back.
//! - The owner flag is the `settings` row `owner_exists`, set in the transaction that first
//!   stores an owner and never cleared; `create_owner` checks it under the accounts lock, so
//!   of racing setups exactly one wins.
//! - An administrator's change or a deletion that leaves no active owner is rolled back
//!   (`LastOwner`). A user no longer active loses every session and API token in the same
//!   transaction.
//! - Every other change to a user (a password, a sign-in's time) locks the user's row, so no
//!   two writes of one record overwrite each other.

use async_trait::async_trait;
use tokio_postgres::{Row, Transaction};

use super::{from_json, invites, lock, sessions, to_json, unique_violation, Lock, PgStore};
use crate::store::confusable::email_skeleton;
use crate::store::records::{Role, UserRecord, UserStatus};
use crate::store::{
    AdminChange, NewAccount, NewSession, ProfileChange, SessionKey, StoreError, StoreEvent, Users,
    WriteError,
};

/// The `settings` row that says an owner has been stored (setup is done).
const OWNER_EXISTS: &str = "owner_exists";

#[async_trait]
impl Users for PgStore {
    async fn owner_exists(&self) -> Result<bool, StoreError> {
        self.run(|conn| async move {
            let stmt = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM settings WHERE name = $1)")
                .await?;
            let row = conn.query_one(&stmt, &[&OWNER_EXISTS]).await?;
            Ok(row.try_get(0)?)
        })
        .await
    }

    async fn user_count(&self) -> Result<u64, StoreError> {
        self.run(|conn| async move {
            let row = conn.query_one("SELECT count(*) FROM users", &[]).await?;
            let n: i64 = row.try_get(0)?;
            Ok(u64::try_from(n).unwrap_or_default())
        })
        .await
    }

    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let id = id.to_string();
        self.run(move |conn| async move {
            let stmt = conn
                .prepare_cached("SELECT data FROM users WHERE id = $1")
                .await?;
            conn.query_opt(&stmt, &[&id])
                .await?
                .map(|r| user_of(&r))
                .transpose()
        })
        .await
    }

    /// An identifier with `@` is an email, anything else a username.
    async fn find_user(&self, identifier: &str) -> Result<Option<UserRecord>, StoreError> {
        let identifier = identifier.to_string();
        self.run(move |conn| async move {
            let sql = if identifier.contains('@') {
                "SELECT data FROM users WHERE email = $1"
            } else {
                "SELECT data FROM users WHERE username = $1"
            };
            let stmt = conn.prepare_cached(sql).await?;
            conn.query_opt(&stmt, &[&identifier])
                .await?
                .map(|r| user_of(&r))
                .transpose()
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.run(|conn| async move {
            // Byte order, as redb keeps its keys, whatever the database's collation.
            let rows = conn
                .query("SELECT data FROM users ORDER BY id COLLATE \"C\"", &[])
                .await?;
            rows.iter().map(user_of).collect()
        })
        .await
    }

    async fn create_owner(
        &self,
        user: UserRecord,
        session: Option<NewSession>,
    ) -> Result<UserRecord, WriteError> {
        self.write(move |tx| {
            Box::pin(async move {
                lock(tx, Lock::Accounts).await?;
                let flag = tx
                    .query_opt("SELECT 1 FROM settings WHERE name = $1", &[&OWNER_EXISTS])
                    .await?;
                if flag.is_some() {
                    return Err(WriteError::AlreadySetup);
                }
                insert_user(tx, &user).await?;
                if let Some(s) = &session {
                    sessions::insert_session(tx, s).await?;
                }
                Ok((user, Vec::new()))
            })
        })
        .await
    }

    async fn create_user(&self, account: NewAccount) -> Result<UserRecord, WriteError> {
        let NewAccount {
            mut user,
            invite,
            identity,
            session,
        } = account;
        self.write(move |tx| {
            Box::pin(async move {
                lock(tx, Lock::Accounts).await?;
                if let Some(identity) = &identity {
                    if super::identities::identity_exists(tx, identity).await? {
                        return Err(WriteError::IdentityTaken);
                    }
                }
                if let Some(code) = &invite {
                    let now = user.created_at;
                    invites::use_invite(tx, code, now, &mut user).await?;
                }
                insert_user(tx, &user).await?;
                if let Some(mut identity) = identity {
                    identity.user_id = user.id.clone();
                    if session.is_some() {
                        identity.last_login_at = Some(user.created_at);
                    }
                    super::identities::insert_identity(tx, &identity).await?;
                }
                if let Some(s) = &session {
                    sessions::insert_session(tx, s).await?;
                }
                Ok((user, Vec::new()))
            })
        })
        .await
    }

    async fn update_profile(
        &self,
        id: &str,
        change: ProfileChange,
        now: i64,
    ) -> Result<UserRecord, WriteError> {
        let id = id.to_string();
        self.write(move |tx| {
            Box::pin(async move {
                if change.username.is_some() {
                    lock(tx, Lock::Accounts).await?;
                }
                let before = lock_user(tx, &id).await?.ok_or(WriteError::NotFound)?;
                let mut user = change.applied_to(&before);
                if user == before {
                    return Ok((user, Vec::new()));
                }
                user.updated_at = now;
                replace_user(tx, &before, &user).await?;
                Ok((user, vec![StoreEvent::UserChanged(id)]))
            })
        })
        .await
    }

    async fn admin_update(
        &self,
        id: &str,
        change: AdminChange,
        now: i64,
    ) -> Result<(UserRecord, usize), WriteError> {
        let id = id.to_string();
        self.write(move |tx| {
            Box::pin(async move {
                lock(tx, Lock::Accounts).await?;
                let before = lock_user(tx, &id).await?.ok_or(WriteError::NotFound)?;
                let mut user = change.applied_to(&before);
                if user == before {
                    return Ok(((user, 0), Vec::new()));
                }
                user.updated_at = now;
                replace_user(tx, &before, &user).await?;
                if active_owners(tx).await? == 0 {
                    return Err(WriteError::LastOwner);
                }
                let revoked = if user.status != UserStatus::Active {
                    revoke_api_tokens(tx, &id).await?;
                    sessions::revoke_sessions(tx, &id, None).await?
                } else {
                    0
                };
                Ok(((user, revoked), vec![StoreEvent::UserChanged(id)]))
            })
        })
        .await
    }

    /// The user goes with their sessions, identities, second factors, passkeys and API tokens
    /// (deleted here rather than left to the foreign keys, so the rule reads in one place);
    /// their username stays retired.
    async fn delete_user(&self, id: &str) -> Result<UserRecord, WriteError> {
        let id = id.to_string();
        self.write(move |tx| {
            Box::pin(async move {
                lock(tx, Lock::Accounts).await?;
                let user = lock_user(tx, &id).await?.ok_or(WriteError::NotFound)?;
                sessions::revoke_sessions(tx, &id, None).await?;
                super::identities::remove_user_identities(tx, &id).await?;
                tx.execute("DELETE FROM second_factors WHERE user_id = $1", &[&id])
                    .await?;
                tx.execute("DELETE FROM passkeys WHERE user_id = $1", &[&id])
                    .await?;
                revoke_api_tokens(tx, &id).await?;
                if let Some(name) = &user.username {
                    retire_username(tx, name, &id).await?;
                }
                tx.execute("DELETE FROM users WHERE id = $1", &[&id])
                    .await?;
                if active_owners(tx).await? == 0 {
                    return Err(WriteError::LastOwner);
                }
                Ok((user, vec![StoreEvent::UserChanged(id)]))
            })
        })
        .await
    }

    async fn set_password(
        &self,
        id: &str,
        hash: String,
        now: i64,
        keep: Option<SessionKey>,
    ) -> Result<usize, WriteError> {
        let id = id.to_string();
        self.write(move |tx| {
            Box::pin(async move {
                let before = lock_user(tx, &id).await?.ok_or(WriteError::NotFound)?;
                let mut user = before.clone();
                user.password_hash = Some(hash);
                user.updated_at = now;
                replace_user(tx, &before, &user).await?;
                let revoked = sessions::revoke_sessions(tx, &id, keep.as_ref()).await?;
                if keep.is_none() {
                    revoke_api_tokens(tx, &id).await?;
                }
                Ok((revoked, vec![StoreEvent::UserChanged(id)]))
            })
        })
        .await
    }

    /// Only if the stored hash is still `old`: a re-hash after a parameter change must not
    /// undo a concurrent password change.
    async fn upgrade_password_hash(
        &self,
        id: &str,
        old: String,
        new: String,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |tx| {
            Box::pin(async move {
                let Some(before) = lock_user(tx, &id).await? else {
                    return Ok((false, Vec::new()));
                };
                if before.password_hash.as_deref() != Some(old.as_str()) {
                    return Ok((false, Vec::new()));
                }
                let mut user = before.clone();
                user.password_hash = Some(new);
                replace_user(tx, &before, &user)
                    .await
                    .map_err(store_error)?;
                Ok((true, Vec::new()))
            })
        })
        .await
    }

    /// Found by a plain read first, so that nothing is locked while nothing expired; each
    /// candidate is read again, locked, inside the write.
    async fn expire_accounts(&self, now: i64) -> Result<(Vec<String>, usize), StoreError> {
        let candidates: Vec<String> = self
            .run(move |conn| async move {
                let rows = conn
                    .query(
                        "SELECT id FROM users
                          WHERE status = $1 AND (data->>'expires_at')::bigint <= $2
                          ORDER BY id COLLATE \"C\"",
                        &[&UserStatus::Active.as_str(), &now],
                    )
                    .await?;
                rows.iter()
                    .map(|r| r.try_get(0).map_err(StoreError::from))
                    .collect()
            })
            .await?;
        if candidates.is_empty() {
            return Ok((Vec::new(), 0));
        }
        self.write(move |tx| {
            Box::pin(async move {
                lock(tx, Lock::Accounts).await?;
                let mut removed = 0;
                let mut ids = Vec::new();
                for id in candidates {
                    let Some(before) = lock_user(tx, &id).await? else {
                        continue;
                    };
                    if before.status != UserStatus::Active
                        || before.expires_at.is_none_or(|t| t > now)
                    {
                        continue;
                    }
                    let mut after = before.clone();
                    after.status = UserStatus::Disabled;
                    after.updated_at = now;
                    replace_user(tx, &before, &after)
                        .await
                        .map_err(store_error)?;
                    removed += sessions::revoke_sessions(tx, &id, None).await?;
                    revoke_api_tokens(tx, &id).await?;
                    ids.push(id);
                }
                let events = ids
                    .iter()
                    .map(|id| StoreEvent::UserChanged(id.clone()))
                    .collect();
                Ok(((ids, removed), events))
            })
        })
        .await
    }
}

/// The user a row's `data` column holds.
pub(super) fn user_of(row: &Row) -> Result<UserRecord, StoreError> {
    from_json(row.try_get("data")?)
}

/// A user, with their row locked for the rest of `tx` (no other write of it runs meanwhile).
pub(super) async fn lock_user(
    tx: &Transaction<'_>,
    id: &str,
) -> Result<Option<UserRecord>, StoreError> {
    tx.query_opt("SELECT data FROM users WHERE id = $1 FOR UPDATE", &[&id])
        .await?
        .map(|r| user_of(&r))
        .transpose()
}

/// Store a new user, refusing a taken email or username, a retired username and a
/// look-alike email.
pub(super) async fn insert_user(tx: &Transaction<'_>, user: &UserRecord) -> Result<(), WriteError> {
    claim_email(tx, user).await?;
    if let Some(name) = &user.username {
        claim_username(tx, name, &user.id).await?;
    }
    write_row(
        tx,
        "INSERT INTO users (id, email, email_skeleton, username, role, status, created_at, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        user,
    )
    .await
}

/// Write `after` over `before`, checking an email or username that changed (the old username
/// is retired).
pub(super) async fn replace_user(
    tx: &Transaction<'_>,
    before: &UserRecord,
    after: &UserRecord,
) -> Result<(), WriteError> {
    if before.email != after.email {
        claim_email(tx, after).await?;
    }
    if before.username != after.username {
        if let Some(new) = &after.username {
            claim_username(tx, new, &after.id).await?;
        }
        if let Some(old) = &before.username {
            retire_username(tx, old, &before.id).await?;
        }
    }
    write_row(
        tx,
        "UPDATE users SET email = $2, email_skeleton = $3, username = $4, role = $5,
                          status = $6, created_at = $7, data = $8
          WHERE id = $1",
        after,
    )
    .await
}

/// Run `sql` (an insert or an update of `users`, its parameters in the order id, email,
/// email skeleton, username, role, status, creation time, record) for `user`, and note an
/// owner.
async fn write_row(tx: &Transaction<'_>, sql: &str, user: &UserRecord) -> Result<(), WriteError> {
    tx.execute(
        sql,
        &[
            &user.id,
            &user.email,
            &email_skeleton(&user.email),
            &user.username,
            &user.role.as_str(),
            &user.status.as_str(),
            &user.created_at,
            &to_json(user)?,
        ],
    )
    .await
    .map_err(refused)?;
    note_owner(tx, user).await?;
    Ok(())
}

/// Refuse `user`'s email when another user has it (`EmailTaken`) or an address that looks
/// like it (`EmailConfusable`).
async fn claim_email(tx: &Transaction<'_>, user: &UserRecord) -> Result<(), WriteError> {
    let taken = tx
        .query_opt(
            "SELECT 1 FROM users WHERE email = $1 AND id <> $2",
            &[&user.email, &user.id],
        )
        .await?;
    if taken.is_some() {
        return Err(WriteError::EmailTaken);
    }
    let skeleton = email_skeleton(&user.email);
    let alike = tx
        .query(
            "SELECT email FROM users WHERE email_skeleton = $1 AND id <> $2",
            &[&skeleton, &user.id],
        )
        .await?;
    for row in &alike {
        // A skeleton stored by an older build (other Unicode data) may be stale: only the
        // address as it is computed now counts.
        let email: String = row.try_get(0)?;
        if email_skeleton(&email) == skeleton {
            return Err(WriteError::EmailConfusable);
        }
    }
    Ok(())
}

/// Refuse `name` when another user holds it or gave it up (`UsernameTaken`).
async fn claim_username(tx: &Transaction<'_>, name: &str, user_id: &str) -> Result<(), WriteError> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM users WHERE username = $1 AND id <> $2)
                 OR EXISTS (SELECT 1 FROM retired_usernames WHERE username = $1 AND user_id <> $2)",
            &[&name, &user_id],
        )
        .await?;
    if row.try_get::<_, bool>(0)? {
        return Err(WriteError::UsernameTaken);
    }
    Ok(())
}

/// Keep a username given up by `user_id` away from everyone else (the first holder stays
/// recorded).
async fn retire_username(
    tx: &Transaction<'_>,
    name: &str,
    user_id: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO retired_usernames (username, user_id) VALUES ($1, $2)
         ON CONFLICT (username) DO NOTHING",
        &[&name, &user_id],
    )
    .await?;
    Ok(())
}

/// Record, in the writing transaction, that an owner exists.
async fn note_owner(tx: &Transaction<'_>, user: &UserRecord) -> Result<(), StoreError> {
    if user.role == Role::Owner {
        tx.execute(
            "INSERT INTO settings (name, value) VALUES ($1, 'true'::jsonb)
             ON CONFLICT (name) DO NOTHING",
            &[&OWNER_EXISTS],
        )
        .await?;
    }
    Ok(())
}

/// Active owners, as `tx` sees them.
async fn active_owners(tx: &Transaction<'_>) -> Result<i64, StoreError> {
    let row = tx
        .query_one(
            "SELECT count(*) FROM users WHERE role = $1 AND status = $2",
            &[&Role::Owner.as_str(), &UserStatus::Active.as_str()],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Remove every API token of a user, inside the transaction that disables, deletes or resets
/// them. Nothing is announced for each: the user's change announcement drops cached copies.
pub(super) async fn revoke_api_tokens(
    tx: &Transaction<'_>,
    user_id: &str,
) -> Result<u64, StoreError> {
    Ok(tx
        .execute("DELETE FROM api_tokens WHERE user_id = $1", &[&user_id])
        .await?)
}

/// A unique constraint broken despite the checks (a backstop) as the refusal it stands for.
fn refused(e: tokio_postgres::Error) -> WriteError {
    let refusal = match unique_violation(&e) {
        Some("users_email_key") => Some(WriteError::EmailTaken),
        Some("users_username_key") => Some(WriteError::UsernameTaken),
        _ => None,
    };
    refusal.unwrap_or_else(|| e.into())
}

/// A write refusal where only a storage failure is expected.
fn store_error(e: WriteError) -> StoreError {
    match e {
        WriteError::Store(s) => s,
        other => StoreError::Unavailable(other.to_string()),
    }
}
