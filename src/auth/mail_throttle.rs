//! Mail throttling: how often one account is mailed and how many mail-sending requests one
//! client makes, in sliding windows with bounded memory. It stops mail bombing of an inbox
//! and keeps one client from spending the operator's mail reputation.
//!
//! Counters are reached through [`EventCounter`] (check-and-record by key and time) so that
//! the in-memory table can give way to one shared by several instances. Times are Unix
//! seconds for the same reason: instants of one process mean nothing to another.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use super::ratelimit::bucket;

/// At most `max` events per `secs` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub max: usize,
    pub secs: i64,
}

/// Mails one account receives: one per 2 minutes, five per hour.
pub const RECIPIENT_WINDOWS: [Window; 2] =
    [Window { max: 1, secs: 120 }, Window { max: 5, secs: 3600 }];

/// Mail-sending requests per client (IPv6 per /64), whether or not the address has an account.
pub const CLIENT_WINDOWS: [Window; 1] = [Window {
    max: 10,
    secs: 3600,
}];

/// Keys tracked at most per table. When full (after dropping keys with nothing left in their
/// windows) new keys are not tracked: the limit degrades open for them rather than refusing
/// everyone's mail while a flood lasts.
const MAX_KEYS: usize = 100_000;

/// What a check-and-record decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted; go on.
    Allowed,
    /// Over a limit; nothing counted. `first` is true for the first refusal since the key was
    /// last allowed, so a flood is reported once rather than once per request.
    Refused { first: bool },
}

/// Counts events per key within limits. Implementations decide and record atomically, so two
/// racing requests never both take the last allowance.
pub trait EventCounter: Send + Sync {
    /// Record one event for `key` at `now` (Unix seconds) if every window allows it.
    fn admit(&self, key: &str, now: i64) -> Admission;
}

#[derive(Debug, Default)]
struct Events {
    /// Admitted events, oldest first, only those still inside the longest window.
    times: VecDeque<i64>,
    refused: bool,
}

#[derive(Debug, Default)]
struct Table {
    keys: HashMap<String, Events>,
    /// When stale keys were last dropped (at most once a second while the table is full).
    pruned_at: Option<i64>,
}

/// An in-memory [`EventCounter`] over sliding windows.
pub struct MemoryCounter {
    windows: &'static [Window],
    longest: i64,
    max_keys: usize,
    table: Mutex<Table>,
}

impl MemoryCounter {
    /// A counter enforcing every one of `windows`.
    pub fn new(windows: &'static [Window]) -> MemoryCounter {
        MemoryCounter::with_capacity(windows, MAX_KEYS)
    }

    fn with_capacity(windows: &'static [Window], max_keys: usize) -> MemoryCounter {
        MemoryCounter {
            windows,
            longest: windows.iter().map(|w| w.secs).max().unwrap_or(0),
            max_keys,
            table: Mutex::new(Table::default()),
        }
    }

    /// Number of tracked keys.
    pub fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys
            .len()
    }
}

impl EventCounter for MemoryCounter {
    fn admit(&self, key: &str, now: i64) -> Admission {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.keys.len() >= self.max_keys && !table.keys.contains_key(key) {
            if table.pruned_at != Some(now) {
                let longest = self.longest;
                table
                    .keys
                    .retain(|_, e| e.times.back().is_some_and(|t| now - t < longest));
                table.pruned_at = Some(now);
            }
            if table.keys.len() >= self.max_keys {
                return Admission::Allowed;
            }
        }
        let events = table.keys.entry(key.to_string()).or_default();
        while events
            .times
            .front()
            .is_some_and(|t| now - t >= self.longest)
        {
            events.times.pop_front();
        }
        // A clock stepped back leaves times "in the future": they count as recent.
        let over = self
            .windows
            .iter()
            .any(|w| events.times.iter().filter(|t| now - **t < w.secs).count() >= w.max);
        if over {
            let first = !events.refused;
            events.refused = true;
            return Admission::Refused { first };
        }
        events.times.push_back(now);
        events.refused = false;
        Admission::Allowed
    }
}

/// The two mail limits: per recipient account and per client.
pub struct MailThrottle {
    recipients: Box<dyn EventCounter>,
    clients: Box<dyn EventCounter>,
}

impl MailThrottle {
    /// Both limits counted in this process's memory.
    pub fn in_memory() -> MailThrottle {
        MailThrottle {
            recipients: Box::new(MemoryCounter::new(&RECIPIENT_WINDOWS)),
            clients: Box::new(MemoryCounter::new(&CLIENT_WINDOWS)),
        }
    }

