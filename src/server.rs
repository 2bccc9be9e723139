//! Building and running the Pingora server from our configuration: server settings, listeners,
//! the gateway service and the maintenance task (last-seen and audit writes, sweeps).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};

use crate::app::{now_secs, App};
use crate::auth::authenticator::Used;
use crate::config::Config;
use crate::proxy::Gateway;
use crate::store::{AuditRecord, Store};
use crate::tls::CertStore;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::TcpSocketOptions;
use rustls::server::ResolvesServerCert;

/// Refuse an upstream CA file that would leave no trust root (Pingora panics on it later).
fn check_ca_file(path: &std::path::Path) -> Result<(), StartError> {
    crate::trust::load_roots(path)
        .map(drop)
        .map_err(|reason| StartError::UpstreamCa(path.to_path_buf(), reason))
}

/// How often pending last-seen updates are written.
const TOUCH_FLUSH: Duration = Duration::from_secs(5);
/// How often pending audit entries are written.
const AUDIT_FLUSH: Duration = Duration::from_secs(1);
/// Audit entries kept for a later try while the database refuses them (the newest).
const AUDIT_KEPT_WHILE_FAILING: usize = 10_000;
/// How often the database is checked (and reopened after a storage failure).
const STORAGE_CHECK: Duration = Duration::from_secs(2);
/// How often expired sessions and mailed tokens, and audit entries past their retention, are
/// swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Records deleted per sweep transaction.
const SWEEP_BATCH: usize = 5_000;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::OpenError),
    #[error("cannot listen on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::CertError),
    #[error("server.upstream_ca_file: cannot use {0}: {1}")]
    UpstreamCa(std::path::PathBuf, String),
    #[error("cannot start: {0}")]
    Other(String),
}

/// Pingora's server settings, from our file (no YAML).
fn server_conf(config: &Config) -> ServerConf {
    ServerConf {
        threads: config.server.threads,
        // One single-threaded runtime per thread: a connection stays on its thread, so no
        // cross-thread wake-ups or task stealing per request (about 1.4x the throughput of
        // Pingora's work-stealing default in benches/load.sh).
        work_stealing: false,
        daemon: false,
        // SIGTERM: stop accepting at once, give in-flight requests `shutdown_timeout`.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(config.server.shutdown_timeout.as_secs().max(1)),
        ca_file: config
            .server
            .upstream_ca_file
            .as_ref()
            .map(|p| p.display().to_string()),
        ..ServerConf::default()
    }
}

/// Open the store, check the listeners, and assemble the server.
pub fn build(
    config: Config,
    config_file: Option<std::path::PathBuf>,
) -> Result<(Server, Arc<App>), StartError> {
    let tls_listen: Vec<_> = config
        .server
        .tls
        .as_ref()
        .map(|t| t.listen.clone())
        .unwrap_or_default();
    let metrics_listen = config.metrics.listen;
    let grpc_listen = config.server.ext_authz_grpc_listen.clone();
    for addr in config
        .server
        .listen
        .iter()
        .chain(&tls_listen)
        .chain(&metrics_listen)
        .chain(&grpc_listen)
    {
        // Pingora exits abruptly on a bind failure; check first for a clear message.
        std::net::TcpListener::bind(addr).map_err(|e| StartError::Listen(*addr, e))?;
    }
    // Pingora's TLS builders panic on unusable files: check them here, with the reason.
    let certs = match &config.server.tls {
        Some(tls) => Some(CertStore::open(&tls.cert, &tls.key)?),
        None => None,
    };
    if let Some(ca) = &config.server.upstream_ca_file {
        check_ca_file(ca)?;
    }
    let store = Store::open(config.storage.location())?;
    announce_setup(&config, &store)?;
    warn_unresolved(&config.routes);
    let listen = config.server.listen.clone();
    let conf = server_conf(&config);
    let app = App::new(config, store).map_err(StartError::Other)?;

    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let threads = app.config.server.threads.max(1);
    for service in proxy_services(&server, &app, &listen, &tls_listen, certs.as_ref(), threads)? {
        server.add_service(service);
    }
    if !grpc_listen.is_empty() {
        let mut service = pingora::services::listening::Service::new(
            "ext-authz-grpc".to_string(),
            crate::proxy::ext_authz_grpc::GrpcAuthz::new(Arc::clone(&app)),
        );
        for addr in &grpc_listen {
            service.add_tcp(&addr.to_string());
        }
        server.add_service(service);
    }
    if let Some(addr) = metrics_listen {
        let mut service = pingora::services::listening::Service::new(
            "metrics".to_string(),
            MetricsPage {
                app: Arc::clone(&app),
            },
        );
        service.add_tcp(&addr.to_string());
        server.add_service(service);
    }
    let listeners = listen
        .iter()
        .chain(&tls_listen)
        .chain(&grpc_listen)
        .chain(&metrics_listen)
        .copied()
        .collect();
    server.add_service(background_service("readiness", Readiness { listeners }));
    server.add_service(background_service(
        "reload",
        Reloader {
            app: Arc::clone(&app),
            certs,
            config_file,
        },
    ));
    server.add_service(background_service(
        "maintenance",
        Maintenance {
            app: Arc::clone(&app),
        },
    ));
    Ok((server, app))
}

