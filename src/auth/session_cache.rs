//! Live credentials (sessions, API tokens) kept in memory in front of the store, so the
//! per-request check is a hash lookup instead of a database read.
//!
//! Correctness rests on the store's announcements ([`StoreEvent`]): a session or token that
//! ended is removed, every credential of a user who changed is removed, and a copy read before such an
//! announcement is never kept after it (an insert carries the sequence number seen before the
//! read, and is dropped when an announcement since then concerns it). Time-based expiry
//! (absolute, idle, account expiry) is checked on every hit. Only live sessions of active
//! users are kept.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::auth::session::Identity;
use crate::store::{Listener, SessionKey, SessionRecord, StoreEvent, UserRecord};

/// Independent locks, so threads rarely wait for each other.
const SHARDS: usize = 64;

/// Announcements remembered for inserts racing them; an insert older than all of them is
/// dropped (it will be read again).
const RECENT_EVENTS: usize = 1024;

/// Keys are SHA-256 digests: their first eight bytes are already a good hash.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

type Shard<T> = HashMap<SessionKey, Entry<T>, BuildHasherDefault<DigestHasher>>;

/// What the cache needs to know of what it keeps.
pub trait Cached: Send + Sync + 'static {
    /// The SHA-256 of the credential.
    fn key(&self) -> &SessionKey;
    fn user_id(&self) -> &str;
    /// Unusable from this time on (Unix seconds).
    fn valid_until(&self) -> i64;
    /// The last activity the store knows of.
    fn last_seen(&self) -> i64;
}

impl Cached for LiveSession {
    fn key(&self) -> &SessionKey {
        &self.key
    }
    fn user_id(&self) -> &str {
        &self.user.id
    }
    fn valid_until(&self) -> i64 {
        self.valid_until
    }
    fn last_seen(&self) -> i64 {
        self.session.last_seen
    }
}

/// What a live session stands for, read once from the store.
#[derive(Debug)]
pub struct LiveSession {
    pub key: SessionKey,
    pub session: SessionRecord,
    pub user: UserRecord,
    pub identity: Identity,
    /// The earlier of the session's absolute expiry and the account's expiry.
    pub valid_until: i64,
}

struct Entry<T> {
    live: Arc<T>,
    last_seen: i64,
}

/// A credential found in memory.
pub struct Hit<T> {
    pub live: Arc<T>,
    pub last_seen: i64,
}

/// The cache of live sessions.
pub type SessionCache = CredentialCache<LiveSession>;

/// The cache; bounded to `capacity` entries (a full shard is emptied and refilled).
pub struct CredentialCache<T> {
    shards: Box<[Mutex<Shard<T>>]>,
    per_shard: usize,
    /// Advanced by every announcement.
    seq: AtomicU64,
    /// The latest announcements with their sequence numbers, oldest first.
    recent: Mutex<VecDeque<(u64, StoreEvent)>>,
}

