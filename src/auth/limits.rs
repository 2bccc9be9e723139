//! Limits on failed attempts and mails, as policy over the store's counters (so several
//! instances sharing a database share them): the per-account lockout, the per-client failure
//! limit, and the mail limits. Times are Unix seconds; a client is its IPv4 address or IPv6 /64.

use std::net::IpAddr;

use crate::store::{Admission, CounterKind, Counters, Limit, StoreError};

/// The block a client is counted by: its IPv4 address, or its IPv6 /64 (the block a single
/// host usually owns).
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Which account an attempt concerns: known accounts by user id; unknown identifiers by their
/// canonical form, counted apart so floods of made-up names never push real accounts out.
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

impl AccountKey {
    fn counter(&self) -> (CounterKind, &str) {
        match self {
            AccountKey::User(id) => (CounterKind::AccountFailures, id),
            AccountKey::Unknown(name) => (CounterKind::UnknownFailures, name),
        }
    }
}

/// Per-account lockout: `max_failures` failed checks within `lockout_secs` lock the account for
/// `lockout_secs`; shared by every path that checks a password or a code.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub max_failures: u32,
    pub lockout_secs: i64,
}

impl Lockout {
    /// `Err(seconds)` while the account is locked.
    pub async fn check(
        &self,
        counters: &dyn Counters,
        account: &AccountKey,
        now: i64,
    ) -> Result<Result<(), u64>, StoreError> {
        let (kind, key) = account.counter();
        Ok(match counters.locked_until(kind, key, now).await? {
            Some(until) => Err(secs(until - now)),
            None => Ok(()),
        })
    }

    /// Count a failure; `Some(seconds)` when this failure locks the account.
    pub async fn record_failure(
        &self,
        counters: &dyn Counters,
        account: &AccountKey,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let (kind, key) = account.counter();
        let max = self.max_failures.max(1);
        let recent = counters
            .add_event(kind, key, now, self.lockout_secs, max)
            .await?;
        if recent.count < max {
            return Ok(None);
        }
        // After the lock the count starts again (clearing forgets the events and any lock).
        counters.clear(kind, key).await?;
        counters.lock(kind, key, now + self.lockout_secs).await?;
        Ok(Some(secs(self.lockout_secs)))
    }

    /// Forget failures after a successful check.
    pub async fn record_success(
        &self,
        counters: &dyn Counters,
        account: &AccountKey,
    ) -> Result<(), StoreError> {
        let (kind, key) = account.counter();
        counters.clear(kind, key).await
    }
}

/// Failed attempts per client, all accounts together (`security.ip_rate_limit`).
#[derive(Debug, Clone, Copy)]
pub struct ClientLimit {
    pub max_failures: u32,
    pub window_secs: i64,
}

impl ClientLimit {
    /// `Err(seconds)` while the client has used up its failures.
    pub async fn check(
        &self,
        counters: &dyn Counters,
        ip: IpAddr,
        now: i64,
    ) -> Result<Result<(), u64>, StoreError> {
        let key = bucket(ip).to_string();
        let recent = counters
            .count(CounterKind::ClientFailures, &key, now, self.window_secs)
            .await?;
        Ok(if recent.count >= self.max_failures.max(1) {
            Err(secs(recent.oldest + self.window_secs - now))
        } else {
            Ok(())
        })
    }

    /// Count one failed attempt.
    pub async fn record_failure(
        &self,
        counters: &dyn Counters,
        ip: IpAddr,
        now: i64,
    ) -> Result<(), StoreError> {
        let key = bucket(ip).to_string();
        counters
            .add_event(
                CounterKind::ClientFailures,
                &key,
                now,
                self.window_secs,
                self.max_failures.max(1),
            )
            .await
            .map(|_| ())
    }
}

/// Mails one account receives: one per 2 minutes, five per hour (reset and verification
/// together).
pub const RECIPIENT_LIMITS: [Limit; 2] = [
    Limit {
        max: 1,
        window: 120,
    },
    Limit {
        max: 5,
        window: 3600,
    },
];

/// Mail-sending requests per client, whether or not the address has an account.
pub const CLIENT_MAIL_LIMITS: [Limit; 1] = [Limit {
    max: 10,
    window: 3600,
}];

/// Count a request from `ip` that would send a mail if its address had an account.
pub async fn admit_mail_client(
    counters: &dyn Counters,
    ip: IpAddr,
    now: i64,
) -> Result<Admission, StoreError> {
    let key = bucket(ip).to_string();
    counters
        .admit(CounterKind::MailClient, &key, now, &CLIENT_MAIL_LIMITS)
        .await
}

/// Count a mail to the account `user_id`.
pub async fn admit_mail_recipient(
    counters: &dyn Counters,
    user_id: &str,
    now: i64,
) -> Result<Admission, StoreError> {
    counters
        .admit(CounterKind::MailRecipient, user_id, now, &RECIPIENT_LIMITS)
        .await
}

