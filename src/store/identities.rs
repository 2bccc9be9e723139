//! Outside identities (a sign-in provider's subject) linked to local users. An identity is found
//! by (provider, subject) only, never by email.

use redb::{
    MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::lifecycle::{use_invite, InviteError};
use super::records;
use super::{
    end_oldest_sessions, insert_session, insert_user, read_user, replace_user, FirstSession,
    SessionKey, SessionRecord, Store, StoreError, UserRecord, UserWriteError, USERS,
};

/// `provider \n subject` → [`IdentityRecord`].
pub(super) const IDENTITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("identities_v1");
/// user id → identity keys.
pub(super) const USER_IDENTITIES: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("user_identities_v1");

/// A provider account linked to a local user. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
    /// The address the provider gave at the last sign-in (informational).
    pub email: Option<String>,
    pub linked_at: i64,
    pub last_login_at: Option<i64>,
}

impl IdentityRecord {
    fn key(&self) -> String {
        identity_key(&self.provider, &self.subject)
    }
}

fn identity_key(provider: &str, subject: &str) -> String {
    // Provider names cannot contain a newline, so the key is unambiguous.
    format!("{provider}\n{subject}")
}

/// Why an identity could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The identity is already linked to a user (another one, when linking).
    #[error("this identity is already linked to an account")]
    Taken,
    #[error(transparent)]
    Invite(#[from] InviteError),
    #[error(transparent)]
    User(#[from] UserWriteError),
}

impl From<StoreError> for IdentityError {
    fn from(e: StoreError) -> Self {
        IdentityError::User(UserWriteError::Store(e))
    }
}

macro_rules! store_err {
    ($e:expr) => {
        $e.map_err(StoreError::from)?
    };
}

fn read_identity(txn: &WriteTransaction, key: &str) -> Result<Option<IdentityRecord>, StoreError> {
    let table = txn.open_table(IDENTITIES)?;
    let found = table.get(key)?;
    found.map(|v| records::decode(v.value())).transpose()
}

fn put_identity(txn: &WriteTransaction, identity: &IdentityRecord) -> Result<(), StoreError> {
    let key = identity.key();
    txn.open_table(IDENTITIES)?
        .insert(key.as_str(), records::encode(identity)?.as_slice())?;
    txn.open_multimap_table(USER_IDENTITIES)?
        .insert(identity.user_id.as_str(), key.as_str())?;
    Ok(())
}

/// Remove every identity of a user (inside the transaction that deletes the user).
pub(super) fn remove_user_identities(
    txn: &WriteTransaction,
    user_id: &str,
) -> Result<(), StoreError> {
    let keys: Vec<String> = {
        let index = txn.open_multimap_table(USER_IDENTITIES)?;
        let mut keys = Vec::new();
        for k in index.get(user_id)? {
            keys.push(k?.value().to_string());
        }
        keys
    };
    let mut table = txn.open_table(IDENTITIES)?;
    for k in &keys {
        table.remove(k.as_str())?;
    }
    txn.open_multimap_table(USER_IDENTITIES)?
        .remove_all(user_id)?;
    Ok(())
}

/// Store a session and note the sign-in on the user and the identity; ends the user's oldest
/// sessions beyond `max_sessions`. Returns how many it ended.
fn sign_in(
    txn: &WriteTransaction,
    identity: &mut IdentityRecord,
    session: FirstSession<'_>,
    max_sessions: usize,
) -> Result<usize, UserWriteError> {
    let mut ended = 0;
    if let Some((key, record, idle)) = session {
        let mut user = read_user(txn, &identity.user_id)?.ok_or(UserWriteError::NotFound)?;
        let before = user.clone();
        user.last_login_at = Some(record.created_at);
        replace_user(txn, &before, &user)?;
        insert_session(txn, key, record, idle)?;
        ended = end_oldest_sessions(txn, &identity.user_id, key, max_sessions)?;
        identity.last_login_at = Some(record.created_at);
    }
    put_identity(txn, identity)?;
    Ok(ended)
}

impl Store {
    /// The identity (provider, subject) with its user, if linked.
    pub fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(IdentityRecord, UserRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(IDENTITIES)?;
        let Some(found) = table.get(identity_key(provider, subject).as_str())? else {
            return Ok(None);
        };
        let identity: IdentityRecord = records::decode(found.value())?;
        let users = txn.open_table(USERS)?;
        let user = users.get(identity.user_id.as_str())?;
        match user {
            Some(u) => Ok(Some((identity, records::decode(u.value())?))),
            // A dangling link (cannot happen: users are deleted with their identities).
            None => Ok(None),
        }
    }

    /// A user's linked identities, by provider name.
    pub fn user_identities(&self, user_id: &str) -> Result<Vec<IdentityRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let index = txn.open_multimap_table(USER_IDENTITIES)?;
        let table = txn.open_table(IDENTITIES)?;
        let mut out = Vec::new();
        for k in index.get(user_id)? {
            if let Some(v) = table.get(k?.value())? {
                out.push(records::decode::<IdentityRecord>(v.value())?);
            }
        }
        out.sort_by(|a, b| a.provider.cmp(&b.provider));
        Ok(out)
    }

    /// Every linked identity (for the admin user list).
    pub fn all_identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(IDENTITIES)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(records::decode::<IdentityRecord>(entry?.1.value())?);
        }
        Ok(out)
    }

    /// Create a user together with its first identity (and first session), in one
    /// transaction. With an invite code the invite's use is counted there too and the user gets
    /// its role and groups. Refuses an identity that is already linked (a concurrent first
    /// sign-in of the same person).
    pub fn create_user_with_identity(
        &self,
        user: &mut UserRecord,
        identity: &IdentityRecord,
        invite: Option<(&str, i64)>,
        session: FirstSession<'_>,
    ) -> Result<(), IdentityError> {
        let txn = store_err!(store_err!(self.db()).begin_write());
        if read_identity(&txn, &identity.key())?.is_some() {
            return Err(IdentityError::Taken);
        }
        if let Some((code, now)) = invite {
            // The invite's role and groups, plus any groups the user already had.
            let own = std::mem::take(&mut user.groups);
            use_invite(&txn, code, now, user)?;
            for g in own {
                if !user.groups.contains(&g) {
                    user.groups.push(g);
                }
            }
        }
        insert_user(&txn, user)?;
        if let Some((key, record, idle)) = session {
            insert_session(&txn, key, record, idle)?;
        }
        put_identity(&txn, identity)?;
        store_err!(txn.commit());
        Ok(())
    }

    /// Link an identity to an existing user and sign in (when `session` is given), in one
    /// transaction. Refuses an identity linked to another user; re-linking to the same user
    /// only refreshes it.
    pub fn link_identity(
        &self,
        identity: &IdentityRecord,
        session: FirstSession<'_>,
    ) -> Result<(), IdentityError> {
        let txn = store_err!(store_err!(self.db()).begin_write());
        let mut identity = identity.clone();
        // (The user may have been deleted since the caller found them.)
        if read_user(&txn, &identity.user_id)?.is_none() {
            return Err(IdentityError::User(UserWriteError::NotFound));
        }
        if let Some(existing) = read_identity(&txn, &identity.key())? {
            if existing.user_id != identity.user_id {
                return Err(IdentityError::Taken);
            }
            identity.linked_at = existing.linked_at;
        }
        let ended = sign_in(&txn, &mut identity, session, self.sessions_per_user())?;
        store_err!(txn.commit());
        if ended > 0 {
            drop(self.invalidates());
        }
        Ok(())
    }

    /// Sign in through a linked identity: store the session, note the time and the address
    /// the provider gave now. Fails with `NotFound` if the link was removed meanwhile.
    pub fn sign_in_with_identity(
        &self,
        provider: &str,
        subject: &str,
        email: Option<String>,
        key: &SessionKey,
        record: &SessionRecord,
        idle_secs: i64,
    ) -> Result<(), UserWriteError> {
        let txn = self.db()?.begin_write().map_err(StoreError::from)?;
        let mut identity = read_identity(&txn, &identity_key(provider, subject))?
            .filter(|i| i.user_id == record.user_id)
            .ok_or(UserWriteError::NotFound)?;
        identity.email = email;
        let ended = sign_in(
            &txn,
            &mut identity,
            Some((key, record, idle_secs)),
            self.sessions_per_user(),
        )?;
        txn.commit().map_err(StoreError::from)?;
        if ended > 0 {
            drop(self.invalidates());
        }
        Ok(())
    }

    /// Remove a user's link to a provider, in one transaction with the check `may_remove`,
    /// which sees the user and the providers still linked after the removal (so two removals
    /// at once cannot both pass a "keep one way to sign in" rule).
    pub fn unlink_identity(
        &self,
        user_id: &str,
        provider: &str,
        may_remove: impl FnOnce(&UserRecord, &[String]) -> bool,
    ) -> Result<Unlink, StoreError> {
        let txn = self.db()?.begin_write()?;
        let (keys, remaining) = {
            let index = txn.open_multimap_table(USER_IDENTITIES)?;
            let (mut keys, mut remaining) = (Vec::new(), Vec::new());
            for k in index.get(user_id)? {
                let k = k?.value().to_string();
                let p = k.split('\n').next().unwrap_or_default().to_string();
                if p == provider {
                    keys.push(k);
                } else {
                    remaining.push(p);
                }
            }
            (keys, remaining)
        };
        let Some(user) = read_user(&txn, user_id)? else {
            return Ok(Unlink::NotLinked);
        };
        if keys.is_empty() {
            return Ok(Unlink::NotLinked);
        }
        if !may_remove(&user, &remaining) {
            return Ok(Unlink::Refused);
        }
        for k in &keys {
            txn.open_table(IDENTITIES)?.remove(k.as_str())?;
            txn.open_multimap_table(USER_IDENTITIES)?
                .remove(user_id, k.as_str())?;
        }
        txn.commit()?;
        Ok(Unlink::Done)
    }
}

