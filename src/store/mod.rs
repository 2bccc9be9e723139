//! Durable storage in one redb file: users with their email, look-alike email and username
//! indexes, sessions (keyed by the SHA-256 of the token) with a per-user index and an expiry
//! index, settings.
//!
//! Every method is synchronous. Writes commit with `Durability::Immediate` (fsync) before they
//! return, and callers on async threads run them on the blocking pool; short reads may run inline.

mod confusable;
mod identities;
mod lifecycle;
pub mod records;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    ReadableTableMetadata, TableDefinition, WriteTransaction,
};

pub use confusable::email_skeleton;
pub use identities::{IdentityError, IdentityRecord, Unlink};
pub use lifecycle::InviteError;
pub use records::{
    group_name, invite_id, invite_key, AuditRecord, InviteRecord, Role, SessionRecord, TokenKind,
    TokenRecord, UserRecord, UserStatus, RESERVED_GROUP_NAMES,
};

/// SHA-256 of a session token: the only form in which a session id is stored.
pub type SessionKey = [u8; 32];

/// A session stored together with a new user: key, record, idle timeout in seconds.
pub type FirstSession<'a> = Option<(&'a SessionKey, &'a SessionRecord, i64)>;

const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users_v1");
const USERS_BY_EMAIL: TableDefinition<&str, &str> = TableDefinition::new("users_by_email_v1");
const USERS_BY_USERNAME: TableDefinition<&str, &str> = TableDefinition::new("users_by_username_v1");
/// Usernames given up by a rename or a deletion → the user who held them. Apps keyed on
/// `Remote-User` would hand a new holder the old one's data, so they are never given to
/// anyone else.
const RETIRED_USERNAMES: TableDefinition<&str, &str> = TableDefinition::new("retired_usernames_v1");
const SESSIONS: TableDefinition<SessionKey, &[u8]> = TableDefinition::new("sessions_v1");
const USER_SESSIONS: MultimapTableDefinition<&str, SessionKey> =
    MultimapTableDefinition::new("user_sessions_v1");
/// (effective expiry, session key) → (); swept in key order.
const SESSION_EXPIRY: TableDefinition<(i64, SessionKey), ()> =
    TableDefinition::new("session_expiry_v1");
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings_v1");
/// Set (to `true`) in the transaction that first stores an owner; never cleared, since the
/// last owner cannot be removed. Setup is possible, and registration refused, until then.
const OWNER_EXISTS: &str = "owner_exists";

/// A storage failure as the request path sees it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be read or written (I/O, full disk, closed).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Unavailable(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Why the database could not be opened at start-up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the folder {0}: {1}")]
    CreateDir(PathBuf, std::io::Error),
    #[error(
        "the database {0} is in use by another process (is an authgate server running? stop it, or run this command while it is stopped)"
    )]
    InUse(PathBuf),
    #[error(
        "the database {0} is corrupt or not an authgate database ({1}); refusing to start. The file was left untouched: restore it from a backup, or move it away to start empty"
    )]
    Corrupt(PathBuf, String),
    #[error("cannot open the database {0}: {1}")]
    Other(PathBuf, String),
}

/// Why a user could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum UserWriteError {
    #[error("email taken")]
    EmailTaken,
    /// The address looks like another account's (same skeleton, see [`email_skeleton`]).
    #[error("email looks like one already registered")]
    EmailConfusable,
    #[error("username taken")]
    UsernameTaken,
    #[error("setup already done")]
    AlreadySetup,
    #[error("no such user")]
    NotFound,
    #[error("the last owner cannot be demoted, disabled or deleted")]
    LastOwner,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The database handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Sessions per user unless configured (`session.max_per_user`).
const DEFAULT_SESSIONS_PER_USER: usize = 50;

/// The page cache unless configured (`storage.cache_size`).
const DEFAULT_CACHE: usize = 64 << 20;

struct Inner {
    path: PathBuf,
    cache_bytes: usize,
    /// `None` while the database is being reopened after an I/O failure.
    db: std::sync::RwLock<Option<Arc<Database>>>,
    /// Advanced after every write that can end a session or change what a session stands for
    /// (logout, revocation, user changes, sweeps, reopening): copies of sessions kept in
    /// memory are valid only for the epoch they were read in.
    epoch: AtomicU64,
    /// Sessions a user may have at most; a sign-in beyond it ends the oldest.
    sessions_per_user: AtomicUsize,
}

/// Advances the epoch when dropped, i.e. after the write transaction it guards is over.
pub(crate) struct EpochBump<'a>(&'a AtomicU64);

impl Drop for EpochBump<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

impl Store {
    /// Open the database at `path`, creating it (and its folder) when missing. An existing file
    /// is opened, never re-created: a corrupt file stops start-up and is left as it is.
    pub fn open(path: &Path) -> Result<Store, OpenError> {
        Store::open_with_cache(path, DEFAULT_CACHE)
    }

