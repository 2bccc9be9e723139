//! Per-account lockout after repeated failed password checks, shared by every path that checks
//! a password. Known accounts are keyed by user id; unknown identifiers by their canonical form
//! in a separately bounded table, so floods of bogus names can never push real accounts out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Unknown identifiers tracked at most; beyond that new ones are not tracked (they are not
/// accounts, and the per-IP limit still applies to them).
const MAX_UNKNOWN: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

/// Which account an attempt concerns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AccountKey {
    User(String),
    Unknown(String),
}

impl std::fmt::Display for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountKey::User(id) => write!(f, "{id}"),
            AccountKey::Unknown(name) => write!(f, "unknown:{name}"),
        }
    }
}

/// Lockout state for all accounts.
pub struct Lockout {
    max_failures: u32,
    lockout: Duration,
    users: Mutex<HashMap<String, Entry>>,
    unknown: Mutex<HashMap<String, Entry>>,
}

impl Lockout {
    /// Lock after `max_failures` failures within `lockout`, for `lockout`.
    pub fn new(max_failures: u32, lockout: Duration) -> Lockout {
        Lockout {
            max_failures: max_failures.max(1),
            lockout,
            users: Mutex::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self, key: &AccountKey) -> (&Mutex<HashMap<String, Entry>>, String) {
        match key {
            AccountKey::User(id) => (&self.users, id.clone()),
            AccountKey::Unknown(name) => (&self.unknown, name.clone()),
        }
    }

    /// `Err(seconds)` while the account is locked.
    pub fn check(&self, key: &AccountKey, now: Instant) -> Result<(), u64> {
        let (table, k) = self.table(key);
        let map = table.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&k).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err(until.duration_since(now).as_secs().max(1)),
            _ => Ok(()),
        }
    }

    /// Count a failure; returns `Some(seconds)` when this failure locks the account.
    pub fn record_failure(&self, key: &AccountKey, now: Instant) -> Option<u64> {
        let (table, k) = self.table(key);
        let mut map = table.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(key, AccountKey::Unknown(_))
            && map.len() >= MAX_UNKNOWN
            && !map.contains_key(&k)
        {
            let lockout = self.lockout;
            map.retain(|_, e| {
                now.duration_since(e.window_start) < lockout
                    || e.locked_until.is_some_and(|u| u > now)
            });
            if map.len() >= MAX_UNKNOWN {
                return None;
            }
        }
        let entry = map.entry(k).or_insert(Entry {
            failures: 0,
            window_start: now,
            locked_until: None,
        });
        let expired_lock = entry.locked_until.is_some_and(|u| u <= now);
        if expired_lock || now.duration_since(entry.window_start) >= self.lockout {
            *entry = Entry {
                failures: 0,
                window_start: now,
                locked_until: None,
            };
        }
        entry.failures += 1;
        if entry.failures >= self.max_failures {
            entry.locked_until = Some(now + self.lockout);
            return Some(self.lockout.as_secs().max(1));
        }
        None
    }

    /// Forget failures after a successful check.
    pub fn record_success(&self, key: &AccountKey) {
        let (table, k) = self.table(key);
        table.lock().unwrap_or_else(|p| p.into_inner()).remove(&k);
    }

    /// Number of tracked entries (known, unknown), for tests and metrics.
    pub fn tracked(&self) -> (usize, usize) {
        let u = self.users.lock().unwrap_or_else(|p| p.into_inner()).len();
        let n = self.unknown.lock().unwrap_or_else(|p| p.into_inner()).len();
        (u, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_unlocks_after_lockout() {
        let l = Lockout::new(3, Duration::from_secs(60));
        let k = AccountKey::User("u1".into());
        let t0 = Instant::now();
        assert_eq!(l.record_failure(&k, t0), None);
        assert_eq!(l.record_failure(&k, t0), None);
        assert!(l.check(&k, t0).is_ok());
        assert_eq!(l.record_failure(&k, t0), Some(60));
        assert_eq!(l.check(&k, t0 + Duration::from_secs(10)), Err(50));
        assert!(l.check(&k, t0 + Duration::from_secs(61)).is_ok());
        // After the lock expires the count starts again.
        assert_eq!(l.record_failure(&k, t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn success_resets_and_old_failures_expire() {
        let l = Lockout::new(2, Duration::from_secs(60));
        let k = AccountKey::User("u1".into());
        let t0 = Instant::now();
        l.record_failure(&k, t0);
        l.record_success(&k);
        assert_eq!(l.record_failure(&k, t0), None);
        assert_eq!(
            l.record_failure(&k, t0 + Duration::from_secs(61)),
            None,
            "window restarted"
        );
    }

    #[test]
    fn bogus_identifiers_never_crowd_out_accounts() {
        let l = Lockout::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(MAX_UNKNOWN + 500) {
            l.record_failure(&AccountKey::Unknown(format!("bogus{i}")), t0);
        }
        assert_eq!(l.tracked().1, MAX_UNKNOWN);
        let real = AccountKey::User("u1".into());
        assert!(l.check(&real, t0).is_ok());
        assert_eq!(l.record_failure(&real, t0), Some(60));
    }
}
