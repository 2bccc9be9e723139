//! systemd's service notifications (`Type=notify`): `READY=1` once every listener accepts
//! connections (the store is open before the server starts), `RELOADING=1` and `READY=1`
//! around a SIGHUP reload, `STOPPING=1` at shutdown, and `WATCHDOG=1` at half the interval
//! when the unit sets `WatchdogSec`. Without `NOTIFY_SOCKET` (not under systemd) nothing is
//! sent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use sd_notify::NotifyState;

/// The server's shutdown signal: true once it is stopping.
type Shutdown = tokio::sync::watch::Receiver<bool>;

/// How often a listener that does not accept yet is tried again.
const PROBE_EVERY: Duration = Duration::from_millis(20);

/// Tell the service manager; a failure is logged (the gateway works on without it).
fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}

/// A SIGHUP reload begins.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// A SIGHUP reload is over (applied or refused: the gateway serves on either way).
pub fn reloaded() {
    send(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

/// The address a probe connects to for a listener: a wildcard one through loopback.
fn probe_address(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// Wait until every listener accepts a connection (it listens, its accept queue takes it);
/// `false` when shutdown came first.
async fn listening(listeners: &[SocketAddr], shutdown: &mut Shutdown) -> bool {
    for addr in listeners.iter().copied().map(probe_address) {
        loop {
            if *shutdown.borrow() {
                return false;
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            tokio::select! {
                _ = shutdown.changed() => return false,
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
        }
    }
    true
}

/// Say when the gateway is ready, keep the watchdog fed, and say when it stops (`shutdown`
/// turns true).
pub async fn run(listeners: &[SocketAddr], mut shutdown: Shutdown) {
    if listening(listeners, &mut shutdown).await {
        send(&[NotifyState::Ready, NotifyState::Status("serving")]);
        tracing::info!("ready: every listener accepts connections");
    }
    let watchdog = sd_notify::watchdog_enabled().map(|every| every / 2);
    let mut ticks = watchdog.map(tokio::time::interval);
    loop {
        let tick = async {
            match ticks.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick => send(&[NotifyState::Watchdog]),
        }
    }
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listeners_are_probed_through_loopback() {
        let cases = [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::]:8443", "[::1]:8443"),
            ("127.0.0.2:80", "127.0.0.2:80"),
            ("192.0.2.1:9", "192.0.2.1:9"),
            ("[::1]:1", "[::1]:1"),
        ];
        for (listen, probed) in cases {
            let listen: SocketAddr = listen.parse().expect("address");
            assert_eq!(probe_address(listen).to_string(), probed);
        }
    }
}