    /// [`Store::open`] with a page cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Store, OpenError> {
        let db = open_database(path, cache_bytes)?;
        let store = Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                cache_bytes,
                db: std::sync::RwLock::new(Some(Arc::new(db))),
                epoch: AtomicU64::new(0),
                sessions_per_user: AtomicUsize::new(DEFAULT_SESSIONS_PER_USER),
            }),
        };
        let moved_secrets = store
            .init_tables()
            .map_err(|e| OpenError::Other(path.to_path_buf(), e.to_string()))?;
        store.build_skeleton_index();
        if moved_secrets {
            store.scrub_free_pages();
        }
        Ok(store)
    }

    /// Cap the sessions one user may have: a sign-in beyond it ends the user's oldest session.
    pub fn set_sessions_per_user(&self, max: usize) {
        self.inner
            .sessions_per_user
            .store(max.max(1), Ordering::Relaxed);
    }

    /// The cap set by [`Store::set_sessions_per_user`].
    pub(crate) fn sessions_per_user(&self) -> usize {
        self.inner.sessions_per_user.load(Ordering::Relaxed)
    }

    /// The current epoch: read it *before* reading a session that will be kept in memory.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// Declare the calling write as one that invalidates in-memory session copies.
    pub(crate) fn invalidates(&self) -> EpochBump<'_> {
        EpochBump(&self.inner.epoch)
    }

    /// The open database, or `Unavailable` while it is being reopened.
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.inner
            .db
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the database is being reopened".into()))
    }

    /// After a failed write redb refuses every later operation until the file is reopened
    /// (e.g. once a full disk has space again). If the database no longer answers, close it
    /// (waiting briefly for operations in flight) and open it again. Returns whether it is
    /// usable afterwards.
    pub fn recover(&self) -> bool {
        if self.healthy() {
            return true;
        }
        let _changes = self.invalidates();
        let old = self
            .inner
            .db
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut db) = old {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                match Arc::try_unwrap(db) {
                    Ok(owned) => {
                        drop(owned);
                        break;
                    }
                    Err(still_shared) if std::time::Instant::now() < deadline => {
                        db = still_shared;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(still_shared) => {
                        // Operations still hold it: put it back and try again later.
                        *self.inner.db.write().unwrap_or_else(|p| p.into_inner()) =
                            Some(still_shared);
                        return false;
                    }
                }
            }
        }
        match open_database(&self.inner.path, self.inner.cache_bytes) {
            Ok(db) => {
                *self.inner.db.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(db));
                tracing::warn!("database reopened after a storage failure");
                self.healthy()
            }
            Err(e) => {
                tracing::error!(error = %e, "database could not be reopened yet");
                false
            }
        }
    }
}

/// Open (or create) the file; see [`Store::open`].
fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, OpenError> {
    {
        let exists = path.exists();
        if !exists {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| OpenError::CreateDir(dir.to_path_buf(), e))?;
            }
        }
        let owned = path.to_path_buf();
        // redb checks some invariants with debug assertions; a hostile file must give an error
        // here, not a crash.
        let opened = std::panic::catch_unwind(move || {
            let mut builder = Database::builder();
            builder.set_cache_size(cache_bytes);
            builder.set_repair_callback(|_| {
                tracing::warn!("database was not closed cleanly; recovering");
            });
            if exists {
                builder.open(&owned)
            } else {
                builder.create(&owned)
            }
        });
        match opened {
            Ok(Ok(db)) => Ok(db),
            Ok(Err(e)) => Err(classify_open_error(path, e)),
            Err(_) => Err(OpenError::Corrupt(
                path.to_path_buf(),
                "the storage engine rejected its structure".into(),
            )),
        }
    }
}

impl Store {
    /// Compact the file at start-up (nothing else holds it yet), so that secrets a migration
    /// removed do not linger in free pages. A failure only leaves them there until reused.
    fn scrub_free_pages(&self) {
        let mut guard = self.inner.db.write().unwrap_or_else(|p| p.into_inner());
        let Some(db) = guard.as_mut().and_then(Arc::get_mut) else {
            return;
        };
        if let Err(e) = db.compact() {
            tracing::warn!(error = %e, "could not compact the database after a migration");
        }
    }