/// The proxy in the shape of nginx's workers: one Pingora service per thread, each on a
/// single-threaded runtime of its own with its own accept loop and its own upstream connection
/// pool. A connection's task, the reactor its socket is registered with and its upstream
/// connections then share one thread: no wake-up or lock crosses threads per request. Each
/// service binds its own socket on every address (`SO_REUSEPORT`, with the patch described in
/// `vendor/README.md`), and the kernel spreads new connections across them. Another process
/// cannot join: `build` has bound each address without `SO_REUSEPORT` first.
fn proxy_services(
    server: &Server,
    app: &Arc<App>,
    listen: &[std::net::SocketAddr],
    tls_listen: &[std::net::SocketAddr],
    certs: Option<&Arc<CertStore>>,
    threads: usize,
) -> Result<Vec<impl pingora::services::ServiceWithDependents + 'static>, StartError> {
    let mut options = pingora::apps::HttpServerOptions::default();
    // Like nginx's keepalive_requests: recycle long-lived client connections.
    options.keepalive_request_limit = Some(1000);
    let own_socket = || {
        let mut options = TcpSocketOptions::default();
        options.so_reuseport = Some(true);
        options
    };
    let mut services = Vec::with_capacity(threads);
    for n in 0..threads {
        let mut proxy = pingora::proxy::ProxyServiceBuilder::new(
            &server.configuration,
            Gateway::new(Arc::clone(app)),
        )
        .name(format!("authgate-{n}"))
        .server_options(options.clone())
        .build();
        proxy.threads = Some(1);
        for addr in listen {
            proxy.add_tcp_with_settings(&addr.to_string(), own_socket());
        }
        if let Some(certs) = certs {
            for addr in tls_listen {
                let mut settings = TlsSettings::intermediate("", "")
                    .map_err(|e| StartError::Other(e.to_string()))?;
                settings.set_cert_resolver(Arc::clone(certs) as Arc<dyn ResolvesServerCert>);
                // HTTP/2 offered first through ALPN, HTTP/1.1 for everyone else.
                settings.enable_h2();
                proxy.add_tls_with_settings(&addr.to_string(), Some(own_socket()), settings);
            }
        }
        services.push(proxy);
    }
    Ok(services)
}

/// While no owner exists, say in the log where setup happens and what the setup code is (needed
/// from anywhere but loopback).
fn announce_setup(config: &Config, store: &Store) -> Result<(), StartError> {
    if block_on(store.owner_exists())?.map_err(|e| StartError::Other(e.to_string()))? {
        crate::auth::setup_code::remove(config);
        return Ok(());
    }
    let code = crate::auth::setup_code::ensure(config).map_err(StartError::Other)?;
    tracing::warn!(
        setup_url = %format!("{}{}/setup", config.server.public_url.origin, config.auth.prefix),
        setup_code = %code,
        "no owner yet: create the owner account at the setup page; from another machine it asks for this setup code (also printed by `authgate setup-code`)"
    );
    Ok(())
}

/// Upstream names are looked up when connecting, so one that does not resolve now does not
/// stop the gateway (the container may not be up yet); say so, though.
fn warn_unresolved(routes: &[crate::policy::routes::Route]) {
    use std::net::ToSocketAddrs as _;
    for route in routes {
        if let crate::policy::routes::Upstream::Http {
            target: crate::policy::routes::Target::Name { host, port },
            ..
        } = &route.upstream
        {
            if let Err(e) = (host.as_str(), *port).to_socket_addrs() {
                tracing::warn!(
                    upstream = %format!("{host}:{port}"),
                    error = %e,
                    "upstream does not resolve now; its requests get 502 until it does"
                );
            }
        }
    }
}

