//! Account lifecycle storage: invites, mailed tokens, admin changes with last-owner protection,
//! account expiry, and the audit log.

use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};

use super::records::{self, AuditRecord, InviteRecord, TokenKind, TokenRecord};
use super::{
    insert_session, insert_user, read_user, replace_user, revoke_user_sessions, FirstSession, Role,
    SessionKey, Store, StoreError, UserRecord, UserStatus, UserWriteError, USERS, USERS_BY_EMAIL,
    USERS_BY_USERNAME, USER_SESSIONS,
};

pub(super) const INVITES: TableDefinition<&str, &[u8]> = TableDefinition::new("invites_v1");
pub(super) const TOKENS: TableDefinition<SessionKey, &[u8]> = TableDefinition::new("tokens_v1");
pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_v1");

/// Why an invite could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("invite unknown, used up or expired")]
    Invalid,
    #[error(transparent)]
    User(#[from] UserWriteError),
}

fn active_owners(txn: &WriteTransaction) -> Result<usize, StoreError> {
    let users = txn.open_table(USERS)?;
    let mut n = 0;
    for entry in users.iter()? {
        let (_, v) = entry?;
        let u: UserRecord = records::decode(v.value())?;
        if u.role == Role::Owner && u.status == UserStatus::Active {
            n += 1;
        }
    }
    Ok(n)
}

/// Count one use of an invite inside `txn` and give `user` its role and groups (active).
pub(super) fn use_invite(
    txn: &WriteTransaction,
    code: &str,
    now: i64,
    user: &mut UserRecord,
) -> Result<(), InviteError> {
    let mut table = txn
        .open_table(INVITES)
        .map_err(StoreError::from)
        .map_err(UserWriteError::from)?;
    let mut invite: InviteRecord = {
        let found = table
            .get(code)
            .map_err(StoreError::from)
            .map_err(UserWriteError::from)?;
        match found {
            Some(v) => records::decode(v.value()).map_err(UserWriteError::from)?,
            None => return Err(InviteError::Invalid),
        }
    };
    if !invite.usable(now) {
        return Err(InviteError::Invalid);
    }
    invite.used += 1;
    user.role = invite.role;
    user.groups = invite.groups.clone();
    user.status = UserStatus::Active;
    table
        .insert(
            code,
            records::encode(&invite)
                .map_err(UserWriteError::from)?
                .as_slice(),
        )
        .map_err(StoreError::from)
        .map_err(UserWriteError::from)?;
    Ok(())
}

impl Store {
    // -- invites -----------------------------------------------------------------------------

    /// Store a new invite.
    pub fn create_invite(&self, invite: &InviteRecord) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(INVITES)?
            .insert(invite.code.as_str(), records::encode(invite)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// An invite by code.
    pub fn get_invite(&self, code: &str) -> Result<Option<InviteRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(INVITES)?;
        let found = table.get(code)?;
        found.map(|v| records::decode(v.value())).transpose()
    }

