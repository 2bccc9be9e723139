//! What a backend announces after it committed a change that copies kept in memory must not
//! outlive: a session ended, a user changed. Local writes announce synchronously, before the
//! write returns, so the next request already sees them; a shared backend feeds the same
//! listeners from its database's notifications.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::SessionKey;

/// A committed change that invalidates what was read before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// The session was deleted (logout, revocation, expiry, the per-user cap).
    SessionEnded(SessionKey),
    /// The API token with this key was revoked.
    TokenEnded(SessionKey),
    /// Something a session or token of this user stands for changed: role, groups, status, expiry,
    /// profile, password (which ends sessions too), deletion.
    UserChanged(String),
    /// Anything may have changed (the database was reopened, notifications were lost).
    Everything,
}

/// Told about every event; must be quick and must not block.
pub trait Listener: Send + Sync {
    /// React to one committed change.
    fn changed(&self, event: &StoreEvent);
}

/// Told how long work on the storage pool took (for metrics).
pub type Timer = Arc<dyn Fn(std::time::Duration) + Send + Sync>;

/// The listeners of one store.
#[derive(Default)]
pub struct Events {
    listeners: RwLock<Vec<Arc<dyn Listener>>>,
    timer: RwLock<Option<Timer>>,
    /// Operations sent to a database server (not those answered in process).
    queries: AtomicU64,
}

impl Events {
    /// Add a listener; it sees every event from now on.
    pub fn listen(&self, listener: Arc<dyn Listener>) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(listener);
    }

    /// Announce a committed change to every listener, in order, before returning.
    pub fn publish(&self, event: &StoreEvent) {
        let listeners = self.listeners.read().unwrap_or_else(|p| p.into_inner());
        for l in listeners.iter() {
            l.changed(event);
        }
    }

    /// Be told how long each piece of work on the storage pool took.
    pub fn time_with(&self, timer: Timer) {
        *self.timer.write().unwrap_or_else(|p| p.into_inner()) = Some(timer);
    }

    /// Report how long a piece of work on the storage pool took.
    pub fn timed(&self, took: std::time::Duration) {
        if let Some(t) = self
            .timer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            t(took);
        }
    }

    /// Count one operation sent to a database server.
    pub fn count_query(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }

    /// Operations sent to a database server so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Announce several changes.
    pub fn publish_all(&self, events: &[StoreEvent]) {
        for e in events {
            self.publish(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Recorder(Mutex<Vec<StoreEvent>>);

    impl Listener for Recorder {
        fn changed(&self, event: &StoreEvent) {
            self.0.lock().expect("lock").push(event.clone());
        }
    }

    #[test]
    fn every_listener_sees_every_event_in_order() {
        let events = Events::default();
        let (a, b) = (
            Arc::new(Recorder(Mutex::new(Vec::new()))),
            Arc::new(Recorder(Mutex::new(Vec::new()))),
        );
        events.listen(a.clone());
        events.publish(&StoreEvent::SessionEnded([1; 32]));
        events.listen(b.clone());
        events.publish_all(&[StoreEvent::UserChanged("u".into()), StoreEvent::Everything]);
        assert_eq!(
            *a.0.lock().expect("lock"),
            vec![
                StoreEvent::SessionEnded([1; 32]),
                StoreEvent::UserChanged("u".into()),
                StoreEvent::Everything
            ]
        );
        assert_eq!(b.0.lock().expect("lock").len(), 2);
    }
}
