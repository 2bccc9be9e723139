//! [`Backend`] for [`PgStore`]: health, recovery and where counters and flows live.

use async_trait::async_trait;

use super::PgStore;
use crate::store::{Backend, Counters, Events, ImportError, SignInFlows, Snapshot, StoreError};

#[async_trait]
impl Backend for PgStore {
    async fn healthy(&self) -> bool {
        self.ping().await
    }
    /// The pool replaces broken connections and the listener reconnects by itself; whether
    /// it listens is what the listener's own heartbeat found (no query of its own).
    async fn recover(&self) -> bool {
        self.notifications_live()
    }
    fn events(&self) -> &Events {
        &self.inner.events
    }
    /// Stored, so that every instance counts every failure.
    fn counters(&self) -> &dyn Counters {
        self
    }
    /// Stored, so that a provider's callback may reach any instance.
    fn flows(&self) -> &dyn SignInFlows {
        self
    }
    fn may_keep_copies(&self) -> bool {
        self.notifications_live()
    }
    async fn export(&self) -> Result<Snapshot, StoreError> {
        self.export_all().await
    }
    async fn import(&self, snapshot: Snapshot) -> Result<(), ImportError> {
        self.import_all(snapshot).await
    }
}
