//! Account lifecycle: invites (by the hash of their code), mailed tokens, administrators'
//! changes with last-owner protection, deletion, account expiry.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::users::{read_user, replace_user, retire_username};
use super::{
    identities, passkeys, sessions, skeletons, RedbStore, INVITES, INVITES_V1, TOKENS, USERS,
    USERS_BY_EMAIL, USERS_BY_USERNAME, USER_SESSIONS,
};
use crate::store::records::{
    self, invite_id, invite_key, InviteRecord, InviteRecordV1, Role, TokenKind, TokenRecord,
    UserRecord, UserStatus,
};
use crate::store::{AdminChange, SessionKey, StoreError, StoreEvent, WriteError};

/// Move invites stored with their code in clear (`invites_v1`) to `invites_v2`, keyed by the
/// code's hash, and drop the old table.
pub(super) fn migrate_invites(txn: &WriteTransaction) -> Result<usize, StoreError> {
    let old: Vec<InviteRecordV1> = {
        let table = txn.open_table(INVITES_V1)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(records::decode(entry?.1.value())?);
        }
        out
    };
    {
        let mut table = txn.open_table(INVITES)?;
        for v1 in &old {
            let key = invite_key(&v1.code);
            let record = InviteRecord {
                id: invite_id(&key),
                role: v1.role,
                groups: v1.groups.clone(),
                max_uses: v1.max_uses,
                used: v1.used,
                expires_at: v1.expires_at,
                created_by: v1.created_by.clone(),
                created_at: v1.created_at,
            };
            table.insert(&key, records::encode(&record)?.as_slice())?;
        }
    }
    txn.delete_table(INVITES_V1)?;
    Ok(old.len())
}

/// Count one use of an invite inside `txn` and give `user` its role and groups (added to the
/// user's own) and active status.
pub(super) fn use_invite(
    txn: &WriteTransaction,
    code: &str,
    now: i64,
    user: &mut UserRecord,
) -> Result<(), WriteError> {
    let key = invite_key(code);
    let mut table = txn.open_table(INVITES)?;
    let mut invite: InviteRecord = match table.get(&key)? {
        Some(v) => records::decode(v.value())?,
        None => return Err(WriteError::InviteInvalid),
    };
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
    table.insert(&key, records::encode(&invite)?.as_slice())?;
    Ok(())
}

/// Active owners in `txn`.
fn active_owners(txn: &WriteTransaction) -> Result<usize, StoreError> {
    let users = txn.open_table(USERS)?;
    let mut n = 0;
    for entry in users.iter()? {
        let u: UserRecord = records::decode(entry?.1.value())?;
        if u.role == Role::Owner && u.status == UserStatus::Active {
            n += 1;
        }
    }
    Ok(n)
}

/// Take a token of `kind` out of `txn` (it is burnt whatever happens next), if still valid.
fn take_token(
    txn: &WriteTransaction,
    key: &SessionKey,
    kind: TokenKind,
    now: i64,
) -> Result<Option<TokenRecord>, StoreError> {
    let mut table = txn.open_table(TOKENS)?;
    let token: TokenRecord = match table.remove(key)? {
        Some(v) => records::decode(v.value())?,
        None => return Ok(None),
    };
    if token.kind != kind {
        // Not this kind: put it back untouched.
        table.insert(key, records::encode(&token)?.as_slice())?;
        return Ok(None);
    }
    Ok((now < token.expires_at).then_some(token))
}

impl RedbStore {
    pub(super) fn create_invite_blocking(
        &self,
        code: &str,
        invite: &InviteRecord,
    ) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(INVITES)?
            .insert(&invite_key(code), records::encode(invite)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    pub(super) fn get_invite_now(&self, code: &str) -> Result<Option<InviteRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(INVITES)?;
        let found = table.get(&invite_key(code))?;
        found.map(|v| records::decode(v.value())).transpose()
    }

