//! Sign-ins waiting for the provider's answer: kept behind the store (a callback may reach
//! another instance), bound to the browser that started them, usable once, for ten minutes at
//! most. The store bounds how many wait, in all and per client.

use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{FlowLimits, FlowRecord, SignInFlows, StoreError};

/// What the callback needs to finish a sign-in: the stored record itself.
pub type PendingFlow = FlowRecord;

impl FlowRecord {
    /// A flow started at `now` by the browser holding the flow cookie `binding` (only its
    /// hash is kept); not persistent and of no known client until those are set.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        provider: &str,
        binding: &str,
        nonce: String,
        pkce_verifier: String,
        rd: String,
        invite: Option<String>,
        link_user: Option<String>,
        now: i64,
    ) -> FlowRecord {
        FlowRecord {
            provider: provider.to_string(),
            binding: Sha256::digest(binding.as_bytes()).into(),
            nonce,
            pkce_verifier,
            rd,
            invite,
            link_user,
            remember: false,
            client: None,
            created_at: now,
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

/// The rules for waiting sign-ins; the flows themselves are in the store.
#[derive(Debug, Clone, Copy)]
pub struct Flows {
    limits: FlowLimits,
}

fn key_of(state: &str) -> [u8; 32] {
    Sha256::digest(state.as_bytes()).into()
}

impl Flows {
    /// At most `capacity` flows wait, `per_client` of one client; each for `ttl`.
    pub fn new(capacity: usize, per_client: usize, ttl: Duration) -> Flows {
        Flows {
            limits: FlowLimits {
                capacity: capacity.max(1),
                per_client: per_client.max(1),
                ttl: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            },
        }
    }

    /// Remember a flow under the hash of its `state` (see [`SignInFlows::put_flow`] for what
    /// makes room).
    pub async fn insert(
        &self,
        store: &dyn SignInFlows,
        state: &str,
        flow: PendingFlow,
    ) -> Result<(), StoreError> {
        store.put_flow(key_of(state), flow, self.limits).await
    }

    /// Take the flow of `state` (it can never be used again, whatever the outcome) and check
    /// that it is fresh at `now`, for `provider`, and bound to one of the browser's flow
    /// cookies.
    pub async fn take(
        &self,
        store: &dyn SignInFlows,
        state: &str,
        provider: &str,
        cookies: &[String],
        now: i64,
    ) -> Result<Result<PendingFlow, FlowError>, StoreError> {
        let Some(flow) = store.take_flow(key_of(state)).await? else {
            return Ok(Err(FlowError::Unknown));
        };
        if now - flow.created_at >= self.limits.ttl {
            return Ok(Err(FlowError::Expired));
        }
        let bound = cookies.iter().any(|c| {
            let h: [u8; 32] = Sha256::digest(c.as_bytes()).into();
            bool::from(h.ct_eq(&flow.binding))
        });
        if !bound {
            return Ok(Err(FlowError::OtherBrowser));
        }
        if flow.provider != provider {
            return Ok(Err(FlowError::OtherProvider));
        }
        Ok(Ok(flow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryFlows;

    fn flow(provider: &str, binding: &str, now: i64) -> PendingFlow {
        PendingFlow::new(
            provider,
            binding,
            "n".into(),
            "v".into(),
            String::new(),
            None,
            None,
            now,
        )
    }

    async fn take(
        flows: &Flows,
        store: &MemoryFlows,
        state: &str,
        provider: &str,
        cookie: &str,
        now: i64,
    ) -> Result<PendingFlow, FlowError> {
        flows
            .take(store, state, provider, &[cookie.to_string()], now)
            .await
            .expect("store")
    }

    #[tokio::test]
    async fn a_flow_is_used_once_by_the_browser_that_started_it() {
        let (flows, store) = (
            Flows::new(10, 10, Duration::from_secs(600)),
            MemoryFlows::default(),
        );
        flows
            .insert(&store, "s1", flow("corp", "b1", 0))
            .await
            .expect("put");
        assert_eq!(
            take(&flows, &store, "s1", "corp", "other", 1).await.err(),
            Some(FlowError::OtherBrowser)
        );
        // Refused once, gone: the rightful browser cannot use it either.
        assert_eq!(
            take(&flows, &store, "s1", "corp", "b1", 1).await.err(),
            Some(FlowError::Unknown)
        );
        flows
            .insert(&store, "s2", flow("corp", "b1", 0))
            .await
            .expect("put");
        assert_eq!(
            take(&flows, &store, "s2", "google", "b1", 1).await.err(),
            Some(FlowError::OtherProvider)
        );
        flows
            .insert(&store, "s3", flow("corp", "b1", 0))
            .await
            .expect("put");
        let f = flows
            .take(&store, "s3", "corp", &["x".into(), "b1".into()], 1)
            .await
            .expect("store")
            .expect("bound");
        assert_eq!(f.nonce, "n");
        assert_eq!(
            take(&flows, &store, "s3", "corp", "b1", 1).await.err(),
            Some(FlowError::Unknown)
        );
        assert_eq!(
            take(&flows, &store, "never", "corp", "b1", 1).await.err(),
            Some(FlowError::Unknown)
        );
    }

    #[tokio::test]
    async fn flows_expire_and_one_client_makes_room_from_its_own() {
        let (flows, store) = (
            Flows::new(10, 3, Duration::from_secs(600)),
            MemoryFlows::default(),
        );
        flows
            .insert(&store, "old", flow("p", "b", 0))
            .await
            .expect("put");
        assert_eq!(
            take(&flows, &store, "old", "p", "b", 600).await.err(),
            Some(FlowError::Expired)
        );
        let from = |ip: &str| {
            let mut f = flow("p", "b", 0);
            f.client = Some(ip.to_string());
            f
        };
        flows
            .insert(&store, "victim", from("192.0.2.1"))
            .await
            .expect("put");
        for i in 0..50 {
            flows
                .insert(&store, &format!("flood{i}"), from("198.51.100.7"))
                .await
                .expect("put");
        }
        assert_eq!(store.sizes().0, 4);
        assert!(take(&flows, &store, "victim", "p", "b", 1).await.is_ok());
        assert!(take(&flows, &store, "flood49", "p", "b", 1).await.is_ok());
        assert_eq!(
            take(&flows, &store, "flood0", "p", "b", 1).await.err(),
            Some(FlowError::Unknown)
        );
    }
}
