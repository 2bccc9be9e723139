//! Building and running the Pingora server from our configuration: server settings, listeners,
//! the gateway service and the maintenance task (last-seen writes, session sweep).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};

use crate::app::{now_secs, App, Touch};
use crate::config::Config;
use crate::proxy::Gateway;
use crate::store::{AuditRecord, SessionKey, Store};

/// How often pending last-seen updates are written.
const TOUCH_FLUSH: Duration = Duration::from_secs(5);
/// How often pending audit entries are written.
const AUDIT_FLUSH: Duration = Duration::from_secs(1);
/// How often the database is checked (and reopened after a storage failure).
const STORAGE_CHECK: Duration = Duration::from_secs(2);
/// How often expired sessions are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Sessions deleted per sweep transaction.
const SWEEP_BATCH: usize = 5_000;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::OpenError),
    #[error("cannot listen on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    #[error("cannot start: {0}")]
    Other(String),
}

/// Pingora's server settings, from our file (no YAML).
fn server_conf(config: &Config) -> ServerConf {
    ServerConf {
        threads: config.server.threads,
        daemon: false,
        // SIGTERM: stop accepting at once, give in-flight requests `shutdown_timeout`.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(config.server.shutdown_timeout.as_secs().max(1)),
        ..ServerConf::default()
    }
}

/// Open the store, check the listeners, and assemble the server.
pub fn build(config: Config) -> Result<(Server, Arc<App>), StartError> {
    for addr in &config.server.listen {
        // Pingora exits abruptly on a bind failure; check first for a clear message.
        std::net::TcpListener::bind(addr).map_err(|e| StartError::Listen(*addr, e))?;
    }
    let store = Store::open(&config.storage.path)?;
    let listen = config.server.listen.clone();
    let conf = server_conf(&config);
    let app = App::new(config, store).map_err(StartError::Other)?;

    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut options = pingora::apps::HttpServerOptions::default();
    // Like nginx's keepalive_requests: recycle long-lived client connections.
    options.keepalive_request_limit = Some(1000);
    let mut proxy = pingora::proxy::ProxyServiceBuilder::new(
        &server.configuration,
        Gateway::new(Arc::clone(&app)),
    )
    .name("authgate")
    .server_options(options)
    .build();
    for addr in &listen {
        proxy.add_tcp(&addr.to_string());
    }
    server.add_service(proxy);
    server.add_service(background_service(
        "maintenance",
        Maintenance {
            app: Arc::clone(&app),
        },
    ));
    Ok((server, app))
}

/// Run until SIGTERM/SIGINT, then write what is pending.
pub fn run(config: Config) -> Result<(), StartError> {
    let listen = config.server.listen.clone();
    let storage = config.storage.path.clone();
    let (server, app) = build(config)?;
    tracing::info!(?listen, storage = %storage.display(), "authgate listening");
    server.run(RunArgs::default());
    tracing::info!(
        sessions = app.store.session_count().unwrap_or(0),
        "authgate stopped"
    );
    Ok(())
}

/// Background upkeep: batched last-seen writes and the expired-session sweep.
struct Maintenance {
    app: Arc<App>,
}

impl Maintenance {
    async fn flush(&self, pending: &mut HashMap<SessionKey, i64>) {
        if pending.is_empty() {
            return;
        }
        let batch: Vec<Touch> = pending.drain().collect();
        let idle = self.app.idle_secs();
        match self
            .app
            .blocking(move |s| s.touch_sessions(&batch, idle))
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not record session activity"),
            Err(e) => tracing::warn!(error = %e, "could not record session activity"),
        }
    }

    async fn write_audit(&self, pending: &mut Vec<AuditRecord>) {
        if pending.is_empty() {
            return;
        }
        let batch = std::mem::take(pending);
        let n = batch.len();
        match self.app.blocking(move |s| s.append_audit(&batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, lost = n, "could not write audit entries"),
            Err(e) => tracing::error!(error = %e, lost = n, "could not write audit entries"),
        }
    }

    async fn sweep(&self) {
        let now = now_secs();
        match self.app.blocking(move |s| s.expire_accounts(now)).await {
            Ok(Ok((ids, removed))) => {
                for id in &ids {
                    self.app.audit(
                        "account_expired",
                        None,
                        None,
                        Some(id),
                        Some(format!("sessions_removed={removed}")),
                    );
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "account expiry failed"),
            Err(e) => tracing::warn!(error = %e, "account expiry failed"),
        }
        loop {
            let now = now_secs();
            match self
                .app
                .blocking(move |s| s.sweep_expired_sessions(now, SWEEP_BATCH))
                .await
            {
                Ok(Ok(n)) if n == SWEEP_BATCH => continue,
                Ok(Ok(n)) => {
                    if n > 0 {
                        tracing::debug!(removed = n, "expired sessions swept");
                    }
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "session sweep failed");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "session sweep failed");
                    return;
                }
            }
        }
    }
}

#[async_trait]
impl BackgroundService for Maintenance {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (Some(mut touches), Some(mut audits)) = (
            self.app.take_touch_receiver(),
            self.app.take_audit_receiver(),
        ) else {
            return;
        };
        let mut pending: HashMap<SessionKey, i64> = HashMap::new();
        let mut audit_pending: Vec<AuditRecord> = Vec::new();
        let mut flush = tokio::time::interval(TOUCH_FLUSH);
        let mut audit_flush = tokio::time::interval(AUDIT_FLUSH);
        let mut storage_check = tokio::time::interval(STORAGE_CHECK);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    while let Ok((key, at)) = touches.try_recv() {
                        pending.entry(key).and_modify(|t| *t = (*t).max(at)).or_insert(at);
                    }
                    self.flush(&mut pending).await;
                    while let Ok(entry) = audits.try_recv() {
                        audit_pending.push(entry);
                    }
                    self.write_audit(&mut audit_pending).await;
                    return;
                }
                Some(entry) = audits.recv() => audit_pending.push(entry),
                _ = audit_flush.tick() => self.write_audit(&mut audit_pending).await,
                _ = storage_check.tick() => {
                    let store = self.app.store.clone();
                    let _ = tokio::task::spawn_blocking(move || store.recover()).await;
                }
                Some((key, at)) = touches.recv() => {
                    pending.entry(key).and_modify(|t| *t = (*t).max(at)).or_insert(at);
                }
                _ = flush.tick() => self.flush(&mut pending).await,
                _ = sweep.tick() => self.sweep().await,
            }
        }
    }
}