    /// Count a request from `ip` that would send a mail if its address had an account.
    pub fn admit_client(&self, ip: IpAddr, now: i64) -> Admission {
        self.clients.admit(&bucket(ip).to_string(), now)
    }

    /// Count a mail to the account `user_id`.
    pub fn admit_recipient(&self, user_id: &str, now: i64) -> Admission {
        self.recipients.admit(user_id, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Admission::{Allowed, Refused};

    /// Replays `(offset in seconds, key, expected)` against a fresh counter.
    fn replay(windows: &'static [Window], steps: &[(i64, &str, Admission)]) {
        let c = MemoryCounter::new(windows);
        let t0 = 1_700_000_000;
        for (i, (at, key, expected)) in steps.iter().enumerate() {
            assert_eq!(
                c.admit(key, t0 + at),
                *expected,
                "step {i}: {key} at +{at}s"
            );
        }
    }

    #[test]
    fn recipient_windows_allow_one_per_two_minutes_and_five_per_hour() {
        let no = Refused { first: true };
        let again = Refused { first: false };
        replay(
            &RECIPIENT_WINDOWS,
            &[
                (0, "u1", Allowed),
                (1, "u1", no),
                (119, "u1", again),
                (0, "u2", Allowed), // another account has its own allowance
                (120, "u1", Allowed),
                (240, "u1", Allowed),
                (360, "u1", Allowed),
                (480, "u1", Allowed),
                // Five in the hour: spacing alone no longer helps...
                (600, "u1", no),
                (3599, "u1", again),
                // ...until the first one slides out of the hour.
                (3600, "u1", Allowed),
                (3601, "u1", no),
                (3720, "u1", Allowed),
            ],
        );
    }

    #[test]
    fn client_window_allows_ten_per_hour_sliding() {
        let mut steps: Vec<(i64, &str, Admission)> =
            (0..10).map(|i| (i * 60, "10.0.0.1", Allowed)).collect();
        steps.extend([
            (600, "10.0.0.1", Refused { first: true }),
            (601, "10.0.0.2", Allowed),
            (3599, "10.0.0.1", Refused { first: false }),
            (3600, "10.0.0.1", Allowed), // the one from +0 left the window
            (3601, "10.0.0.1", Refused { first: true }),
            (3660, "10.0.0.1", Allowed),
        ]);
        replay(&CLIENT_WINDOWS, &steps);
    }

    #[test]
    fn a_clock_stepped_back_keeps_recent_events_counted() {
        replay(
            &RECIPIENT_WINDOWS,
            &[(600, "u1", Allowed), (0, "u1", Refused { first: true })],
        );
    }

    #[test]
    fn clients_share_ipv6_64_blocks() {
        let t = MailThrottle::in_memory();
        let now = 1_700_000_000;
        for _ in 0..10 {
            assert_eq!(
                t.admit_client("2001:db8::1".parse().expect("ip"), now),
                Allowed
            );
        }
        let same_64 = "2001:db8::ffff".parse().expect("ip");
        assert_eq!(t.admit_client(same_64, now), Refused { first: true });
        let other_64 = "2001:db8:0:1::1".parse().expect("ip");
        assert_eq!(t.admit_client(other_64, now), Allowed);
    }

    #[test]
    fn memory_is_bounded_and_stale_keys_make_room() {
        let c = MemoryCounter::with_capacity(&CLIENT_WINDOWS, 100);
        let t0 = 1_700_000_000;
        for i in 0..150 {
            assert_eq!(c.admit(&format!("k{i}"), t0), Allowed);
        }
        assert_eq!(c.tracked(), 100, "beyond the bound keys go untracked");
        // Untracked keys are never refused (the limit degrades open, never closed).
        for _ in 0..20 {
            assert_eq!(c.admit("k149", t0), Allowed);
        }
        assert_eq!(c.tracked(), 100);
        // Once the tracked keys' windows are over they make room again.
        assert_eq!(c.admit("fresh", t0 + 3600), Allowed);
        assert_eq!(c.tracked(), 1);
        for _ in 1..10 {
            assert_eq!(c.admit("fresh", t0 + 3600), Allowed);
        }
        assert_eq!(
            c.admit("fresh", t0 + 3600),
            Refused { first: true },
            "a tracked key is limited again"
        );
    }
}