    pub(super) fn list_invites_now(&self) -> Result<Vec<InviteRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(INVITES)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(records::decode(entry?.1.value())?);
        }
        Ok(out)
    }

    pub(super) fn delete_invite_blocking(
        &self,
        id: &str,
        owner_role_too: bool,
    ) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_write()?;
        let deleted = {
            let mut table = txn.open_table(INVITES)?;
            let mut found = None;
            for entry in table.iter()? {
                let (k, v) = entry?;
                let invite: InviteRecord = records::decode(v.value())?;
                if invite.id == id {
                    found = Some((k.value(), invite));
                    break;
                }
            }
            match found {
                Some((key, invite)) if owner_role_too || invite.role != Role::Owner => {
                    table.remove(&key)?.is_some()
                }
                _ => false,
            }
        };
        txn.commit()?;
        Ok(deleted)
    }

    pub(super) fn put_token_blocking(
        &self,
        key: &SessionKey,
        token: &TokenRecord,
    ) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(TOKENS)?
            .insert(key, records::encode(token)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    pub(super) fn get_token_now(
        &self,
        key: &SessionKey,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(TOKENS)?;
        let found = table.get(key)?;
        found.map(|v| records::decode(v.value())).transpose()
    }

    /// Delete mailed tokens whose `expires_at` has passed, at most `limit` per call.
    pub(super) fn sweep_expired_tokens_blocking(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.sweep_table(TOKENS, limit, |v| {
            Ok(records::decode::<TokenRecord>(v)?.expires_at <= now)
        })
    }

    /// Delete at most `limit` entries of `table` that `expired` picks. They are found in a read
    /// transaction so the write lock is held only for the deletions; one used meanwhile is
    /// already gone and not counted.
    pub(super) fn sweep_table<V: redb::Value + 'static>(
        &self,
        table: TableDefinition<SessionKey, V>,
        limit: usize,
        expired: impl for<'a> Fn(V::SelfType<'a>) -> Result<bool, StoreError>,
    ) -> Result<usize, StoreError> {
        let keys: Vec<SessionKey> = {
            let txn = self.db()?.begin_read()?;
            let read = txn.open_table(table)?;
            let mut keys = Vec::new();
            for entry in read.iter()? {
                if keys.len() >= limit {
                    break;
                }
                let (k, v) = entry?;
                if expired(v.value())? {
                    keys.push(k.value());
                }
            }
            keys
        };
        if keys.is_empty() {
            return Ok(0);
        }
        let txn = self.db()?.begin_write()?;
        let mut removed = 0;
        {
            let mut write = txn.open_table(table)?;
            for key in &keys {
                if write.remove(key)?.is_some() {
                    removed += 1;
                }
            }
        }
        txn.commit()?;
        Ok(removed)
    }

    /// Redeem a single-use token of `kind`: change its user as `kind` says (a reset also sets
    /// `hash` and ends every session) and burn the token, in one transaction. Returns the user
    /// id, or `None` for an unknown, used, expired or wrong-kind token.
    pub(super) fn redeem_token_blocking(
        &self,
        key: &SessionKey,
        kind: TokenKind,
        hash: Option<String>,
        now: i64,
    ) -> Result<Option<String>, WriteError> {
        let txn = self.db()?.begin_write()?;
        let user = match take_token(&txn, key, kind, now)? {
            Some(token) => read_user(&txn, &token.user_id)?,
            None => None,
        };
        let Some(before) = user else {
            txn.commit()?;
            return Ok(None);
        };
        let mut user = before.clone();
        match kind {
            TokenKind::PasswordReset => user.password_hash = hash,
            TokenKind::EmailVerification => user.email_verified = true,
        }
        user.updated_at = now;
        replace_user(&txn, &before, &user)?;
        if kind == TokenKind::PasswordReset {
            sessions::revoke_all(&txn, &user.id, None)?;
            super::api_tokens::revoke_user_tokens(&txn, &user.id)?;
        }
        txn.commit()?;
        self.publish(&[StoreEvent::UserChanged(user.id.clone())]);
        Ok(Some(user.id))
    }

    pub(super) fn admin_update_blocking(
        &self,
        id: &str,
        change: AdminChange,
        now: i64,
    ) -> Result<(UserRecord, usize), WriteError> {
        let txn = self.db()?.begin_write()?;
        let before = read_user(&txn, id)?.ok_or(WriteError::NotFound)?;
        let mut user = change.applied_to(&before);
        if user == before {
            return Ok((user, 0));
        }
        user.updated_at = now;
        replace_user(&txn, &before, &user)?;
        if active_owners(&txn)? == 0 {
            return Err(WriteError::LastOwner);
        }
        let revoked = if user.status != UserStatus::Active {
            super::api_tokens::revoke_user_tokens(&txn, id)?;
            sessions::revoke_all(&txn, id, None)?
        } else {
            0
        };
        txn.commit()?;
        self.publish(&[StoreEvent::UserChanged(id.to_string())]);
        Ok((user, revoked))
    }

    /// Delete a user with their sessions, index entries, identities and passkeys; never the last
    /// active owner. Their username stays retired.
    pub(super) fn delete_user_blocking(&self, id: &str) -> Result<UserRecord, WriteError> {
        let txn = self.db()?.begin_write()?;
        let user = read_user(&txn, id)?.ok_or(WriteError::NotFound)?;
        sessions::revoke_all(&txn, id, None)?;
        txn.open_table(USERS)?.remove(id)?;
        txn.open_table(USERS_BY_EMAIL)?
            .remove(user.email.as_str())?;
        skeletons::release_skeleton(&txn, id, &user.email)?;
        if let Some(name) = &user.username {
            txn.open_table(USERS_BY_USERNAME)?.remove(name.as_str())?;
            retire_username(&txn, name, id)?;
        }
        txn.open_multimap_table(USER_SESSIONS)?.remove_all(id)?;
        identities::remove_user_identities(&txn, id)?;
        super::factors::remove_user_factors(&txn, id)?;
        passkeys::remove_user_passkeys(&txn, id)?;
        super::api_tokens::revoke_user_tokens(&txn, id)?;
        if active_owners(&txn)? == 0 {
            return Err(WriteError::LastOwner);
        }
        txn.commit()?;
        self.publish(&[StoreEvent::UserChanged(id.to_string())]);
        Ok(user)
    }

    /// Disable every active account whose `expires_at` has passed and drop its sessions.
    pub(super) fn expire_accounts_blocking(
        &self,
        now: i64,
    ) -> Result<(Vec<String>, usize), StoreError> {
        let expired: Vec<UserRecord> = {
            let txn = self.db()?.begin_read()?;
            let users = txn.open_table(USERS)?;
            let mut out = Vec::new();
            for entry in users.iter()? {
                let u: UserRecord = records::decode(entry?.1.value())?;
                if u.status == UserStatus::Active && u.expires_at.is_some_and(|t| t <= now) {
                    out.push(u);
                }
            }
            out
        };
        if expired.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let txn = self.db()?.begin_write()?;
        let mut removed = 0;
        let mut ids = Vec::new();
        for stale in expired {
            // Read again inside the write: it may have changed since.
            let Some(before) = read_user(&txn, &stale.id)? else {
                continue;
            };
            if before.status != UserStatus::Active || before.expires_at.is_none_or(|t| t > now) {
                continue;
            }
            let mut after = before.clone();
            after.status = UserStatus::Disabled;
            after.updated_at = now;
            replace_user(&txn, &before, &after)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            removed += sessions::revoke_all(&txn, &after.id, None)?;
            super::api_tokens::revoke_user_tokens(&txn, &after.id)?;
            ids.push(after.id);
        }
        txn.commit()?;
        let events: Vec<StoreEvent> = ids
            .iter()
            .map(|id| StoreEvent::UserChanged(id.clone()))
            .collect();
        self.publish(&events);
        Ok((ids, removed))
    }
}