/// A positive number of seconds for `Retry-After`.
fn secs(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryCounters;

    #[tokio::test]
    async fn locks_after_max_failures_and_unlocks_after_lockout() {
        let c = MemoryCounters::default();
        let l = Lockout {
            max_failures: 3,
            lockout_secs: 60,
        };
        let k = AccountKey::User("u1".into());
        assert_eq!(l.record_failure(&c, &k, 0).await.expect("ok"), None);
        assert_eq!(l.record_failure(&c, &k, 0).await.expect("ok"), None);
        assert_eq!(l.check(&c, &k, 0).await.expect("ok"), Ok(()));
        assert_eq!(l.record_failure(&c, &k, 0).await.expect("ok"), Some(60));
        assert_eq!(l.check(&c, &k, 10).await.expect("ok"), Err(50));
        assert_eq!(l.check(&c, &k, 61).await.expect("ok"), Ok(()));
        // After the lock expires the count starts again.
        assert_eq!(l.record_failure(&c, &k, 61).await.expect("ok"), None);
    }

    #[tokio::test]
    async fn success_resets_and_old_failures_expire() {
        let c = MemoryCounters::default();
        let l = Lockout {
            max_failures: 2,
            lockout_secs: 60,
        };
        let k = AccountKey::User("u1".into());
        l.record_failure(&c, &k, 0).await.expect("ok");
        l.record_success(&c, &k).await.expect("ok");
        assert_eq!(l.record_failure(&c, &k, 0).await.expect("ok"), None);
        assert_eq!(
            l.record_failure(&c, &k, 61).await.expect("ok"),
            None,
            "the first failure left the window"
        );
    }

    #[tokio::test]
    async fn bogus_identifiers_never_crowd_out_accounts() {
        let c = MemoryCounters::default();
        let l = Lockout {
            max_failures: 1,
            lockout_secs: 60,
        };
        for i in 0..10_500 {
            let k = AccountKey::Unknown(format!("bogus{i}"));
            l.record_failure(&c, &k, 0).await.expect("ok");
        }
        assert_eq!(c.tracked(CounterKind::UnknownFailures), 10_000);
        let real = AccountKey::User("u1".into());
        assert_eq!(l.check(&c, &real, 0).await.expect("ok"), Ok(()));
        assert_eq!(l.record_failure(&c, &real, 0).await.expect("ok"), Some(60));
    }

    #[tokio::test]
    async fn client_failures_are_limited_per_window() {
        let c = MemoryCounters::default();
        let l = ClientLimit {
            max_failures: 2,
            window_secs: 60,
        };
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        l.record_failure(&c, ip, 0).await.expect("ok");
        assert_eq!(l.check(&c, ip, 0).await.expect("ok"), Ok(()));
        l.record_failure(&c, ip, 0).await.expect("ok");
        assert_eq!(l.check(&c, ip, 20).await.expect("ok"), Err(40));
        assert_eq!(l.check(&c, other, 0).await.expect("ok"), Ok(()));
        assert_eq!(l.check(&c, ip, 60).await.expect("ok"), Ok(()));
    }

    #[tokio::test]
    async fn ipv6_hosts_share_their_64() {
        let c = MemoryCounters::default();
        let l = ClientLimit {
            max_failures: 1,
            window_secs: 60,
        };
        let one = "2001:db8::1".parse().expect("ip");
        l.record_failure(&c, one, 0).await.expect("ok");
        let same = "2001:db8::ffff".parse().expect("ip");
        assert!(l.check(&c, same, 0).await.expect("ok").is_err());
        let next = "2001:db8:0:1::1".parse().expect("ip");
        assert!(l.check(&c, next, 0).await.expect("ok").is_ok());
    }

    #[tokio::test]
    async fn mails_are_limited_per_account_and_per_client() {
        use Admission::{Allowed, Refused};
        let c = MemoryCounters::default();
        let t0 = 1_700_000_000;
        // (seconds after t0, expected) for one account
        for (at, want) in [
            (0, Allowed),
            (60, Refused { first: true }),
            (100, Refused { first: false }),
            (121, Allowed),
            (250, Allowed),
            (400, Allowed),
            (600, Allowed),
            (800, Refused { first: true }),
            (3601, Allowed),
        ] {
            let got = admit_mail_recipient(&c, "u1", t0 + at).await.expect("ok");
            assert_eq!(got, want, "recipient at {at}");
        }
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        for i in 0..10 {
            assert_eq!(
                admit_mail_client(&c, ip, t0 + i).await.expect("ok"),
                Allowed
            );
        }
        assert_eq!(
            admit_mail_client(&c, ip, t0 + 10).await.expect("ok"),
            Refused { first: true }
        );
        assert_eq!(
            admit_mail_client(&c, ip, t0 + 3600).await.expect("ok"),
            Allowed,
            "the first request left the hour"
        );
    }
}
