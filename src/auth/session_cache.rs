//! Live sessions kept in memory in front of the database, so the per-request session check
//! is a hash lookup instead of a read transaction.
//!
//! Correctness rests on the store's epoch: every write that can end a session or change what
//! it stands for (logout, revocation, password change, user changes, sweeps) advances it, and
//! an entry is used only in the epoch in which it was read. Time-based expiry (absolute, idle,
//! account expiry) is checked on every hit. Only live sessions of active users are kept.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use crate::auth::session::Identity;
use crate::store::SessionKey;

/// Independent locks, so threads rarely wait for each other.
const SHARDS: usize = 64;

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

type Shard = HashMap<SessionKey, Entry, BuildHasherDefault<DigestHasher>>;

struct Entry {
    epoch: u64,
    identity: Arc<Identity>,
    /// The earlier of the session's absolute expiry and the account's expiry.
    valid_until: i64,
    last_seen: i64,
}

/// A session found in memory.
pub struct Hit {
    pub identity: Arc<Identity>,
    pub last_seen: i64,
}

/// The cache; bounded to `capacity` entries (a full shard is emptied and refilled).
pub struct SessionCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

impl SessionCache {
    pub fn new(capacity: usize) -> SessionCache {
        SessionCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    fn shard(&self, key: &SessionKey) -> &Mutex<Shard> {
        &self.shards[usize::from(key[31]) % SHARDS]
    }

    /// The live session for `key` as of `epoch`, if it is in memory.
    pub fn get(&self, key: &SessionKey, epoch: u64, now: i64, idle_secs: i64) -> Option<Hit> {
        let shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        let e = shard.get(key)?;
        (e.epoch == epoch && now < e.valid_until && now < e.last_seen.saturating_add(idle_secs))
            .then(|| Hit {
                identity: Arc::clone(&e.identity),
                last_seen: e.last_seen,
            })
    }

    /// Keep a session read (live) from the database in `epoch`.
    pub fn insert(
        &self,
        key: SessionKey,
        epoch: u64,
        identity: Arc<Identity>,
        valid_until: i64,
        last_seen: i64,
    ) {
        let mut shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.clear();
        }
        shard.insert(
            key,
            Entry {
                epoch,
                identity,
                valid_until,
                last_seen,
            },
        );
    }

    /// Record activity that will be written to the database (so idle expiry follows it).
    pub fn seen(&self, key: &SessionKey, at: i64) {
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = shard.get_mut(key) {
            e.last_seen = e.last_seen.max(at);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Arc<Identity> {
        Arc::new(Identity::for_tests(
            "u1",
            "a@example.com",
            Some("a"),
            None,
            "user",
            &[],
        ))
    }

    #[test]
    fn hits_only_in_the_same_epoch_and_while_live() {
        let c = SessionCache::new(1000);
        let key = [7u8; 32];
        c.insert(key, 5, id(), 1_000, 100);
        assert!(c.get(&key, 5, 150, 3600).is_some());
        // Any invalidating write since: a miss.
        assert!(c.get(&key, 6, 150, 3600).is_none());
        // Absolute or account expiry.
        assert!(c.get(&key, 5, 1_000, 3600).is_none());
        // Idle expiry, moved by recorded activity.
        assert!(c.get(&key, 5, 200, 100).is_none());
        c.seen(&key, 150);
        assert!(c.get(&key, 5, 200, 100).is_some());
        assert!(c.get(&[8u8; 32], 5, 150, 3600).is_none());
    }

    #[test]
    fn stays_bounded() {
        let c = SessionCache::new(SHARDS * 4);
        for i in 0..10_000u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            key[31] = (i % 251) as u8;
            c.insert(key, 1, id(), i64::MAX, 0);
        }
        assert!(c.len() <= SHARDS * 4, "{}", c.len());
        assert!(!c.is_empty());
    }
}