    /// Create the tables and run migrations; true when a migration removed secrets in clear.
    fn init_tables(&self) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(USERS)?;
        txn.open_table(USERS_BY_EMAIL)?;
        txn.open_table(USERS_BY_USERNAME)?;
        txn.open_table(RETIRED_USERNAMES)?;
        txn.open_table(confusable::USERS_BY_EMAIL_SKELETON)?;
        txn.open_table(SESSIONS)?;
        txn.open_multimap_table(USER_SESSIONS)?;
        txn.open_table(SESSION_EXPIRY)?;
        let has_flag = txn.open_table(SETTINGS)?.get(OWNER_EXISTS)?.is_some();
        if !has_flag {
            // Databases from before the flag: an owner stored then counts.
            let owners: Vec<UserRecord> = {
                let users = txn.open_table(USERS)?;
                let mut out = Vec::new();
                for entry in users.iter()? {
                    let u: UserRecord = records::decode(entry?.1.value())?;
                    if u.role == Role::Owner {
                        out.push(u);
                        break;
                    }
                }
                out
            };
            for owner in &owners {
                note_owner(&txn, owner)?;
            }
        }
        txn.open_table(lifecycle::INVITES)?;
        let moved = lifecycle::migrate_invites(&txn)?;
        if moved > 0 {
            tracing::info!(
                invites = moved,
                "invites now stored by the hash of their code"
            );
        }
        txn.open_table(lifecycle::TOKENS)?;
        txn.open_table(lifecycle::AUDIT)?;
        txn.open_table(identities::IDENTITIES)?;
        txn.open_multimap_table(identities::USER_IDENTITIES)?;
        txn.commit()?;
        Ok(moved > 0)
    }

    /// Whether a read transaction can be started and a table read (for `/auth/health`).
    /// Also false after a failed write, which redb latches until the file is reopened.
    pub fn healthy(&self) -> bool {
        if self.user_count().is_err() {
            return false;
        }
        let Ok(db) = self.db() else { return false };
        match db.try_begin_write() {
            // Nothing is written: the transaction is only a probe.
            Ok(txn) => txn.abort().is_ok(),
            Err(redb::TransactionError::Storage(_)) => false,
            // Busy with another writer: it answers.
            Err(_) => true,
        }
    }

    /// Number of users.
    pub fn user_count(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(USERS)?.len()?)
    }

    /// Number of stored sessions.
    pub fn session_count(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(SESSIONS)?.len()?)
    }

    // -- users -------------------------------------------------------------------------------

    /// Whether an owner has been stored (setup is done).
    pub fn owner_exists(&self) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_read()?;
        let settings = txn.open_table(SETTINGS)?;
        let found = settings.get(OWNER_EXISTS)?.is_some();
        Ok(found)
    }

    /// Create the first owner. Fails with `AlreadySetup` once an owner exists; racing callers
    /// are serialised by the write transaction, so exactly one wins.
    pub fn create_first_user(
        &self,
        user: &UserRecord,
        session: FirstSession<'_>,
    ) -> Result<(), UserWriteError> {
        let txn = self.db()?.begin_write().map_err(StoreError::from)?;
        if txn
            .open_table(SETTINGS)
            .map_err(StoreError::from)?
            .get(OWNER_EXISTS)
            .map_err(StoreError::from)?
            .is_some()
        {
            return Err(UserWriteError::AlreadySetup);
        }
        insert_user(&txn, user)?;
        if let Some((key, record, idle)) = session {
            insert_session(&txn, key, record, idle)?;
        }
        txn.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Create a user, refusing a taken email or username; optionally with a first session.
    pub fn create_user(
        &self,
        user: &UserRecord,
        session: FirstSession<'_>,
    ) -> Result<(), UserWriteError> {
        let txn = self.db()?.begin_write().map_err(StoreError::from)?;
        insert_user(&txn, user)?;
        if let Some((key, record, idle)) = session {
            insert_session(&txn, key, record, idle)?;
        }
        txn.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// A user by id.
    pub fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let users = txn.open_table(USERS)?;
        let found = users.get(id)?;
        found.map(|v| records::decode(v.value())).transpose()
    }

    /// A user by (canonical) email or username: an identifier with `@` is an email.
    pub fn find_user(&self, identifier: &str) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let index = if identifier.contains('@') {
            txn.open_table(USERS_BY_EMAIL)?
        } else {
            txn.open_table(USERS_BY_USERNAME)?
        };
        let id = match index.get(identifier)? {
            Some(id) => id.value().to_string(),
            None => return Ok(None),
        };
        let users = txn.open_table(USERS)?;
        let found = users.get(id.as_str())?;
        found.map(|v| records::decode(v.value())).transpose()
    }

    /// All users, in id order.
    pub fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let users = txn.open_table(USERS)?;
        let mut out = Vec::new();
        for entry in users.iter()? {
            let (_, v) = entry?;
            out.push(records::decode(v.value())?);
        }
        Ok(out)
    }

    /// Change a user in one transaction, keeping the email and username indexes in step.
    /// `change` may refuse by returning an error, which aborts the transaction.
    pub fn update_user<E>(
        &self,
        id: &str,
        change: impl FnOnce(&mut UserRecord) -> Result<(), E>,
    ) -> Result<Result<UserRecord, E>, UserWriteError> {
        let _changes = self.invalidates();
        let txn = self.db()?.begin_write().map_err(StoreError::from)?;
        let mut user = read_user(&txn, id)?.ok_or(UserWriteError::NotFound)?;
        let before = user.clone();
        if let Err(e) = change(&mut user) {
            return Ok(Err(e));
        }
        replace_user(&txn, &before, &user)?;
        txn.commit().map_err(StoreError::from)?;
        Ok(Ok(user))
    }

    /// Set a user's password hash and revoke their sessions except `keep`, in one transaction.
    /// Returns how many sessions were revoked.
    pub fn set_password(
        &self,
        id: &str,
        hash: &str,
        now: i64,
        keep: Option<&SessionKey>,
    ) -> Result<usize, UserWriteError> {
        let _changes = self.invalidates();
        let txn = self.db()?.begin_write().map_err(StoreError::from)?;
        let mut user = read_user(&txn, id)?.ok_or(UserWriteError::NotFound)?;
        let before = user.clone();
        user.password_hash = Some(hash.to_string());
        user.updated_at = now;
        replace_user(&txn, &before, &user)?;
        let revoked = revoke_user_sessions(&txn, id, keep)?;
        txn.commit().map_err(StoreError::from)?;
        Ok(revoked)
    }

    /// Replace a user's stored hash only if it is still `old` (re-hash on login after a
    /// parameter change must not undo a concurrent password change).
    pub fn upgrade_password_hash(&self, id: &str, old: &str, new: &str) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        if let Some(mut user) = read_user(&txn, id)? {
            if user.password_hash.as_deref() == Some(old) {
                let before = user.clone();
                user.password_hash = Some(new.to_string());
                replace_user(&txn, &before, &user).map_err(|e| match e {
                    UserWriteError::Store(s) => s,
                    other => StoreError::Unavailable(other.to_string()),
                })?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    // -- sessions ----------------------------------------------------------------------------

    /// Store a new session for a user and note the login time, in one transaction.
    pub fn create_session(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        idle_secs: i64,
    ) -> Result<(), UserWriteError> {
        let txn = self.db()?.begin_write().map_err(StoreError::from)?;
        let mut user = read_user(&txn, &record.user_id)?.ok_or(UserWriteError::NotFound)?;
        let before = user.clone();
        user.last_login_at = Some(record.created_at);
        replace_user(&txn, &before, &user)?;
        insert_session(&txn, key, record, idle_secs)?;
        let ended = end_oldest_sessions(&txn, &record.user_id, key, self.sessions_per_user())?;
        txn.commit().map_err(StoreError::from)?;
        if ended > 0 {
            drop(self.invalidates());
        }
        Ok(())
    }

    /// Store many sessions in one transaction (bulk loading: benchmarks, imports). The users
    /// must exist; their last-login time is left alone.
    pub fn import_sessions(
        &self,
        sessions: &[(SessionKey, SessionRecord)],
        idle_secs: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        for (key, record) in sessions {
            insert_session(&txn, key, record, idle_secs)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Rewrite the file without free space (the server must not be running). Returns whether
    /// anything was reclaimed.
    pub fn compact(self) -> Result<bool, StoreError> {
        let inner = Arc::try_unwrap(self.inner)
            .map_err(|_| StoreError::Unavailable("the database is in use".into()))?;
        let db = inner
            .db
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .ok_or_else(|| StoreError::Unavailable("the database is closed".into()))?;
        let mut db = Arc::try_unwrap(db)
            .map_err(|_| StoreError::Unavailable("the database is in use".into()))?;
        db.compact()
            .map_err(|e| StoreError::Unavailable(format!("compaction failed: {e}")))
    }

    /// A session by key.
    pub fn get_session(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let sessions = txn.open_table(SESSIONS)?;
        let found = sessions.get(key)?;
        found.map(|v| SessionRecord::decode(v.value())).transpose()
    }

    /// A session and its user, read in one snapshot: the session check of every request.
    pub fn get_session_and_user(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let sessions = txn.open_table(SESSIONS)?;
        let session: SessionRecord = match sessions.get(key)? {
            Some(v) => SessionRecord::decode(v.value())?,
            None => return Ok(None),
        };
        let users = txn.open_table(USERS)?;
        let user: UserRecord = match users.get(session.user_id.as_str())? {
            Some(v) => records::decode(v.value())?,
            None => return Ok(None),
        };
        Ok(Some((session, user)))
    }

    /// Delete one session. Returns whether it existed.
    pub fn delete_session(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let _changes = self.invalidates();
        let txn = self.db()?.begin_write()?;
        let existed = remove_session(&txn, key)?;
        txn.commit()?;
        Ok(existed)
    }

    /// Delete every session of a user except `keep`. Returns how many were deleted.
    pub fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&SessionKey>,
    ) -> Result<usize, StoreError> {
        let _changes = self.invalidates();
        let txn = self.db()?.begin_write()?;
        let n = revoke_user_sessions(&txn, user_id, keep)?;
        txn.commit()?;
        Ok(n)
    }

    /// A user's sessions with their keys.
    pub fn user_sessions(
        &self,
        user_id: &str,
    ) -> Result<Vec<(SessionKey, SessionRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let index = txn.open_multimap_table(USER_SESSIONS)?;
        let sessions = txn.open_table(SESSIONS)?;
        let mut out = Vec::new();
        for key in index.get(user_id)? {
            let key = key?.value();
            if let Some(v) = sessions.get(&key)? {
                out.push((key, SessionRecord::decode(v.value())?));
            }
        }
        Ok(out)
    }

    /// Record last-seen times (batched, off the request path). Sessions deleted meanwhile stay
    /// deleted. Returns how many were updated.
    pub fn touch_sessions(
        &self,
        touches: &[(SessionKey, i64)],
        idle_secs: i64,
    ) -> Result<usize, StoreError> {
        let txn = self.db()?.begin_write()?;
        let mut updated = 0;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut expiry = txn.open_table(SESSION_EXPIRY)?;
            for (key, seen) in touches {
                let mut record: SessionRecord = match sessions.get(key)? {
                    Some(v) => SessionRecord::decode(v.value())?,
                    None => continue,
                };
                if *seen <= record.last_seen {
                    continue;
                }
                expiry.remove((record.indexed_expiry, *key))?;
                record.last_seen = *seen;
                record.indexed_expiry = record.effective_expiry(idle_secs);
                expiry.insert((record.indexed_expiry, *key), ())?;
                sessions.insert(key, record.encode()?.as_slice())?;
                updated += 1;
            }
        }
        txn.commit()?;
        Ok(updated)
    }

    /// Delete sessions whose effective expiry is before `now`, at most `limit` per call.
    /// Returns how many were deleted.
    pub fn sweep_expired_sessions(&self, now: i64, limit: usize) -> Result<usize, StoreError> {
        let _changes = self.invalidates();
        let txn = self.db()?.begin_write()?;
        let expired: Vec<SessionKey> = {
            let expiry = txn.open_table(SESSION_EXPIRY)?;
            let mut keys = Vec::new();
            for entry in expiry.range(..(now, [0u8; 32]))? {
                if keys.len() >= limit {
                    break;
                }
                keys.push(entry?.0.value().1);
            }
            keys
        };
        for key in &expired {
            remove_session(&txn, key)?;
        }
        txn.commit()?;
        Ok(expired.len())
    }

    // -- settings ----------------------------------------------------------------------------

    /// A stored setting (JSON).
    pub fn get_setting(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let settings = txn.open_table(SETTINGS)?;
        let found = settings.get(name)?;
        found.map(|v| records::decode(v.value())).transpose()
    }

    /// Store settings (JSON), all in one transaction.
    pub fn put_settings(&self, values: &[(&str, serde_json::Value)]) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        {
            let mut settings = txn.open_table(SETTINGS)?;
            for (name, value) in values {
                settings.insert(*name, records::encode(value)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

fn classify_open_error(path: &Path, e: redb::DatabaseError) -> OpenError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse(path.to_path_buf()),
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            OpenError::Corrupt(path.to_path_buf(), detail)
        }
        redb::DatabaseError::UpgradeRequired(v) => OpenError::Corrupt(
            path.to_path_buf(),
            format!("written in an unsupported file format version {v}"),
        ),
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::UnexpectedEof
                || io.kind() == std::io::ErrorKind::InvalidData =>
        {
            OpenError::Corrupt(path.to_path_buf(), io.to_string())
        }
        other => OpenError::Other(path.to_path_buf(), other.to_string()),
    }
}

fn read_user(txn: &WriteTransaction, id: &str) -> Result<Option<UserRecord>, StoreError> {
    let users = txn.open_table(USERS)?;
    let found = users.get(id)?;
    found.map(|v| records::decode(v.value())).transpose()
}

fn insert_user(txn: &WriteTransaction, user: &UserRecord) -> Result<(), UserWriteError> {
    let mut by_email = txn.open_table(USERS_BY_EMAIL).map_err(StoreError::from)?;
    if by_email
        .get(user.email.as_str())
        .map_err(StoreError::from)?
        .is_some()
    {
        return Err(UserWriteError::EmailTaken);
    }
    confusable::claim_skeleton(txn, user)?;
    let mut by_username = txn
        .open_table(USERS_BY_USERNAME)
        .map_err(StoreError::from)?;
    if let Some(name) = &user.username {
        if by_username
            .get(name.as_str())
            .map_err(StoreError::from)?
            .is_some()
            || !username_free_for(txn, name, &user.id)?
        {
            return Err(UserWriteError::UsernameTaken);
        }
        by_username
            .insert(name.as_str(), user.id.as_str())
            .map_err(StoreError::from)?;
    }
    by_email
        .insert(user.email.as_str(), user.id.as_str())
        .map_err(StoreError::from)?;
    let mut users = txn.open_table(USERS).map_err(StoreError::from)?;
    users
        .insert(user.id.as_str(), records::encode(user)?.as_slice())
        .map_err(StoreError::from)?;
    note_owner(txn, user)?;
    Ok(())
}

/// Whether `name` was never given up by anyone but `user_id` (who may take it back).
fn username_free_for(
    txn: &WriteTransaction,
    name: &str,
    user_id: &str,
) -> Result<bool, StoreError> {
    let retired = txn.open_table(RETIRED_USERNAMES)?;
    let holder = retired.get(name)?.map(|v| v.value().to_string());
    Ok(holder.is_none_or(|h| h == user_id))
}

/// Keep a username given up by `user_id` away from everyone else.
pub(super) fn retire_username(
    txn: &WriteTransaction,
    name: &str,
    user_id: &str,
) -> Result<(), StoreError> {
    let mut retired = txn.open_table(RETIRED_USERNAMES)?;
    if retired.get(name)?.is_none() {
        retired.insert(name, user_id)?;
    }
    Ok(())
}

/// Record, in the writing transaction, that an owner exists.
fn note_owner(txn: &WriteTransaction, user: &UserRecord) -> Result<(), StoreError> {
    if user.role == Role::Owner {
        txn.open_table(SETTINGS)?
            .insert(OWNER_EXISTS, records::encode(&true)?.as_slice())?;
    }
    Ok(())
}

/// Write `after` over `before`, moving index entries whose email or username changed (a new
/// email must be neither taken nor a look-alike of another user's).
fn replace_user(
    txn: &WriteTransaction,
    before: &UserRecord,
    after: &UserRecord,
) -> Result<(), UserWriteError> {
    if before.email != after.email {
        let mut by_email = txn.open_table(USERS_BY_EMAIL).map_err(StoreError::from)?;
        if by_email
            .get(after.email.as_str())
            .map_err(StoreError::from)?
            .is_some()
        {
            return Err(UserWriteError::EmailTaken);
        }
        by_email
            .remove(before.email.as_str())
            .map_err(StoreError::from)?;
        by_email
            .insert(after.email.as_str(), after.id.as_str())
            .map_err(StoreError::from)?;
        confusable::release_skeleton(txn, &before.id, &before.email)?;
        confusable::claim_skeleton(txn, after)?;
    }
    if before.username != after.username {
        let mut by_username = txn
            .open_table(USERS_BY_USERNAME)
            .map_err(StoreError::from)?;
        if let Some(new) = &after.username {
            if by_username
                .get(new.as_str())
                .map_err(StoreError::from)?
                .is_some()
                || !username_free_for(txn, new, &after.id)?
            {
                return Err(UserWriteError::UsernameTaken);
            }
        }
        if let Some(old) = &before.username {
            by_username.remove(old.as_str()).map_err(StoreError::from)?;
            retire_username(txn, old, &before.id)?;
        }
        if let Some(new) = &after.username {
            by_username
                .insert(new.as_str(), after.id.as_str())
                .map_err(StoreError::from)?;
        }
    }
    let mut users = txn.open_table(USERS).map_err(StoreError::from)?;
    users
        .insert(after.id.as_str(), records::encode(after)?.as_slice())
        .map_err(StoreError::from)?;
    note_owner(txn, after)?;
    Ok(())
}

fn insert_session(
    txn: &WriteTransaction,
    key: &SessionKey,
    record: &SessionRecord,
    idle_secs: i64,
) -> Result<(), StoreError> {
    let mut record = record.clone();
    record.indexed_expiry = record.effective_expiry(idle_secs);
    txn.open_table(SESSIONS)?
        .insert(key, record.encode()?.as_slice())?;
    txn.open_multimap_table(USER_SESSIONS)?
        .insert(record.user_id.as_str(), key)?;
    txn.open_table(SESSION_EXPIRY)?
        .insert((record.indexed_expiry, *key), ())?;
    Ok(())
}

/// End a user's oldest sessions (by creation, to the second) beyond `max`, never `keep` (the
/// one just opened); returns how many were ended.
fn end_oldest_sessions(
    txn: &WriteTransaction,
    user_id: &str,
    keep: &SessionKey,
    max: usize,
) -> Result<usize, StoreError> {
    let keys: Vec<SessionKey> = {
        let index = txn.open_multimap_table(USER_SESSIONS)?;
        let mut keys = Vec::new();
        for k in index.get(user_id)? {
            keys.push(k?.value());
        }
        keys
    };
    if keys.len() <= max {
        return Ok(0);
    }
    let mut dated: Vec<(i64, SessionKey)> = Vec::with_capacity(keys.len());
    {
        let sessions = txn.open_table(SESSIONS)?;
        for key in keys.into_iter().filter(|k| k != keep) {
            let created = match sessions.get(&key)? {
                Some(v) => SessionRecord::decode(v.value())?.created_at,
                None => i64::MIN,
            };
            dated.push((created, key));
        }
    }
    dated.sort();
    // `dated` lacks `keep`, which counts towards `max`.
    let excess = (dated.len() + 1).saturating_sub(max);
    for (_, key) in &dated[..excess] {
        remove_session(txn, key)?;
    }
    Ok(excess)
}

/// Remove a session from all three tables, using the expiry key recorded in the session.
fn remove_session(txn: &WriteTransaction, key: &SessionKey) -> Result<bool, StoreError> {
    let mut sessions = txn.open_table(SESSIONS)?;
    let record: SessionRecord = match sessions.remove(key)? {
        Some(v) => SessionRecord::decode(v.value())?,
        None => return Ok(false),
    };
    txn.open_multimap_table(USER_SESSIONS)?
        .remove(record.user_id.as_str(), key)?;
    txn.open_table(SESSION_EXPIRY)?
        .remove((record.indexed_expiry, *key))?;
    Ok(true)
}

fn revoke_user_sessions(
    txn: &WriteTransaction,
    user_id: &str,
    keep: Option<&SessionKey>,
) -> Result<usize, StoreError> {
    let keys: Vec<SessionKey> = {
        let index = txn.open_multimap_table(USER_SESSIONS)?;
        let mut keys = Vec::new();
        for k in index.get(user_id)? {
            let k = k?.value();
            if Some(&k) != keep {
                keys.push(k);
            }
        }
        keys
    };
    let mut n = 0;
    for key in &keys {
        if remove_session(txn, key)? {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, email: &str, username: Option<&str>) -> UserRecord {
        UserRecord {
            id: id.into(),
            email: email.into(),
            username: username.map(str::to_string),
            full_name: None,
            first_name: None,
            last_name: None,
            role: Role::User,
            groups: vec![],
            status: UserStatus::Active,
            email_verified: false,
            password_hash: Some("h".into()),
            created_at: 1,
            updated_at: 1,
            last_login_at: None,
            expires_at: None,
        }
    }

    fn session(user_id: &str, created: i64, expires: i64) -> SessionRecord {
        SessionRecord {
            user_id: user_id.into(),
            created_at: created,
            expires_at: expires,
            last_seen: created,
            indexed_expiry: 0,
            remember: false,
            ip: None,
            user_agent: None,
        }
    }

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("sub/db.redb")).expect("opens");
        (dir, store)
    }

    #[test]
    fn indexes_follow_user_writes() {
        let (_d, store) = temp_store();
        store
            .create_user(&user("1", "a@x.io", Some("al")), None)
            .expect("created");
        assert!(matches!(
            store.create_user(&user("2", "a@x.io", None), None),
            Err(UserWriteError::EmailTaken)
        ));
        assert!(matches!(
            store.create_user(&user("3", "b@x.io", Some("al")), None),
            Err(UserWriteError::UsernameTaken)
        ));
        assert_eq!(store.user_count().expect("count"), 1);
        assert_eq!(
            store.find_user("al").expect("read").map(|u| u.id),
            Some("1".into())
        );
        assert_eq!(
            store.find_user("a@x.io").expect("read").map(|u| u.id),
            Some("1".into())
        );

        store
            .create_user(&user("4", "c@x.io", Some("cy")), None)
            .expect("created");
        let clash = store
            .update_user::<()>("1", |u| {
                u.username = Some("cy".into());
                Ok(())
            })
            .map(|_| ());
        assert!(matches!(clash, Err(UserWriteError::UsernameTaken)));
        store
            .update_user::<()>("1", |u| {
                u.username = Some("al2".into());
                Ok(())
            })
            .expect("renamed")
            .expect("accepted");
        assert!(store.find_user("al").expect("read").is_none());
        assert_eq!(
            store.find_user("al2").expect("read").map(|u| u.id),
            Some("1".into())
        );
    }

    /// The user that the look-alike index names for `email`'s skeleton.
    fn skeleton_owner(store: &Store, email: &str) -> Option<String> {
        let txn = store.db().expect("db").begin_read().expect("read");
        let index = txn
            .open_table(confusable::USERS_BY_EMAIL_SKELETON)
            .expect("table");
        let owner = index
            .get(email_skeleton(email).as_str())
            .expect("get")
            .map(|v| v.value().to_string());
        owner
    }

    #[test]
    fn look_alike_emails_are_refused_and_the_index_follows_renames_and_deletes() {
        let (_d, store) = temp_store();
        let mut owner = user("1", "owner@example.com", None);
        owner.role = Role::Owner;
        store.create_user(&owner, None).expect("created");
        for look_alike in [
            "\u{43e}wner@example.com",
            "own\u{e9}r@example.com",
            "0wner@example.com",
            "owner@examp1e.com",
        ] {
            assert!(
                matches!(
                    store.create_user(&user("2", look_alike, None), None),
                    Err(UserWriteError::EmailConfusable)
                ),
                "{look_alike:?}"
            );
        }
        assert!(matches!(
            store.create_user(&user("2", "owner@example.com", None), None),
            Err(UserWriteError::EmailTaken)
        ));
        assert_eq!(store.user_count().expect("count"), 1);

        store
            .create_user(&user("3", "other@example.com", None), None)
            .expect("created");
        let change_to = |id: &str, email: &str| {
            store
                .update_user::<()>(id, |u| {
                    u.email = email.into();
                    Ok(())
                })
                .map(|_| ())
        };
        assert!(matches!(
            change_to("3", "\u{43e}wner@example.com"),
            Err(UserWriteError::EmailConfusable)
        ));
        assert_eq!(
            skeleton_owner(&store, "other@example.com").as_deref(),
            Some("3")
        );
        change_to("3", "renamed@example.com").expect("renamed");
        assert_eq!(skeleton_owner(&store, "other@example.com"), None);
        assert_eq!(
            skeleton_owner(&store, "renamed@example.com").as_deref(),
            Some("3")
        );
        // A rename to a spelling of the same skeleton keeps the entry.
        change_to("3", "renarned@example.com").expect("renamed");
        assert_eq!(
            skeleton_owner(&store, "renamed@example.com").as_deref(),
            Some("3")
        );

        store.delete_user("3").expect("deleted");
        assert_eq!(skeleton_owner(&store, "renamed@example.com"), None);
        store
            .create_user(&user("4", "renamed@example.com", None), None)
            .expect("the address is free again");

        // An entry naming a user who is gone (or computed by older Unicode data) is stale.
        {
            let txn = store.db().expect("db").begin_write().expect("write");
            txn.open_table(confusable::USERS_BY_EMAIL_SKELETON)
                .expect("table")
                .insert(email_skeleton("ghost@example.com").as_str(), "gone")
                .expect("insert");
            txn.commit().expect("commit");
        }
        store
            .create_user(&user("5", "ghost@example.com", None), None)
            .expect("a stale entry does not block");
        assert_eq!(
            skeleton_owner(&store, "ghost@example.com").as_deref(),
            Some("5")
        );
    }

    #[test]
    fn opening_an_older_database_builds_the_look_alike_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.redb");
        // As written before the index existed: two look-alikes side by side.
        let mut owner = user("b-owner", "owner@example.com", None);
        owner.created_at = 10;
        let mut copy = user("a-copy", "\u{43e}wner@example.com", None);
        copy.created_at = 20;
        let mut other = user("c-other", "other@example.com", None);
        other.role = Role::Owner;
        {
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("write");
            {
                let mut users = txn.open_table(USERS).expect("users");
                let mut by_email = txn.open_table(USERS_BY_EMAIL).expect("by email");
                for u in [&owner, &copy, &other] {
                    users
                        .insert(
                            u.id.as_str(),
                            records::encode(u).expect("encode").as_slice(),
                        )
                        .expect("insert");
                    by_email
                        .insert(u.email.as_str(), u.id.as_str())
                        .expect("insert");
                }
            }
            txn.commit().expect("commit");
        }
        let store = Store::open(&path).expect("opens");
        assert_eq!(store.user_count().expect("count"), 3, "nobody is dropped");
        // The earlier account keeps the skeleton, whatever the ids' order.
        assert_eq!(
            skeleton_owner(&store, "owner@example.com").as_deref(),
            Some("b-owner")
        );
        assert_eq!(
            skeleton_owner(&store, "other@example.com").as_deref(),
            Some("c-other")
        );
        assert!(matches!(
            store.create_user(&user("d", "0wner@example.com", None), None),
            Err(UserWriteError::EmailConfusable)
        ));
        // Deleting the first hands the entry to the look-alike that is still there.
        store.delete_user("b-owner").expect("deleted");
        assert_eq!(
            skeleton_owner(&store, "owner@example.com").as_deref(),
            Some("a-copy")
        );
        assert!(matches!(
            store.create_user(&user("d", "owner@example.com", None), None),
            Err(UserWriteError::EmailConfusable)
        ));
        drop(store);
        // Built once: a reopened database keeps its index as it is.
        let store = Store::open(&path).expect("reopens");
        assert_eq!(
            skeleton_owner(&store, "owner@example.com").as_deref(),
            Some("a-copy")
        );
    }

    #[test]
    fn first_owner_is_created_once() {
        let (_d, store) = temp_store();
        let owner = |id: &str, email: &str| UserRecord {
            role: Role::Owner,
            ..user(id, email, None)
        };
        // A plain user (from the CLI, say) does not complete setup.
        store
            .create_user(&user("0", "plain@x.io", None), None)
            .expect("plain user");
        assert!(!store.owner_exists().expect("read"));
        store
            .create_first_user(&owner("1", "a@x.io"), None)
            .expect("first");
        assert!(store.owner_exists().expect("read"));
        assert!(matches!(
            store.create_first_user(&owner("2", "b@x.io"), None),
            Err(UserWriteError::AlreadySetup)
        ));
    }

    #[test]
    fn sessions_are_indexed_per_user_and_by_expiry() {
        let (_d, store) = temp_store();
        store
            .create_user(&user("1", "a@x.io", None), None)
            .expect("user");
        let (k1, k2, k3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        store
            .create_session(&k1, &session("1", 100, 1000), 50)
            .expect("s1");
        store
            .create_session(&k2, &session("1", 100, 1000), 50)
            .expect("s2");
        store
            .create_session(&k3, &session("1", 100, 120), 50)
            .expect("s3");
        assert_eq!(store.user_sessions("1").expect("list").len(), 3);
        assert_eq!(
            store
                .get_user("1")
                .expect("u")
                .and_then(|u| u.last_login_at),
            Some(100)
        );

        // k1 idles out at 150 unless touched; touch moves it to 190.
        assert_eq!(store.touch_sessions(&[(k1, 140)], 50).expect("touch"), 1);
        assert_eq!(store.sweep_expired_sessions(160, 100).expect("sweep"), 2);
        assert!(store.get_session(&k1).expect("read").is_some());
        assert!(store.get_session(&k2).expect("read").is_none());
        assert!(store.get_session(&k3).expect("read").is_none());
        assert_eq!(store.sweep_expired_sessions(191, 100).expect("sweep"), 1);
        assert_eq!(store.session_count().expect("count"), 0);
        assert!(store.user_sessions("1").expect("list").is_empty());
    }

    #[test]
    fn usernames_given_up_are_never_given_to_someone_else() {
        let (_d, store) = temp_store();
        let owner = UserRecord {
            role: Role::Owner,
            ..user("1", "a@x.io", Some("alice"))
        };
        store.create_user(&owner, None).expect("alice");
        store
            .create_user(&user("2", "b@x.io", Some("bob")), None)
            .expect("bob");
        let rename = |id: &str, name: Option<&str>| {
            store
                .update_user::<()>(id, |u| {
                    u.username = name.map(str::to_string);
                    Ok(())
                })
                .map(|_| ())
        };
        rename("1", Some("alice2")).expect("renamed");
        // Free in the index, but retired: nobody else gets it, by rename or creation.
        assert!(store.find_user("alice").expect("read").is_none());
        assert!(matches!(
            rename("2", Some("alice")),
            Err(UserWriteError::UsernameTaken)
        ));
        assert!(matches!(
            store.create_user(&user("3", "c@x.io", Some("alice")), None),
            Err(UserWriteError::UsernameTaken)
        ));
        // Its holder may take it back.
        rename("1", Some("alice")).expect("back");
        // A deleted user's name stays retired too.
        store.delete_user("2").expect("deleted");
        assert!(matches!(
            store.create_user(&user("4", "d@x.io", Some("bob")), None),
            Err(UserWriteError::UsernameTaken)
        ));
        store
            .create_user(&user("5", "e@x.io", Some("carol")), None)
            .expect("a name never used is free");
    }

    #[test]
    fn a_sign_in_beyond_the_cap_ends_the_oldest_session() {
        let (_d, store) = temp_store();
        store.set_sessions_per_user(3);
        store
            .create_user(&user("1", "a@x.io", None), None)
            .expect("user");
        store
            .create_user(&user("2", "b@x.io", None), None)
            .expect("user");
        store
            .create_session(&[9; 32], &session("2", 1, 1000), 500)
            .expect("other user's");
        for k in 1..=5u8 {
            let epoch = store.epoch();
            store
                .create_session(&[k; 32], &session("1", 100 + i64::from(k), 1000), 500)
                .expect("s");
            // Ending a session must invalidate copies kept in memory; adding one need not.
            assert_eq!(store.epoch() > epoch, k > 3, "session {k}");
        }
        let mut left: Vec<u8> = store
            .user_sessions("1")
            .expect("list")
            .iter()
            .map(|(k, _)| k[0])
            .collect();
        left.sort();
        assert_eq!(left, vec![3, 4, 5], "the newest three stay");
        assert!(store.get_session(&[9; 32]).expect("read").is_some());
    }

    #[test]
    fn password_change_revokes_all_but_the_kept_session() {
        let (_d, store) = temp_store();
        store
            .create_user(&user("1", "a@x.io", None), None)
            .expect("user");
        for k in 1..=3u8 {
            store
                .create_session(&[k; 32], &session("1", 100, 1000), 500)
                .expect("s");
        }
        assert_eq!(
            store
                .set_password("1", "new", 200, Some(&[2u8; 32]))
                .expect("set"),
            2
        );
        assert!(store.get_session(&[2u8; 32]).expect("read").is_some());
        assert!(store.get_session(&[1u8; 32]).expect("read").is_none());
        assert_eq!(
            store
                .get_user("1")
                .expect("u")
                .and_then(|u| u.password_hash),
            Some("new".into())
        );
        assert_eq!(store.delete_user_sessions("1", None).expect("all"), 1);
        // Nothing left in the expiry index either.
        assert_eq!(
            store.sweep_expired_sessions(i64::MAX, 100).expect("sweep"),
            0
        );
    }

    #[test]
    fn touch_never_resurrects_a_deleted_session() {
        let (_d, store) = temp_store();
        store
            .create_user(&user("1", "a@x.io", None), None)
            .expect("user");
        store
            .create_session(&[7; 32], &session("1", 100, 1000), 500)
            .expect("s");
        assert!(store.delete_session(&[7; 32]).expect("deleted"));
        assert_eq!(
            store.touch_sessions(&[([7; 32], 300)], 500).expect("touch"),
            0
        );
        assert!(store.get_session(&[7; 32]).expect("read").is_none());
    }

    #[test]
    fn data_survives_reopen_and_garbage_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.redb");
        {
            let store = Store::open(&path).expect("opens");
            store
                .create_user(&user("1", "a@x.io", None), None)
                .expect("user");
            store
                .put_settings(&[("registration", serde_json::json!("closed"))])
                .expect("set");
        }
        let store = Store::open(&path).expect("reopens");
        assert_eq!(store.user_count().expect("count"), 1);
        assert_eq!(
            store.get_setting("registration").expect("read"),
            Some(serde_json::json!("closed"))
        );
        drop(store);

        let bad = dir.path().join("bad.redb");
        let garbage = b"this is not a database at all, just some bytes".repeat(200);
        std::fs::write(&bad, &garbage).expect("write");
        let err = Store::open(&bad).err().expect("refused");
        assert!(
            matches!(err, OpenError::Corrupt(..) | OpenError::Other(..)),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&bad).expect("read"),
            garbage,
            "file must be untouched"
        );

        let truncated = dir.path().join("truncated.redb");
        let full = std::fs::read(&path).expect("read");
        std::fs::write(&truncated, &full[..full.len().min(100)]).expect("write");
        let before = std::fs::read(&truncated).expect("read");
        assert!(Store::open(&truncated).is_err());
        assert_eq!(
            std::fs::read(&truncated).expect("read"),
            before,
            "file must be untouched"
        );
    }
}
