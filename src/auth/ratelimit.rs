//! Failed authentication attempts per client IP (`security.ip_rate_limit`), in fixed windows,
//! with bounded memory. IPv6 clients are grouped by /64, the block a single host usually owns.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Clients tracked at most. When full (after dropping finished windows) new clients are not
/// tracked: the limit degrades open for them rather than locking everyone out.
const MAX_CLIENTS: usize = 100_000;

/// The per-IP failure limiter.
pub struct IpLimiter {
    limit: u32,
    window: Duration,
    clients: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// The block a client is counted by: its IPv4 address, or its IPv6 /64.
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

impl IpLimiter {
    /// Allow `limit` failures per `window` per client.
    pub fn new(limit: u32, window: Duration) -> IpLimiter {
        IpLimiter {
            limit,
            window,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds)` when the client has used up its failures for the current window.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&bucket(ip)) {
            Some((start, count))
                if *count >= self.limit && now.duration_since(*start) < self.window =>
            {
                Err((self.window - now.duration_since(*start)).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Count one failed attempt.
    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let key = bucket(ip);
        if map.len() >= MAX_CLIENTS && !map.contains_key(&key) {
            let window = self.window;
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
            if map.len() >= MAX_CLIENTS {
                return;
            }
        }
        let entry = map.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Number of tracked clients.
    pub fn tracked(&self) -> usize {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_failures_per_window() {
        let l = IpLimiter::new(2, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        let t0 = Instant::now();
        l.record_failure(ip, t0);
        assert!(l.check(ip, t0).is_ok());
        l.record_failure(ip, t0);
        assert_eq!(l.check(ip, t0 + Duration::from_secs(20)), Err(40));
        assert!(l.check(other, t0).is_ok());
        assert!(l.check(ip, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn ipv6_hosts_share_their_64() {
        let l = IpLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        l.record_failure("2001:db8::1".parse().expect("ip"), t0);
        assert!(l.check("2001:db8::ffff".parse().expect("ip"), t0).is_err());
        assert!(l.check("2001:db8:0:1::1".parse().expect("ip"), t0).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let l = IpLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 1000) {
            l.record_failure(IpAddr::V4(std::net::Ipv4Addr::from(i)), t0);
        }
        assert_eq!(l.tracked(), MAX_CLIENTS);
    }
}