/// Run a future to completion outside the server's runtimes (start-up and shut-down work).
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, StartError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::Other(format!("no runtime: {e}")))?;
    Ok(rt.block_on(f))
}

/// Run until SIGTERM/SIGINT, then write what is pending.
pub fn run(config: Config, config_file: Option<std::path::PathBuf>) -> Result<(), StartError> {
    let listen = config.server.listen.clone();
    let tls_listen = config.server.tls.as_ref().map(|t| t.listen.clone());
    let storage = match &config.storage.postgres {
        Some(_) => "postgres".to_string(),
        None => config.storage.path.display().to_string(),
    };
    let (server, app) = build(config, config_file)?;
    tracing::info!(?listen, ?tls_listen, storage = %storage, "authgate listening");
    server.run(RunArgs::default());
    let sessions = block_on(app.store.session_count())
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    tracing::info!(sessions, "authgate stopped");
    Ok(())
}

/// The metrics listener: Prometheus text at `/metrics`, nothing else.
struct MetricsPage {
    app: Arc<App>,
}

#[async_trait]
impl pingora::apps::http_app::ServeHttp for MetricsPage {
    async fn response(
        &self,
        session: &mut pingora::protocols::http::ServerSession,
    ) -> http::Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path();
        let method = req.method.clone();
        let (status, body, kind) = if path != "/metrics" {
            (
                http::StatusCode::NOT_FOUND,
                b"not found: try /metrics\n".to_vec(),
                "text/plain",
            )
        } else if method != http::Method::GET && method != http::Method::HEAD {
            (
                http::StatusCode::METHOD_NOT_ALLOWED,
                b"GET only\n".to_vec(),
                "text/plain",
            )
        } else {
            let rendered = self.app.render_metrics().await;
            match rendered {
                Ok(text) => (
                    http::StatusCode::OK,
                    text.into_bytes(),
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                Err(e) => {
                    // A scraper must see a failure, not an empty page it reads as "no data".
                    tracing::error!(error = %e, "metrics could not be rendered");
                    (
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        b"metrics could not be rendered; see the gateway's log\n".to_vec(),
                        "text/plain",
                    )
                }
            }
        };
        let len = body.len();
        let body = if method == http::Method::HEAD {
            Vec::new()
        } else {
            body
        };
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, kind)
            .header(http::header::CONTENT_LENGTH, len)
            .header(http::header::CACHE_CONTROL, "no-store")
            .body(body)
            .unwrap_or_default()
    }
}

/// SIGHUP: read the certificate and the config file again. What fails to load is reported
/// and the version in use stays.
struct Reloader {
    app: Arc<App>,
    certs: Option<Arc<CertStore>>,
    config_file: Option<std::path::PathBuf>,
}

impl Reloader {
    fn reload(&self) {
        if let Some(certs) = &self.certs {
            match certs.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => tracing::error!("{e}; the certificate in use stays"),
            }
        }
        let Some(path) = &self.config_file else {
            tracing::info!("running on the built-in configuration: nothing to reload");
            return;
        };
        match Config::load(path) {
            Ok(new) => {
                let routes = new.routes.clone();
                tokio::task::spawn_blocking(move || warn_unresolved(&routes));
                let restart = self.app.apply_reload(&new);
                tracing::info!(
                    config = %path.display(),
                    routes = new.routes.len(),
                    "configuration reloaded: routes and identity headers are in force"
                );
                if !restart.is_empty() {
                    tracing::warn!(
                        sections = %restart.join(", "),
                        "these changed sections take effect only after a restart"
                    );
                }
            }
            Err(e) => {
                let problems = e.to_string().replace('\n', "; ");
                tracing::error!(
                    config = %path.display(),
                    %problems,
                    "the configuration was not reloaded; the one in use stays"
                );
            }
        }
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP: reloads are unavailable");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                got = hangups.recv() => {
                    if got.is_none() {
                        return;
                    }
                    crate::service_manager::reloading();
                    self.reload();
                    crate::service_manager::reloaded();
                }
            }
        }
    }
}

