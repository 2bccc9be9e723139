//! Sign-ins waiting for the provider's answer: kept in memory, bound to the browser that started
//! them, usable once, for ten minutes at most.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What the callback needs to finish a sign-in.
#[derive(Debug, Clone)]
pub struct PendingFlow {
    pub provider: String,
    /// SHA-256 of the flow cookie's value.
    binding: [u8; 32],
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go afterwards (already checked when the flow started, checked again at the end).
    pub rd: String,
    pub invite: Option<String>,
    /// Link the identity to this signed-in user instead of signing in.
    pub link_user: Option<String>,
    /// A persistent session ("keep me signed in").
    pub remember: bool,
    /// Who started it (IPv6 by /64), for the per-client limit.
    pub client: Option<IpAddr>,
    created: Instant,
}

impl PendingFlow {
    pub fn new(
        provider: &str,
        binding: &str,
        nonce: String,
        pkce_verifier: String,
        rd: String,
        invite: Option<String>,
        link_user: Option<String>,
    ) -> PendingFlow {
        PendingFlow {
            provider: provider.to_string(),
            binding: Sha256::digest(binding.as_bytes()).into(),
            nonce,
            pkce_verifier,
            rd,
            invite,
            link_user,
            remember: false,
            client: None,
            created: Instant::now(),
        }
    }
}

/// Why a callback's `state` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowError {
    /// Never issued, already used, or evicted.
    Unknown,
    Expired,
    /// Issued to another browser (no or another flow cookie).
    OtherBrowser,
    /// Issued for another provider.
    OtherProvider,
}

/// The pending sign-ins, keyed by the SHA-256 of their `state`.
pub struct Flows {
    inner: Mutex<Inner>,
    capacity: usize,
    /// Flows one client may have waiting; its oldest makes room. Keeps one client from
    /// pushing everybody else's sign-ins out.
    per_client: usize,
    ttl: Duration,
}

type Key = [u8; 32];

#[derive(Default)]
struct Inner {
    map: HashMap<Key, PendingFlow>,
    /// Each client's flows, oldest first.
    clients: HashMap<IpAddr, VecDeque<Key>>,
}

/// Flows without a known client share one bucket.
const NO_CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

impl Inner {
    fn remove(&mut self, key: &Key) -> Option<PendingFlow> {
        let flow = self.map.remove(key)?;
        let client = flow.client.unwrap_or(NO_CLIENT);
        if let Some(queue) = self.clients.get_mut(&client) {
            queue.retain(|k| k != key);
            if queue.is_empty() {
                self.clients.remove(&client);
            }
        }
        Some(flow)
    }

    /// Remove the oldest flow of `client`.
    fn evict_oldest_of(&mut self, client: IpAddr) {
        if let Some(oldest) = self.clients.get(&client).and_then(|q| q.front()).copied() {
            self.remove(&oldest);
        }
    }
}

impl Flows {
    pub fn new(capacity: usize, per_client: usize, ttl: Duration) -> Flows {
        Flows {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            per_client: per_client.max(1),
            ttl,
        }
    }

