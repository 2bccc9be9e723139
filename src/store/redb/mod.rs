//! The embedded backend: everything in one redb file, for one process. Users with their
//! email, look-alike email and username indexes; sessions (keyed by the SHA-256 of the token)
//! with a per-user and an expiry index; invites, mailed tokens, identities, passkeys with the
//! state of their ceremonies, settings and the audit log. Counters and sign-ins waiting for a
//! provider stay in memory ([`super::memory`]).
//!
//! Writes commit with fsync before they return and run on the blocking pool; short reads run
//! inline. After a commit that ends a session or changes a user, the change is announced
//! through [`Events`] before the write returns.

mod api_tokens;
mod audit;
mod backend;
mod factors;
mod identities;
mod lifecycle;
mod passkeys;
mod sessions;
mod settings;
mod skeletons;
mod snapshot;
#[cfg(test)]
mod tests;
mod users;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

use super::memory::{MemoryCounters, MemoryFlows};
use super::records::{self, Role, SessionRecord, UserRecord};
use super::{Events, OpenError, SessionKey, StoreError, StoreEvent};

const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users_v1");
const USERS_BY_EMAIL: TableDefinition<&str, &str> = TableDefinition::new("users_by_email_v1");
const USERS_BY_USERNAME: TableDefinition<&str, &str> = TableDefinition::new("users_by_username_v1");
/// Usernames given up by a rename or a deletion → the user who held them. Apps keyed on
/// `Remote-User` would hand a new holder the old one's data, so they are never given to
/// anyone else.
const RETIRED_USERNAMES: TableDefinition<&str, &str> = TableDefinition::new("retired_usernames_v1");
/// Email skeleton → id of the user it belongs to.
const USERS_BY_EMAIL_SKELETON: TableDefinition<&str, &str> =
    TableDefinition::new("users_by_email_skeleton_v1");
const SESSIONS: TableDefinition<SessionKey, &[u8]> = TableDefinition::new("sessions_v1");
const USER_SESSIONS: MultimapTableDefinition<&str, SessionKey> =
    MultimapTableDefinition::new("user_sessions_v1");
/// (effective expiry, session key) → (); swept in key order.
const SESSION_EXPIRY: TableDefinition<(i64, SessionKey), ()> =
    TableDefinition::new("session_expiry_v1");
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings_v1");
/// Invites by the SHA-256 of their code.
const INVITES: TableDefinition<SessionKey, &[u8]> = TableDefinition::new("invites_v2");
/// Invites by their code in clear: read once at start-up, moved to `invites_v2`, deleted.
const INVITES_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("invites_v1");
const TOKENS: TableDefinition<SessionKey, &[u8]> = TableDefinition::new("tokens_v1");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_v1");
/// `provider\nsubject` → identity.
const IDENTITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("identities_v1");
/// user id → `provider\nsubject` keys.
const USER_IDENTITIES: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("user_identities_v1");
/// user id → the user's second factors.
const FACTORS: TableDefinition<&str, &[u8]> = TableDefinition::new("second_factors_v1");
/// Credential id → passkey.
const PASSKEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("passkeys_v1");
/// user id → credential ids.
const USER_PASSKEYS: MultimapTableDefinition<&str, &[u8]> =
    MultimapTableDefinition::new("user_passkeys_v1");
/// SHA-256 of an API token → the token's record.
const API_TOKENS: TableDefinition<SessionKey, &[u8]> = TableDefinition::new("api_tokens_v1");
/// user id → the keys of their API tokens.
const USER_API_TOKENS: MultimapTableDefinition<&str, SessionKey> =
    MultimapTableDefinition::new("user_api_tokens_v1");
/// Key chosen by the caller → (expiry, a passkey ceremony's state); taken once.
const WEBAUTHN_CHALLENGES: TableDefinition<[u8; 32], (i64, &[u8])> =
    TableDefinition::new("webauthn_challenges_v1");

