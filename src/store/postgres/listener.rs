//! The notification connection: one connection per instance outside the pool, listening on
//! the store's channel and turning each notification of another instance into a
//! [`StoreEvent`] for this instance's listeners (its own changes were published before its
//! writes returned). It is checked every [`HEARTBEAT`]; when it fails (or the database
//! goes), every copy kept in memory is dropped, caching stops, and it reconnects on its own;
//! once it listens again, copies are dropped once more (anything may have changed meanwhile)
//! and caching resumes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Notification};

use super::{Target, CHANNEL};
use crate::store::{Events, SessionKey, StoreEvent};

/// How often the connection is checked, and how long a check may take: a database that stops
/// answering is noticed within twice this.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// The wait between attempts to reconnect.
const RETRY: Duration = Duration::from_millis(250);

/// The text a notification carries for `event`.
pub(super) fn payload(event: &StoreEvent) -> String {
    match event {
        StoreEvent::SessionEnded(key) => format!("s:{}", hex(key)),
        StoreEvent::TokenEnded(key) => format!("t:{}", hex(key)),
        StoreEvent::UserChanged(id) => format!("u:{id}"),
        StoreEvent::Everything => "*".into(),
    }
}

/// The text of the notification that announces `event`, marked as coming from `origin`.
pub(super) fn notification(origin: &str, event: &StoreEvent) -> String {
    format!("{origin} {}", payload(event))
}

/// The event to publish for a notification: `None` for this instance's own (`origin`).
fn heard(origin: &str, text: &str) -> Option<StoreEvent> {
    match text.split_once(' ') {
        Some((from, _)) if from == origin => None,
        Some((_, payload)) => Some(event_of(payload)),
        None => Some(event_of(text)),
    }
}

/// The event a notification's text stands for; anything not understood drops everything
/// (never a copy kept that should have gone).
pub(super) fn event_of(payload: &str) -> StoreEvent {
    let key = |hex: &str| -> Option<SessionKey> {
        if hex.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(key)
    };
    match payload.split_once(':') {
        Some(("s", k)) => key(k).map_or(StoreEvent::Everything, StoreEvent::SessionEnded),
        Some(("t", k)) => key(k).map_or(StoreEvent::Everything, StoreEvent::TokenEnded),
        Some(("u", id)) if !id.is_empty() => StoreEvent::UserChanged(id.to_string()),
        _ => StoreEvent::Everything,
    }
}

fn hex(key: &SessionKey) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Drive `connection`, passing its notifications on; the future ends with the connection.
pub(super) fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
) -> (
    BoxFuture<'static, Result<(), tokio_postgres::Error>>,
    mpsc::UnboundedReceiver<Notification>,
)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = async move {
        loop {
            let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n).is_err() {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    };
    (driver.boxed(), rx)
}

/// Listen for as long as the store's runtime runs.
pub(super) async fn run(
    target: Target,
    events: Arc<Events>,
    listening: Arc<AtomicBool>,
    origin: Arc<str>,
) {
    let mut failures = 0u32;
    loop {
        match listen_once(&target, &events, &listening, &origin).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(40) {
                    tracing::warn!(error = %e, "not hearing other instances' changes; nothing is kept in memory until the database answers again");
                }
            }
        }
        if listening.swap(false, Ordering::AcqRel) {
            events.publish(&StoreEvent::Everything);
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Connect, listen and pass notifications on until the connection fails.
async fn listen_once(
    target: &Target,
    events: &Events,
    listening: &AtomicBool,
    origin: &str,
) -> Result<(), String> {
    let (client, driver, mut notes) = target.connect().await.map_err(|e| super::with_causes(&e))?;
    let driver = tokio::spawn(driver);
    let outcome = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| super::with_causes(&e))?;
        // Whatever was kept before this point may have missed a change.
        events.publish(&StoreEvent::Everything);
        listening.store(true, Ordering::Release);
        tracing::debug!("listening for other instances' changes");
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                note = notes.recv() => match note {
                    Some(n) => {
                        if let Some(event) = heard(origin, n.payload()) {
                            events.publish(&event);
                        }
                    }
                    None => return Err("the notification connection closed".to_string()),
                },
                _ = beat.tick() => {
                    match tokio::time::timeout(HEARTBEAT, client.simple_query("")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(super::with_causes(&e)),
                        Err(_) => return Err("the database did not answer the heartbeat".to_string()),
                    }
                }
            }
        }
    }
    .await;
    driver.abort();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_survives_its_notification_and_garbage_drops_everything() {
        let events = [
            StoreEvent::SessionEnded([0xab; 32]),
            StoreEvent::TokenEnded([7; 32]),
            StoreEvent::UserChanged("u-1:x".into()),
            StoreEvent::Everything,
        ];
        for e in events {
            assert_eq!(event_of(&payload(&e)), e);
        }
        // (payload, heard as)
        for text in ["", "s:", "s:zz", "t:abcd", "u:", "x:1", "everything"] {
            assert_eq!(event_of(text), StoreEvent::Everything, "{text:?}");
        }
    }

    #[test]
    fn an_instance_skips_its_own_notifications_and_hears_everyone_elses() {
        let event = StoreEvent::UserChanged("u-1".into());
        let own = notification("a1", &event);
        assert_eq!(heard("a1", &own), None);
        assert_eq!(heard("b2", &own), Some(event));
        // A user id may hold spaces: only the first one ends the origin.
        let spaced = StoreEvent::UserChanged("u 1".into());
        assert_eq!(heard("a1", &notification("b2", &spaced)), Some(spaced));
        // Unmarked text is read as it is; garbled text drops everything.
        assert_eq!(
            heard("a1", "u:u-1"),
            Some(StoreEvent::UserChanged("u-1".into()))
        );
        assert_eq!(heard("a1", "b2 nonsense"), Some(StoreEvent::Everything));
    }
}