    /// Remember a flow under its `state`. A client at its limit loses its oldest flow. When
    /// full, expired flows go first, then the oldest flow of the client with the most: flooding
    /// from many addresses pushes out the flooders' own flows before a person's single one.
    pub fn insert(&self, state: &str, flow: PendingFlow) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let client = flow.client.unwrap_or(NO_CLIENT);
        if inner.clients.get(&client).map_or(0, VecDeque::len) >= self.per_client {
            inner.evict_oldest_of(client);
        }
        if inner.map.len() >= self.capacity {
            let ttl = self.ttl;
            let expired: Vec<Key> = inner
                .map
                .iter()
                .filter(|(_, f)| f.created.elapsed() >= ttl)
                .map(|(k, _)| *k)
                .collect();
            for k in &expired {
                inner.remove(k);
            }
        }
        if inner.map.len() >= self.capacity {
            let busiest = inner
                .clients
                .iter()
                .max_by_key(|(_, q)| q.len())
                .map(|(c, _)| *c);
            if let Some(busiest) = busiest {
                inner.evict_oldest_of(busiest);
            }
        }
        let key: Key = Sha256::digest(state.as_bytes()).into();
        // (A state is 128 random bits: a repeat cannot happen, but must not leave a stale entry.)
        inner.remove(&key);
        inner.map.insert(key, flow);
        inner.clients.entry(client).or_default().push_back(key);
    }

    /// Take the flow of `state` (it can never be used again, whatever the outcome) and check
    /// that it is fresh, for `provider`, and bound to one of the browser's flow cookies.
    pub fn take(
        &self,
        state: &str,
        provider: &str,
        cookies: &[String],
    ) -> Result<PendingFlow, FlowError> {
        let key: Key = Sha256::digest(state.as_bytes()).into();
        let flow = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key)
            .ok_or(FlowError::Unknown)?;
        if flow.created.elapsed() >= self.ttl {
            return Err(FlowError::Expired);
        }
        let bound = cookies.iter().any(|c| {
            let h: [u8; 32] = Sha256::digest(c.as_bytes()).into();
            bool::from(h.ct_eq(&flow.binding))
        });
        if !bound {
            return Err(FlowError::OtherBrowser);
        }
        if flow.provider != provider {
            return Err(FlowError::OtherProvider);
        }
        Ok(flow)
    }

    /// Flows waiting now.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(provider: &str, binding: &str) -> PendingFlow {
        PendingFlow::new(
            provider,
            binding,
            "n".into(),
            "v".into(),
            String::new(),
            None,
            None,
        )
    }

    #[test]
    fn a_flow_is_used_once_by_the_browser_that_started_it() {
        let flows = Flows::new(10, 10, Duration::from_secs(600));
        flows.insert("s1", flow("corp", "b1"));
        assert_eq!(
            flows.take("s1", "corp", &["other".into()]).err(),
            Some(FlowError::OtherBrowser)
        );
        // Refused once, gone: the rightful browser cannot use it either.
        assert_eq!(
            flows.take("s1", "corp", &["b1".into()]).err(),
            Some(FlowError::Unknown)
        );
        flows.insert("s2", flow("corp", "b1"));
        assert_eq!(
            flows.take("s2", "google", &["b1".into()]).err(),
            Some(FlowError::OtherProvider)
        );
        flows.insert("s3", flow("corp", "b1"));
        let f = flows
            .take("s3", "corp", &["x".into(), "b1".into()])
            .expect("bound");
        assert_eq!(f.nonce, "n");
        assert_eq!(
            flows.take("s3", "corp", &["b1".into()]).err(),
            Some(FlowError::Unknown)
        );
        assert_eq!(
            flows.take("never", "corp", &["b1".into()]).err(),
            Some(FlowError::Unknown)
        );
    }

    #[test]
    fn flows_expire_and_the_oldest_make_room() {
        let flows = Flows::new(2, 2, Duration::from_millis(30));
        flows.insert("a", flow("p", "b"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(
            flows.take("a", "p", &["b".into()]).err(),
            Some(FlowError::Expired)
        );
        let flows = Flows::new(2, 2, Duration::from_secs(600));
        flows.insert("a", flow("p", "b"));
        flows.insert("b", flow("p", "b"));
        flows.insert("c", flow("p", "b"));
        assert_eq!(flows.len(), 2);
        assert_eq!(
            flows.take("a", "p", &["b".into()]).err(),
            Some(FlowError::Unknown)
        );
        assert!(flows.take("c", "p", &["b".into()]).is_ok());

        // One client floods: only its own flows make room, others' stay.
        let flows = Flows::new(100, 3, Duration::from_secs(600));
        let from = |ip: &str| {
            let mut f = flow("p", "b");
            f.client = Some(ip.parse().expect("ip"));
            f
        };
        flows.insert("victim", from("192.0.2.1"));
        for i in 0..50 {
            flows.insert(&format!("flood{i}"), from("198.51.100.7"));
        }
        assert_eq!(flows.len(), 4);
        assert!(flows.take("victim", "p", &["b".into()]).is_ok());
        assert!(flows.take("flood49", "p", &["b".into()]).is_ok());
        assert_eq!(
            flows.take("flood0", "p", &["b".into()]).err(),
            Some(FlowError::Unknown)
        );

        // Many clients flood a full table: the busiest lose their flows, not a person's one.
        let flows = Flows::new(10, 4, Duration::from_secs(600));
        flows.insert("person", from("192.0.2.1"));
        for i in 0..200 {
            flows.insert(&format!("f{i}"), from(&format!("198.51.100.{}", i % 5)));
        }
        assert_eq!(flows.len(), 10);
        assert!(flows.take("person", "p", &["b".into()]).is_ok());
        // The bookkeeping stays in step with the table.
        let inner = flows.inner.lock().expect("lock");
        assert_eq!(
            inner.clients.values().map(VecDeque::len).sum::<usize>(),
            inner.map.len()
        );
        assert!(!inner
            .clients
            .contains_key(&"192.0.2.1".parse::<IpAddr>().expect("ip")));
    }
}