impl<T: Cached> CredentialCache<T> {
    pub fn new(capacity: usize) -> CredentialCache<T> {
        CredentialCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: (capacity / SHARDS).max(1),
            seq: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)),
        }
    }

    fn shard(&self, key: &SessionKey) -> &Mutex<Shard<T>> {
        &self.shards[usize::from(key[31]) % SHARDS]
    }

    /// Read before reading a session from the store; pass it to [`SessionCache::insert`].
    pub fn sequence(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// The live credential for `key`, if it is in memory and not past its time limits.
    pub fn get(&self, key: &SessionKey, now: i64, idle_secs: i64) -> Option<Hit<T>> {
        let shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        let e = shard.get(key)?;
        (now < e.live.valid_until() && now < e.last_seen.saturating_add(idle_secs)).then(|| Hit {
            live: Arc::clone(&e.live),
            last_seen: e.last_seen,
        })
    }

    /// Keep a credential read (live) from the store after `seq` was taken: dropped when an
    /// announcement since then concerns it, so a copy never outlives a change.
    pub fn insert(&self, live: Arc<T>, seq: u64) {
        let key = *live.key();
        let mut shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        if self.sequence() != seq && self.changed_since(seq, &live) {
            return;
        }
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.clear();
        }
        let last_seen = live.last_seen();
        shard.insert(key, Entry { live, last_seen });
    }

    /// Whether an announcement after `seq` concerns `live` (or may have: too old to tell).
    fn changed_since(&self, seq: u64, live: &T) -> bool {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        match recent.front() {
            Some((oldest, _)) if *oldest <= seq + 1 => {}
            // Announcements were forgotten since: assume the worst.
            _ => return true,
        }
        recent
            .iter()
            .filter(|(s, _)| *s > seq)
            .any(|(_, e)| match e {
                StoreEvent::SessionEnded(k) | StoreEvent::TokenEnded(k) => k == live.key(),
                StoreEvent::UserChanged(id) => id == live.user_id(),
                StoreEvent::Everything => true,
            })
    }

    /// Record activity that will be written to the store (so idle expiry follows it).
    pub fn seen(&self, key: &SessionKey, at: i64) {
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = shard.get_mut(key) {
            e.last_seen = e.last_seen.max(at);
        }
    }

    /// Apply an announcement: first remembered (for racing inserts), then applied.
    fn apply(&self, event: &StoreEvent) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            let seq = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
            if recent.len() == RECENT_EVENTS {
                recent.pop_front();
            }
            recent.push_back((seq, event.clone()));
        }
        match event {
            // (Keys are digests of distinct random secrets: a session's never names a token.)
            StoreEvent::SessionEnded(key) | StoreEvent::TokenEnded(key) => {
                self.shard(key)
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(key);
            }
            StoreEvent::UserChanged(id) => {
                for shard in self.shards.iter() {
                    shard
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .retain(|_, e| e.live.user_id() != id);
                }
            }
            StoreEvent::Everything => {
                for shard in self.shards.iter() {
                    shard.lock().unwrap_or_else(|p| p.into_inner()).clear();
                }
            }
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Cached> Listener for CredentialCache<T> {
    fn changed(&self, event: &StoreEvent) {
        self.apply(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Role, UserStatus};

    fn live(key: SessionKey, user_id: &str, valid_until: i64, last_seen: i64) -> Arc<LiveSession> {
        let email = format!("{user_id}@example.com");
        let user = UserRecord::new(user_id, &email, Role::User, UserStatus::Active, 0);
        let session = SessionRecord {
            user_id: user_id.into(),
            created_at: 0,
            expires_at: valid_until,
            last_seen,
            indexed_expiry: 0,
            remember: false,
            ip: None,
            user_agent: None,
            amr: Vec::new(),
            stage: crate::store::SessionStage::Complete,
        };
        Arc::new(LiveSession {
            key,
            identity: Identity::from_user(&user),
            session,
            user,
            valid_until,
        })
    }

    #[test]
    fn hits_only_while_live_and_idle_follows_activity() {
        let c = SessionCache::new(1000);
        let key = [7u8; 32];
        c.insert(live(key, "u1", 1_000, 100), c.sequence());
        assert!(c.get(&key, 150, 3600).is_some());
        assert!(
            c.get(&key, 1_000, 3600).is_none(),
            "absolute or account expiry"
        );
        assert!(c.get(&key, 200, 100).is_none(), "idle");
        c.seen(&key, 150);
        assert!(c.get(&key, 200, 100).is_some());
        assert!(c.get(&[8u8; 32], 150, 3600).is_none());
    }

    #[test]
    fn announcements_remove_only_what_they_concern() {
        let c = SessionCache::new(1000);
        let (a, b, other) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        for (k, u) in [(a, "u1"), (b, "u1"), (other, "u2")] {
            c.insert(live(k, u, 1_000, 0), c.sequence());
        }
        c.changed(&StoreEvent::SessionEnded(a));
        assert!(c.get(&a, 1, 3600).is_none());
        assert!(
            c.get(&b, 1, 3600).is_some(),
            "another session of the user stays"
        );
        c.changed(&StoreEvent::UserChanged("u1".into()));
        assert!(c.get(&b, 1, 3600).is_none());
        assert!(c.get(&other, 1, 3600).is_some(), "other users stay");
        c.changed(&StoreEvent::Everything);
        assert!(c.is_empty());
    }

    #[test]
    fn a_copy_read_before_an_announcement_is_never_kept_after_it() {
        let c = SessionCache::new(1000);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        // Read (sequence taken), then the session ends, then the stale copy arrives.
        let seq = c.sequence();
        c.changed(&StoreEvent::SessionEnded(a));
        c.insert(live(a, "u1", 1_000, 0), seq);
        assert!(c.get(&a, 1, 3600).is_none());
        // An unrelated announcement does not stop another session from being kept.
        c.insert(live(b, "u1", 1_000, 0), seq);
        assert!(c.get(&b, 1, 3600).is_some());
        // A user change since the read stops every session of that user.
        let seq = c.sequence();
        c.changed(&StoreEvent::UserChanged("u1".into()));
        c.insert(live(b, "u1", 1_000, 0), seq);
        assert!(c.get(&b, 1, 3600).is_none());
        // Too many announcements since the read to tell: dropped.
        let seq = c.sequence();
        for i in 0..=RECENT_EVENTS {
            let other = u8::try_from(i % 250).unwrap_or(0) + 3;
            c.changed(&StoreEvent::SessionEnded([other; 32]));
        }
        c.insert(live(b, "u1", 1_000, 0), seq);
        assert!(c.get(&b, 1, 3600).is_none());
    }

    #[test]
    fn stays_bounded() {
        let c = SessionCache::new(SHARDS * 4);
        for i in 0..10_000u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            key[31] = (i % 251) as u8;
            c.insert(live(key, "u", i64::MAX, 0), c.sequence());
        }
        assert!(c.len() <= SHARDS * 4, "{}", c.len());
        assert!(!c.is_empty());
    }
}