/// What [`Store::unlink_identity`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlink {
    Done,
    /// The user has no link to that provider (or no longer exists).
    NotLinked,
    /// The check refused: nothing changed.
    Refused,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{invite_id, invite_key, InviteRecord, Role, UserStatus};

    fn user(id: &str, email: &str) -> UserRecord {
        UserRecord {
            id: id.into(),
            email: email.into(),
            username: None,
            full_name: None,
            first_name: None,
            last_name: None,
            role: Role::User,
            groups: vec![],
            status: UserStatus::Active,
            email_verified: true,
            password_hash: None,
            created_at: 1,
            updated_at: 1,
            last_login_at: None,
            expires_at: None,
        }
    }

    fn identity(provider: &str, subject: &str, user_id: &str) -> IdentityRecord {
        IdentityRecord {
            provider: provider.into(),
            subject: subject.into(),
            user_id: user_id.into(),
            email: None,
            linked_at: 1,
            last_login_at: None,
        }
    }

    #[test]
    fn identities_are_found_by_provider_and_subject_only_and_go_with_their_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.redb")).expect("store");
        let mut owner = user("o", "o@example.com");
        owner.role = Role::Owner;
        store.create_first_user(&owner, None).expect("owner");
        let mut u = user("u1", "a@example.com");
        store
            .create_user_with_identity(&mut u, &identity("corp", "sub-1", "u1"), None, None)
            .expect("created");
        let (i, found) = store
            .find_identity("corp", "sub-1")
            .expect("read")
            .expect("found");
        assert_eq!(
            (i.user_id.as_str(), found.email.as_str()),
            ("u1", "a@example.com")
        );
        assert!(store
            .find_identity("corp", "a@example.com")
            .expect("read")
            .is_none());
        assert!(store
            .find_identity("other", "sub-1")
            .expect("read")
            .is_none());

        // The same subject cannot be created twice or linked to someone else.
        let mut twin = user("u2", "b@example.com");
        assert!(matches!(
            store.create_user_with_identity(
                &mut twin,
                &identity("corp", "sub-1", "u2"),
                None,
                None
            ),
            Err(IdentityError::Taken)
        ));
        assert!(
            store.get_user("u2").expect("read").is_none(),
            "nothing half-written"
        );
        assert!(matches!(
            store.link_identity(&identity("corp", "sub-1", "o"), None),
            Err(IdentityError::Taken)
        ));
        // A user deleted meanwhile gets no link.
        assert!(matches!(
            store.link_identity(&identity("corp", "sub-9", "gone"), None),
            Err(IdentityError::User(UserWriteError::NotFound))
        ));
        assert!(store
            .all_identities()
            .expect("all")
            .iter()
            .all(|i| i.subject != "sub-9"));
        store
            .link_identity(&identity("google", "g-1", "u1"), None)
            .expect("second provider");
        let linked = store.user_identities("u1").expect("list");
        assert_eq!(
            linked
                .iter()
                .map(|i| i.provider.as_str())
                .collect::<Vec<_>>(),
            ["corp", "google"]
        );
        let refuse = store
            .unlink_identity("u1", "google", |_, _| false)
            .expect("unlink");
        assert_eq!(refuse, Unlink::Refused);
        assert_eq!(store.user_identities("u1").expect("list").len(), 2);
        let mut seen = None;
        let done = store
            .unlink_identity("u1", "google", |u, rest| {
                seen = Some((u.id.clone(), rest.to_vec()));
                true
            })
            .expect("unlink");
        assert_eq!(done, Unlink::Done);
        assert_eq!(seen, Some(("u1".to_string(), vec!["corp".to_string()])));
        assert_eq!(
            store
                .unlink_identity("u1", "google", |_, _| true)
                .expect("unlink"),
            Unlink::NotLinked
        );

        store.delete_user("u1").expect("delete");
        assert!(store
            .find_identity("corp", "sub-1")
            .expect("read")
            .is_none());
        assert!(store.all_identities().expect("all").is_empty());
    }

    #[test]
    fn an_invite_is_counted_with_the_new_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.redb")).expect("store");
        store
            .create_invite(
                "c0de",
                &InviteRecord {
                    id: invite_id(&invite_key("c0de")),
                    role: Role::Admin,
                    groups: vec!["ops".into()],
                    max_uses: 1,
                    used: 0,
                    expires_at: None,
                    created_at: 1,
                    created_by: None,
                },
            )
            .expect("invite");
        let mut u = user("u1", "a@example.com");
        store
            .create_user_with_identity(
                &mut u,
                &identity("corp", "s1", "u1"),
                Some(("c0de", 2)),
                None,
            )
            .expect("created");
        let stored = store.get_user("u1").expect("read").expect("found");
        assert_eq!(
            (stored.role, stored.groups.clone()),
            (Role::Admin, vec!["ops".to_string()])
        );
        let mut v = user("u2", "b@example.com");
        assert!(matches!(
            store.create_user_with_identity(
                &mut v,
                &identity("corp", "s2", "u2"),
                Some(("c0de", 2)),
                None
            ),
            Err(IdentityError::Invite(InviteError::Invalid))
        ));
    }
}