/// Set (to `true`) in the transaction that first stores an owner; never cleared, since the
/// last owner cannot be removed. Setup is possible, and registration refused, until then.
const OWNER_EXISTS: &str = "owner_exists";
const SETTING_REGISTRATION: &str = "registration";
const SETTING_NATIVE_SIGNIN: &str = "native_signin";

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Unavailable(e.to_string())
            }
        }
        impl From<$t> for super::WriteError {
            fn from(e: $t) -> Self {
                super::WriteError::Store(e.into())
            }
        }
        impl From<$t> for super::ImportError {
            fn from(e: $t) -> Self {
                super::ImportError::Store(e.into())
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

/// Sessions per user unless configured (`session.max_per_user`).
const DEFAULT_SESSIONS_PER_USER: usize = 50;

/// The page cache unless configured (`storage.cache_size`).
const DEFAULT_CACHE: usize = 64 << 20;

/// The redb backend; cheap to clone.
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    cache_bytes: usize,
    /// `None` while the database is being reopened after an I/O failure.
    db: std::sync::RwLock<Option<Arc<Database>>>,
    /// Sessions a user may have at most; a sign-in beyond it ends the oldest.
    sessions_per_user: AtomicUsize,
    events: Events,
    counters: MemoryCounters,
    flows: MemoryFlows,
}

impl RedbStore {
    /// Open the database at `path`, creating it (and its folder) when missing. An existing file
    /// is opened, never re-created: a corrupt file stops start-up and is left as it is.
    pub fn open(path: &Path) -> Result<RedbStore, OpenError> {
        RedbStore::open_with_cache(path, DEFAULT_CACHE)
    }

    /// [`RedbStore::open`] with a page cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<RedbStore, OpenError> {
        let db = open_database(path, cache_bytes)?;
        let store = RedbStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                cache_bytes,
                db: std::sync::RwLock::new(Some(Arc::new(db))),
                sessions_per_user: AtomicUsize::new(DEFAULT_SESSIONS_PER_USER),
                events: Events::default(),
                counters: MemoryCounters::default(),
                flows: MemoryFlows::default(),
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

    /// The cap set by `set_sessions_per_user`.
    fn sessions_per_user(&self) -> usize {
        self.inner.sessions_per_user.load(Ordering::Relaxed)
    }

    /// Announce committed changes.
    fn publish(&self, events: &[StoreEvent]) {
        self.inner.events.publish_all(events);
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

    /// Run `op` on the blocking pool (writes fsync).
    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&RedbStore) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let out = op(&me);
            me.inner.events.timed(started.elapsed());
            out
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("storage task failed: {e}")))
    }

    /// After a failed write redb refuses every later operation until the file is reopened
    /// (e.g. once a full disk has space again). If the database no longer answers, close it
    /// (waiting briefly for operations in flight) and open it again. Returns whether it is
    /// usable afterwards.
    pub fn recover_blocking(&self) -> bool {
        if self.healthy_blocking() {
            return true;
        }
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
        // Whatever was kept in memory was read from the old handle.
        self.publish(&[StoreEvent::Everything]);
        match open_database(&self.inner.path, self.inner.cache_bytes) {
            Ok(db) => {
                *self.inner.db.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(db));
                tracing::warn!("database reopened after a storage failure");
                self.healthy_blocking()
            }
            Err(e) => {
                tracing::error!(error = %e, "database could not be reopened yet");
                false
            }
        }
    }

    /// Whether a read transaction can be started and a table read (for `/auth/health`).
    /// Also false after a failed write, which redb latches until the file is reopened.
    pub fn healthy_blocking(&self) -> bool {
        if self.user_count_now().is_err() {
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
        txn.open_table(USERS_BY_EMAIL_SKELETON)?;
        txn.open_table(SESSIONS)?;
        txn.open_table(API_TOKENS)?;
        txn.open_multimap_table(USER_API_TOKENS)?;
        txn.open_multimap_table(USER_SESSIONS)?;
        txn.open_table(SESSION_EXPIRY)?;
        let has_flag = txn.open_table(SETTINGS)?.get(OWNER_EXISTS)?.is_some();
        if !has_flag {
            // Databases from before the flag: an owner stored then counts.
            let owner: Option<UserRecord> = {
                let users = txn.open_table(USERS)?;
                let mut found = None;
                for entry in users.iter()? {
                    let u: UserRecord = records::decode(entry?.1.value())?;
                    if u.role == Role::Owner {
                        found = Some(u);
                        break;
                    }
                }
                found
            };
            if let Some(owner) = &owner {
                users::note_owner(&txn, owner)?;
            }
        }
        txn.open_table(INVITES)?;
        let moved = lifecycle::migrate_invites(&txn)?;
        if moved > 0 {
            tracing::info!(
                invites = moved,
                "invites are now stored by the hash of their code"
            );
        }
        txn.open_table(TOKENS)?;
        txn.open_table(AUDIT)?;
        txn.open_table(IDENTITIES)?;
        txn.open_multimap_table(USER_IDENTITIES)?;
        txn.open_table(FACTORS)?;
        txn.open_table(PASSKEYS)?;
        txn.open_multimap_table(USER_PASSKEYS)?;
        txn.open_table(WEBAUTHN_CHALLENGES)?;
        txn.commit()?;
        Ok(moved > 0)
    }

    /// Number of users (a read that needs no pool).
    fn user_count_now(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(USERS)?.len()?)
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

    /// Store many sessions in one transaction (bulk loading: benchmarks, imports). The users
    /// must exist; their last-login time is left alone.
    pub fn import_sessions(
        &self,
        sessions: &[(SessionKey, SessionRecord)],
        idle_secs: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        for (key, record) in sessions {
            sessions::insert_session(&txn, key, record, idle_secs)?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// Open (or create) the file; see [`RedbStore::open`].
fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, OpenError> {
    let exists = path.exists();
    if !exists {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| OpenError::CreateDir(dir.to_path_buf(), e))?;
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