    /// All invites.
    pub fn list_invites(&self) -> Result<Vec<InviteRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(INVITES)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(records::decode(entry?.1.value())?);
        }
        Ok(out)
    }

    /// Delete an invite. Returns whether it existed.
    pub fn delete_invite(&self, code: &str) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_write()?;
        let existed = txn.open_table(INVITES)?.remove(code)?.is_some();
        txn.commit()?;
        Ok(existed)
    }

    /// Create a user through an invite: the invite's use is counted in the same transaction, so
    /// concurrent registrations never exceed its uses. The user gets the invite's role and groups.
    pub fn create_user_with_invite(
        &self,
        user: &mut UserRecord,
        code: &str,
        now: i64,
        session: FirstSession<'_>,
    ) -> Result<(), InviteError> {
        let txn = self
            .db()
            .map_err(UserWriteError::from)?
            .begin_write()
            .map_err(StoreError::from)
            .map_err(UserWriteError::from)?;
        use_invite(&txn, code, now, user)?;
        insert_user(&txn, user)?;
        if let Some((key, record, idle)) = session {
            insert_session(&txn, key, record, idle).map_err(UserWriteError::from)?;
        }
        txn.commit()
            .map_err(StoreError::from)
            .map_err(UserWriteError::from)?;
        Ok(())
    }

    // -- mailed tokens -----------------------------------------------------------------------

    /// Store a mailed token under its key.
    pub fn put_token(&self, key: &SessionKey, token: &TokenRecord) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(TOKENS)?
            .insert(key, records::encode(token)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// A stored token (not consumed).
    pub fn get_token(&self, key: &SessionKey) -> Result<Option<TokenRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(TOKENS)?;
        let found = table.get(key)?;
        found.map(|v| records::decode(v.value())).transpose()
    }

    /// Redeem a single-use token of `kind`: apply `change` to its user (and revoke every session
    /// of the user when `revoke`) and burn the token, in one transaction. Returns the user id,
    /// or `None` for an unknown, used, expired or wrong-kind token.
    fn redeem_token(
        &self,
        key: &SessionKey,
        kind: TokenKind,
        now: i64,
        change: impl FnOnce(&mut UserRecord),
        revoke: bool,
    ) -> Result<Option<String>, UserWriteError> {
        let txn = self.db()?.begin_write().map_err(StoreError::from)?;
        let user = match take_token(&txn, key, kind, now)? {
            Some(token) => read_user(&txn, &token.user_id)?,
            None => None,
        };
        let Some(mut user) = user else {
            txn.commit().map_err(StoreError::from)?;
            return Ok(None);
        };
        let before = user.clone();
        change(&mut user);
        user.updated_at = now;
        replace_user(&txn, &before, &user)?;
        if revoke {
            revoke_user_sessions(&txn, &user.id, None)?;
        }
        txn.commit().map_err(StoreError::from)?;
        Ok(Some(user.id))
    }

    /// Use a password-reset token: set the password, revoke every session, burn the token.
    pub fn reset_password(
        &self,
        key: &SessionKey,
        hash: &str,
        now: i64,
    ) -> Result<Option<String>, UserWriteError> {
        let _changes = self.invalidates();
        let hash = hash.to_string();
        self.redeem_token(
            key,
            TokenKind::PasswordReset,
            now,
            |u| u.password_hash = Some(hash),
            true,
        )
    }

    /// Use an email-verification token.
    pub fn verify_email(
        &self,
        key: &SessionKey,
        now: i64,
    ) -> Result<Option<String>, UserWriteError> {
        let _changes = self.invalidates();
        self.redeem_token(
            key,
            TokenKind::EmailVerification,
            now,
            |u| u.email_verified = true,
            false,
        )
    }

    // -- admin changes -----------------------------------------------------------------------

    /// Change a user as an administrator. Refuses (`LastOwner`) a change that would leave no
    /// active owner. Disabling, suspending or expiring revokes the user's sessions in the same
    /// transaction. Returns the user after the change and how many sessions were revoked.
    pub fn admin_update_user<E>(
        &self,
        id: &str,
        change: impl FnOnce(&mut UserRecord) -> Result<(), E>,
    ) -> Result<Result<(UserRecord, usize), E>, UserWriteError> {
        let _changes = self.invalidates();
        let txn = self.db()?.begin_write().map_err(StoreError::from)?;
        let mut user = read_user(&txn, id)?.ok_or(UserWriteError::NotFound)?;
        let before = user.clone();
        if let Err(e) = change(&mut user) {
            return Ok(Err(e));
        }
        replace_user(&txn, &before, &user)?;
        if active_owners(&txn)? == 0 {
            return Err(UserWriteError::LastOwner);
        }
        let revoked = if user.status != UserStatus::Active {
            revoke_user_sessions(&txn, id, None)?
        } else {
            0
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(Ok((user, revoked)))
    }

    /// Delete a user with their sessions and index entries; never the last active owner.
    pub fn delete_user(&self, id: &str) -> Result<(), UserWriteError> {
        let _changes = self.invalidates();
        let txn = self.db()?.begin_write().map_err(StoreError::from)?;
        let user = read_user(&txn, id)?.ok_or(UserWriteError::NotFound)?;
        revoke_user_sessions(&txn, id, None)?;
        txn.open_table(USERS)
            .map_err(StoreError::from)?
            .remove(id)
            .map_err(StoreError::from)?;
        txn.open_table(USERS_BY_EMAIL)
            .map_err(StoreError::from)?
            .remove(user.email.as_str())
            .map_err(StoreError::from)?;
        super::confusable::release_skeleton(&txn, id, &user.email)?;
        if let Some(name) = &user.username {
            txn.open_table(USERS_BY_USERNAME)
                .map_err(StoreError::from)?
                .remove(name.as_str())
                .map_err(StoreError::from)?;
        }
        txn.open_multimap_table(USER_SESSIONS)
            .map_err(StoreError::from)?
            .remove_all(id)
            .map_err(StoreError::from)?;
        super::identities::remove_user_identities(&txn, id)?;
        if active_owners(&txn)? == 0 {
            return Err(UserWriteError::LastOwner);
        }
        txn.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Disable every active account whose `expires_at` has passed and drop its sessions.
    /// Returns the ids changed and how many sessions were removed.
    pub fn expire_accounts(&self, now: i64) -> Result<(Vec<String>, usize), StoreError> {
        let _changes = self.invalidates();
        let txn = self.db()?.begin_write()?;
        let expired: Vec<UserRecord> = {
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
        let mut removed = 0;
        let mut ids = Vec::new();
        for before in expired {
            let mut after = before.clone();
            after.status = UserStatus::Disabled;
            after.updated_at = now;
            replace_user(&txn, &before, &after)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            removed += revoke_user_sessions(&txn, &after.id, None)?;
            ids.push(after.id);
        }
        txn.commit()?;
        Ok((ids, removed))
    }

    // -- audit log ---------------------------------------------------------------------------

    /// Append entries to the audit log, in order, in one transaction.
    pub fn append_audit(&self, entries: &[AuditRecord]) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        {
            let mut table = txn.open_table(AUDIT)?;
            let first = table.last()?.map(|(k, _)| k.value() + 1).unwrap_or(1);
            for (id, e) in (first..).zip(entries) {
                table.insert(id, records::encode(e)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Audit entries newest first, starting below `before` (an entry id), at most `limit`.
    pub fn list_audit(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        let range = table.range(..before.unwrap_or(u64::MAX))?;
        for entry in range.rev() {
            let (k, v) = entry?;
            out.push((k.value(), records::decode(v.value())?));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Number of audit entries.
    pub fn audit_len(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(AUDIT)?.len()?)
    }
}

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
