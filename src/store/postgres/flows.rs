//! Sign-ins waiting for a provider's answer, stored so that the callback may reach any
//! instance: by the SHA-256 of their state, with the client that started them (`''` when not
//! known: those share one queue, as in memory) and the order they were put in. Room is made
//! as [`MemoryFlows`](crate::store::memory::MemoryFlows) makes it, decided in one transaction
//! under [`Lock::Flows`], so racing puts on any instance never go beyond a bound. A flow is
//! taken by the statement that deletes it, so once.

use async_trait::async_trait;

use super::{from_json, lock, to_json, Lock, PgStore};
use crate::store::{FlowLimits, FlowRecord, SignInFlows, StoreError};

#[async_trait]
impl SignInFlows for PgStore {
    async fn put_flow(
        &self,
        key: [u8; 32],
        flow: FlowRecord,
        limits: FlowLimits,
    ) -> Result<(), StoreError> {
        let client = flow.client.clone().unwrap_or_default();
        let per_client = i64::try_from(limits.per_client.max(1)).unwrap_or(i64::MAX);
        let capacity = i64::try_from(limits.capacity.max(1)).unwrap_or(i64::MAX);
        // Expired: `now - created_at >= ttl`, where now is the new flow's time.
        let expired_from = flow.created_at.saturating_sub(limits.ttl);
        let data = to_json(&flow)?;
        self.write(move |tx| {
            Box::pin(async move {
                lock(tx, Lock::Flows).await?;
                let key = key.as_slice();
                let theirs: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM signin_flows WHERE client = $1",
                        &[&client],
                    )
                    .await?
                    .try_get(0)?;
                if theirs >= per_client {
                    tx.execute(
                        "DELETE FROM signin_flows WHERE key = (
                             SELECT key FROM signin_flows WHERE client = $1 ORDER BY seq LIMIT 1)",
                        &[&client],
                    )
                    .await?;
                }
                let mut all: i64 = tx
                    .query_one("SELECT count(*) FROM signin_flows", &[])
                    .await?
                    .try_get(0)?;
                if all >= capacity {
                    let expired = tx
                        .execute(
                            "DELETE FROM signin_flows WHERE created_at <= $1",
                            &[&expired_from],
                        )
                        .await?;
                    all -= i64::try_from(expired).unwrap_or(i64::MAX);
                }
                if all >= capacity {
                    // The client with the most flows; among equals, the one busy most recently
                    // (a flooder), never by chance the person who started one a while ago.
                    tx.execute(
                        "DELETE FROM signin_flows WHERE key = (
                             SELECT key FROM signin_flows WHERE client = (
                                 SELECT client FROM signin_flows GROUP BY client
                                 ORDER BY count(*) DESC,
                                     (array_agg(created_at ORDER BY seq DESC))[1] DESC
                                 LIMIT 1)
                             ORDER BY seq LIMIT 1)",
                        &[],
                    )
                    .await?;
                }
                // (A state is 128 random bits: a repeat cannot happen, but must not leave a
                // stale entry, and goes to the back of its queue.)
                tx.execute("DELETE FROM signin_flows WHERE key = $1", &[&key])
                    .await?;
                tx.execute(
                    "INSERT INTO signin_flows (key, client, created_at, data)
                     VALUES ($1, $2, $3, $4)",
                    &[&key, &client, &flow.created_at, &data],
                )
                .await?;
                Ok(((), Vec::new()))
            })
        })
        .await
    }

    async fn take_flow(&self, key: [u8; 32]) -> Result<Option<FlowRecord>, StoreError> {
        self.run(move |conn| async move {
            let row = conn
                .query_opt(
                    "DELETE FROM signin_flows WHERE key = $1 RETURNING data",
                    &[&key.as_slice()],
                )
                .await?;
            row.map(|row| from_json(row.try_get(0)?)).transpose()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_cluster;

    fn flow(client: &str, at: i64) -> FlowRecord {
        FlowRecord {
            provider: "corp".into(),
            binding: [7; 32],
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            rd: "/".into(),
            invite: None,
            link_user: None,
            remember: false,
            client: Some(client.into()),
            created_at: at,
        }
    }

    const LIMITS: FlowLimits = FlowLimits {
        capacity: 10,
        per_client: 3,
        ttl: 600,
    };

    /// Two instances sharing one fresh database.
    fn two_instances(name: &str) -> (PgStore, PgStore) {
        let url = test_cluster::database(name);
        let open = || PgStore::open(&url, 4).expect("opens");
        (open(), open())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flow_put_on_one_instance_is_taken_on_another_once() {
        let (a, b) = two_instances("flows_shared");
        a.put_flow([1; 32], flow("c", 5), LIMITS)
            .await
            .expect("put");
        assert_eq!(
            b.take_flow([1; 32]).await.expect("take"),
            Some(flow("c", 5))
        );
        assert_eq!(a.take_flow([1; 32]).await.expect("take"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_puts_on_two_instances_keep_every_bound() {
        let (a, b) = two_instances("flows_race");
        let tasks: Vec<_> = (0..40u8)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let flow = flow(&format!("c{}", i % 5), 100 + i64::from(i));
                tokio::spawn(async move { store.put_flow([i; 32], flow, LIMITS).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("put");
        }
        let (all, most) = a
            .run(|conn| async move {
                let row = conn
                    .query_one(
                        "SELECT sum(n)::bigint, max(n) FROM (
                             SELECT count(*) AS n FROM signin_flows GROUP BY client) c",
                        &[],
                    )
                    .await?;
                Ok::<_, StoreError>((row.try_get::<_, i64>(0)?, row.try_get::<_, i64>(1)?))
            })
            .await
            .expect("read");
        assert_eq!(all, 10, "full, never beyond");
        assert!(most <= 3, "{most} flows of one client");
    }
}