/// Tells the service manager when the gateway is ready, feeds its watchdog, and says when it
/// stops (see [`crate::service_manager`]).
struct Readiness {
    listeners: Vec<std::net::SocketAddr>,
}

#[async_trait]
impl BackgroundService for Readiness {
    async fn start(&self, shutdown: ShutdownWatch) {
        crate::service_manager::run(&self.listeners, shutdown).await;
    }
}

/// Background upkeep: batched last-seen and audit writes, account expiry, and the sweeps of
/// expired sessions and mailed tokens and of audit entries past their retention.
struct Maintenance {
    app: Arc<App>,
}

/// Which sweep a batch belongs to.
#[derive(Clone, Copy)]
enum Sweep {
    Sessions,
    MailTokens,
    PasskeyChallenges,
    Audit,
}

impl Maintenance {
    async fn flush(&self, pending: &mut HashMap<Used, i64>) {
        if pending.is_empty() {
            return;
        }
        let (mut sessions, mut tokens) = (Vec::new(), Vec::new());
        for (used, at) in pending.drain() {
            match used {
                Used::Session(key) => sessions.push((key, at)),
                Used::Token(key) => tokens.push((key, at)),
            }
        }
        let idle = self.app.idle_secs();
        if !sessions.is_empty() {
            if let Err(e) = self.app.store.touch_sessions(sessions, idle).await {
                tracing::warn!(error = %e, "could not record session activity");
            }
        }
        if !tokens.is_empty() {
            if let Err(e) = self.app.store.note_api_token_use(tokens).await {
                tracing::warn!(error = %e, "could not record API token use");
            }
        }
    }

    async fn write_audit(&self, pending: &mut Vec<AuditRecord>) {
        if pending.is_empty() {
            return;
        }
        let batch = std::mem::take(pending);
        let n = batch.len();
        if let Err(e) = self.app.store.append_audit(batch.clone()).await {
            // Kept for the next flush (the database may be back by then), within a bound;
            // every entry is in the log already.
            let dropped = n.saturating_sub(AUDIT_KEPT_WHILE_FAILING);
            tracing::error!(error = %e, waiting = n - dropped, dropped, "could not write audit entries yet");
            pending.extend(batch.into_iter().skip(dropped));
        }
    }

    async fn sweep(&self) {
        let now = now_secs();
        match self.app.store.expire_accounts(now).await {
            Ok((ids, removed)) => {
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
            Err(e) => tracing::warn!(error = %e, "account expiry failed"),
        }
        let now = now_secs();
        self.in_batches("expired sessions", now, Sweep::Sessions)
            .await;
        self.in_batches("expired mailed tokens", now, Sweep::MailTokens)
            .await;
        self.in_batches("expired passkey ceremonies", now, Sweep::PasskeyChallenges)
            .await;
        let retention =
            i64::try_from(self.app.config.security.audit_retention.as_secs()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(retention);
        self.in_batches("audit entries past their retention", cutoff, Sweep::Audit)
            .await;
    }

    /// Run a sweep (one transaction of at most `SWEEP_BATCH` deletions before `at`) until a
    /// batch comes back short, so one sweep never holds the write lock for long.
    async fn in_batches(&self, what: &'static str, at: i64, sweep: Sweep) {
        let store = &self.app.store;
        let mut total = 0;
        loop {
            let done = match sweep {
                Sweep::Sessions => store.sweep_expired_sessions(at, SWEEP_BATCH).await,
                Sweep::MailTokens => store.sweep_expired_tokens(at, SWEEP_BATCH).await,
                Sweep::PasskeyChallenges => store.sweep_expired_challenges(at, SWEEP_BATCH).await,
                Sweep::Audit => store.sweep_audit(at, SWEEP_BATCH).await,
            };
            match done {
                Ok(n) => {
                    total += n;
                    if n < SWEEP_BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sweep of {what} failed");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::debug!(removed = total, "{what} swept");
        }
    }
}

#[async_trait]
impl BackgroundService for Maintenance {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (Some(mut touches), Some(mut audits)) = (
            self.app.auth.take_touch_receiver(),
            self.app.take_audit_receiver(),
        ) else {
            return;
        };
        let mut pending: HashMap<Used, i64> = HashMap::new();
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
                    self.app.store.recover().await;
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
