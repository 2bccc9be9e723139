//! Account lifecycle storage: invites, mailed tokens, admin changes with last-owner protection,
//! account expiry, and the audit log; sweeps of expired tokens and of audit entries past
//! their retention.

use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};

use super::records::{
    self, invite_id, invite_key, AuditRecord, InviteRecord, InviteRecordV1, TokenKind, TokenRecord,
};
use super::{
    insert_session, insert_user, read_user, replace_user, revoke_user_sessions, FirstSession, Role,
    SessionKey, Store, StoreError, UserRecord, UserStatus, UserWriteError, USERS, USERS_BY_EMAIL,
    USERS_BY_USERNAME, USER_SESSIONS,
};

/// Invites by the SHA-256 of their code.
pub(super) const INVITES: TableDefinition<SessionKey, &[u8]> = TableDefinition::new("invites_v2");
/// Invites by their code in clear: read once at start-up, moved to `invites_v2`, deleted.
const INVITES_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("invites_v1");
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

/// Count one use of an invite inside `txn` and give `user` its role and groups (active).
pub(super) fn use_invite(
    txn: &WriteTransaction,
    code: &str,
    now: i64,
    user: &mut UserRecord,
) -> Result<(), InviteError> {
    let key = invite_key(code);
    let mut table = txn
        .open_table(INVITES)
        .map_err(StoreError::from)
        .map_err(UserWriteError::from)?;
    let mut invite: InviteRecord = {
        let found = table
            .get(&key)
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
            &key,
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

    /// Store a new invite under its code's hash (the code itself is not stored).
    pub fn create_invite(&self, code: &str, invite: &InviteRecord) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(INVITES)?
            .insert(&invite_key(code), records::encode(invite)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// An invite by code.
    pub fn get_invite(&self, code: &str) -> Result<Option<InviteRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(INVITES)?;
        let found = table.get(&invite_key(code))?;
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

    /// Delete an invite by its id, if `allowed` accepts it. Returns whether one was deleted.
    pub fn delete_invite(
        &self,
        id: &str,
        allowed: impl FnOnce(&InviteRecord) -> bool,
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
                Some((key, invite)) if allowed(&invite) => table.remove(&key)?.is_some(),
                _ => false,
            }
        };
        txn.commit()?;
        Ok(deleted)
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

    /// Delete mailed tokens whose `expires_at` has passed, at most `limit` per call. They are
    /// found in a read transaction so the write lock is held only for the deletions. Returns
    /// how many were deleted.
    pub fn sweep_expired_tokens(&self, now: i64, limit: usize) -> Result<usize, StoreError> {
        let expired: Vec<SessionKey> = {
            let txn = self.db()?.begin_read()?;
            let table = txn.open_table(TOKENS)?;
            let mut keys = Vec::new();
            for entry in table.iter()? {
                if keys.len() >= limit {
                    break;
                }
                let (k, v) = entry?;
                let token: TokenRecord = records::decode(v.value())?;
                if token.expires_at <= now {
                    keys.push(k.value());
                }
            }
            keys
        };
        if expired.is_empty() {
            return Ok(0);
        }
        let txn = self.db()?.begin_write()?;
        let mut removed = 0;
        {
            let mut table = txn.open_table(TOKENS)?;
            for key in &expired {
                // Redeemed meanwhile: already gone.
                if table.remove(key)?.is_some() {
                    removed += 1;
                }
            }
        }
        txn.commit()?;
        Ok(removed)
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
            super::retire_username(&txn, name, id)?;
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

    /// Delete audit entries older than `cutoff` (their `at`), oldest first, at most `limit`
    /// per call. Stops at the first entry that is young enough, and always keeps the newest
    /// entry so that ids keep increasing. Found in a read transaction (entries are only ever
    /// appended), so a sweep with nothing to do writes nothing. Returns how many were deleted.
    pub fn sweep_audit(&self, cutoff: i64, limit: usize) -> Result<usize, StoreError> {
        let old: Vec<u64> = {
            let txn = self.db()?.begin_read()?;
            let table = txn.open_table(AUDIT)?;
            let newest = table.last()?.map(|(k, _)| k.value());
            let mut ids = Vec::new();
            for entry in table.iter()? {
                let (k, v) = entry?;
                let id = k.value();
                if ids.len() >= limit || Some(id) == newest {
                    break;
                }
                let record: AuditRecord = records::decode(v.value())?;
                if record.at >= cutoff {
                    break;
                }
                ids.push(id);
            }
            ids
        };
        if old.is_empty() {
            return Ok(0);
        }
        let txn = self.db()?.begin_write()?;
        {
            let mut table = txn.open_table(AUDIT)?;
            for id in &old {
                table.remove(id)?;
            }
        }
        txn.commit()?;
        Ok(old.len())
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

#[cfg(test)]
mod tests {
    use super::*;
    use redb::TableHandle as _;

    #[test]
    fn invites_in_clear_are_moved_to_their_hashes_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.redb");
        drop(Store::open(&path).expect("store"));
        // A database written before codes were hashed.
        {
            let db = redb::Database::open(&path).expect("raw open");
            let txn = db.begin_write().expect("txn");
            {
                let mut t = txn.open_table(INVITES_V1).expect("v1");
                let v1 = serde_json::json!({"code": "old-code", "role": "owner", "groups": ["ops"],
                    "max_uses": 2, "used": 1, "expires_at": null, "created_by": "u1", "created_at": 5});
                t.insert("old-code", records::encode(&v1).expect("enc").as_slice())
                    .expect("insert");
            }
            txn.commit().expect("commit");
        }
        let store = Store::open(&path).expect("reopen");
        let invite = store.get_invite("old-code").expect("read").expect("moved");
        assert_eq!(invite.id, invite_id(&invite_key("old-code")));
        assert_eq!(
            (invite.role, invite.used, invite.max_uses),
            (Role::Owner, 1, 2)
        );
        assert!(store.get_invite("wrong").expect("read").is_none());
        drop(store);
        // Nothing in clear remains.
        let db = redb::Database::open(&path).expect("raw open");
        let txn = db.begin_read().expect("txn");
        let names: Vec<String> = txn
            .list_tables()
            .expect("tables")
            .map(|t| t.name().to_string())
            .collect();
        assert!(!names.contains(&"invites_v1".to_string()), "{names:?}");
        let raw = std::fs::read(&path).expect("file");
        assert!(
            !raw.windows(8).any(|w| w == b"old-code"),
            "the code is still in the file"
        );
    }

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.redb")).expect("opens");
        (dir, store)
    }

    fn token(expires_at: i64) -> TokenRecord {
        TokenRecord {
            kind: TokenKind::PasswordReset,
            user_id: "u1".into(),
            expires_at,
        }
    }

    fn entry(at: i64, event: &str) -> AuditRecord {
        AuditRecord {
            at,
            event: event.into(),
            actor: None,
            target: None,
            ip: None,
            detail: None,
        }
    }

    fn events(store: &Store) -> Vec<(u64, String)> {
        let mut all: Vec<(u64, String)> = store
            .list_audit(None, 100)
            .expect("list")
            .into_iter()
            .map(|(id, e)| (id, e.event))
            .collect();
        all.reverse();
        all
    }

    #[test]
    fn expired_tokens_are_swept_in_batches_and_live_ones_stay() {
        let (_d, store) = temp_store();
        for (k, expires) in [(1u8, 100), (2, 150), (3, 200), (4, 201), (5, 1000)] {
            store.put_token(&[k; 32], &token(expires)).expect("put");
        }
        // Expiry is inclusive: a token is unusable from its `expires_at` on.
        assert_eq!(store.sweep_expired_tokens(200, 2).expect("sweep"), 2);
        assert_eq!(store.sweep_expired_tokens(200, 2).expect("sweep"), 1);
        assert_eq!(store.sweep_expired_tokens(200, 2).expect("sweep"), 0);
        for (k, kept) in [(1u8, false), (2, false), (3, false), (4, true), (5, true)] {
            assert_eq!(
                store.get_token(&[k; 32]).expect("get").is_some(),
                kept,
                "{k}"
            );
        }
        assert_eq!(store.sweep_expired_tokens(i64::MAX, 100).expect("sweep"), 2);
        assert_eq!(store.sweep_expired_tokens(i64::MAX, 100).expect("sweep"), 0);
    }

    #[test]
    fn audit_past_retention_is_swept_oldest_first_in_batches() {
        let (_d, store) = temp_store();
        store
            .append_audit(&[entry(10, "a"), entry(20, "b"), entry(30, "c")])
            .expect("append");
        store
            .append_audit(&[entry(40, "d"), entry(50, "e")])
            .expect("append");
        assert_eq!(store.sweep_audit(35, 2).expect("sweep"), 2);
        assert_eq!(
            events(&store),
            [(3, "c".into()), (4, "d".into()), (5, "e".into())]
        );
        assert_eq!(store.sweep_audit(35, 2).expect("sweep"), 1);
        assert_eq!(
            store.sweep_audit(35, 2).expect("sweep"),
            0,
            "d is young enough"
        );
        assert_eq!(events(&store), [(4, "d".into()), (5, "e".into())]);
    }

    #[test]
    fn audit_sweep_keeps_the_newest_entry_so_ids_keep_increasing() {
        let (_d, store) = temp_store();
        store
            .append_audit(&[entry(10, "a"), entry(20, "b")])
            .expect("append");
        assert_eq!(store.sweep_audit(1000, 100).expect("sweep"), 1);
        assert_eq!(store.sweep_audit(1000, 100).expect("sweep"), 0);
        store.append_audit(&[entry(2000, "c")]).expect("append");
        assert_eq!(events(&store), [(2, "b".into()), (3, "c".into())]);
        assert_eq!(store.sweep_audit(3000, 100).expect("sweep"), 1);
        assert_eq!(events(&store), [(3, "c".into())]);
    }

    #[test]
    fn audit_sweep_stops_at_an_entry_young_enough() {
        let (_d, store) = temp_store();
        // A clock stepped back: an older `at` after a younger one waits for it.
        store
            .append_audit(&[
                entry(10, "a"),
                entry(90, "b"),
                entry(20, "c"),
                entry(95, "d"),
            ])
            .expect("append");
        assert_eq!(store.sweep_audit(50, 100).expect("sweep"), 1);
        assert_eq!(
            events(&store),
            [(2, "b".into()), (3, "c".into()), (4, "d".into())]
        );
    }
}
