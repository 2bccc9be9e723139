//! The shared backend: everything in one PostgreSQL database that any number of gateway
//! instances use at once. Each capability is a few statements in one transaction; the
//! uniqueness and single-use rules are decided by the database (constraints, row locks and,
//! where redb's single writer decides today, a transaction-scoped advisory lock), so racing
//! instances get one winner. Counters and sign-ins waiting for a provider are stored too: a
//! lockout counts every instance's failures, and a provider's callback may land anywhere.
//!
//! Every committed change that invalidates a copy kept in memory is announced twice: to this
//! instance's listeners before the write returns, and to every other instance through `NOTIFY`
//! inside the same transaction (delivered on commit), which [`listener`] turns back into
//! [`StoreEvent`]s (each notification carries its instance's origin, so an instance does not
//! hear its own changes a second time). While that notification connection is down, nothing may be kept in
//! memory ([`PgStore::notifications_live`]), and every copy is dropped when it goes down and
//! again when it comes back.
//!
//! The work runs on a small runtime of the store's own, so connections live as long as the
//! store whichever runtime asks, and every operation is bounded in time: an unreachable
//! database is an [`StoreError::Unavailable`] within seconds, never a hang.

mod api_tokens;
mod audit;
mod backend;
mod counters;
mod factors;
mod flows;
mod identities;
mod invites;
mod listener;
mod passkeys;
mod schema;
mod sessions;
mod settings;
mod snapshot;
#[cfg(test)]
pub(crate) mod test_cluster;
mod users;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::Transaction;

use super::{Events, OpenError, StoreError, StoreEvent, WriteError};

pub use schema::SCHEMA_VERSION;

/// The channel every instance listens on.
const CHANNEL: &str = "authgate";

/// How long one operation may take, waiting for a connection included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a whole-store export or import may take (`authgate migrate-store`).
const BULK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How long connecting may take (unless the URL sets `connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sessions per user unless configured (`session.max_per_user`).
const DEFAULT_SESSIONS_PER_USER: usize = 50;

/// The PostgreSQL backend; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The store's own runtime: connections and the listener live on it.
    runtime: Runtime,
    events: Arc<Events>,
    /// Whether the notification connection is up (copies may be kept in memory).
    listening: Arc<AtomicBool>,
    /// This instance's mark on its notifications (random): the listener skips its own, which
    /// were published here before the write returned.
    origin: Arc<str>,
    sessions_per_user: AtomicUsize,
}

/// A runtime that may be dropped anywhere (even inside another runtime).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(|r| r.handle())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The database's address and how to reach it, parsed from a URL.
#[derive(Clone)]
struct Target {
    config: tokio_postgres::Config,
    tls: Tls,
}

#[derive(Clone)]
enum Tls {
    Off,
    On(tokio_postgres_rustls::MakeRustlsConnect),
}

impl Target {
    /// Parse `url` (never repeated in an error: it may hold a password).
    fn parse(url: &str) -> Result<Target, String> {
        let (url_for_client, roots) = libpq_extras(url.trim())?;
        let mut config: tokio_postgres::Config =
            url_for_client.parse().map_err(|e: tokio_postgres::Error| {
                format!(
                    "the storage URL is not usable: {}",
                    scrub(&e.to_string(), url)
                )
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("authgate");
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        let tls = match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => Tls::Off,
            _ => Tls::On(tls_connector(&roots)?),
        };
        Ok(Target { config, tls })
    }

    /// One connection outside the pool (the listener's), driven on the current runtime.
    async fn connect(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            futures_util::future::BoxFuture<'static, Result<(), tokio_postgres::Error>>,
            tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>,
        ),
        tokio_postgres::Error,
    > {
        match &self.tls {
            Tls::Off => {
                let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
                let (driver, notes) = listener::drive(connection);
                Ok((client, driver, notes))
            }
            Tls::On(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                let (driver, notes) = listener::drive(connection);
                Ok((client, driver, notes))
            }
        }
    }
}

/// What the database's certificate is checked against.
#[derive(Debug, Clone, PartialEq)]
enum Roots {
    /// The system's trust store (`SSL_CERT_FILE` / `SSL_CERT_DIR` may point elsewhere).
    System,
    /// The CA certificates of this PEM file only (`sslrootcert=FILE`).
    File(std::path::PathBuf),
}

/// Take the libpq parameters the client library does not know out of a URL's query:
/// `sslrootcert=FILE` (or `system`) and `sslmode=verify-ca` / `verify-full`, which become
/// `require`. Whatever the mode, a certificate is always verified, chain and host name, so
/// `require` and `verify-ca` are as strict as `verify-full`. Everything else (and a
/// `key=value` connection string) passes unchanged.
fn libpq_extras(url: &str) -> Result<(String, Roots), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), Roots::System));
    };
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Ok((url.to_string(), Roots::System));
    }
    let mut roots = Roots::System;
    // The other parameters keep their text exactly as written (the client decodes them).
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        let Some((key, value)) = url::form_urlencoded::parse(pair.as_bytes()).next() else {
            kept.push(pair);
            continue;
        };
        match (&*key, &*value) {
            ("sslrootcert", "system") => roots = Roots::System,
            ("sslrootcert", "") => {
                return Err("the storage URL's sslrootcert is empty".into());
            }
            ("sslrootcert", file) => roots = Roots::File(file.into()),
            ("sslmode", "verify-ca" | "verify-full") => kept.push("sslmode=require"),
            _ => kept.push(pair),
        }
    }
    let kept = kept.join("&");
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{kept}")
    };
    Ok((url, roots))
}

/// TLS to the database, its certificate checked against `roots`.
fn tls_connector(roots: &Roots) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let roots = match roots {
        Roots::System => {
            let mut store = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                // A certificate the parser refuses is skipped, as every TLS client does.
                let _ = store.add(cert);
            }
            store
        }
        Roots::File(path) => crate::trust::load_roots(path).map_err(|reason| {
            format!("the storage URL's sslrootcert {}: {reason}", path.display())
        })?,
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS to the database: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// `text` with `url` (and its password, if any) taken out.
fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, "***");
    if let Some(pw) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    {
        if !pw.is_empty() {
            out = out.replace(&pw, "***");
        }
    }
    out
}

impl PgStore {
    /// Connect to the database at `url`, bring its schema up to date and start listening for
    /// other instances' changes. Fails when the database cannot be reached or its schema is
    /// newer than this program.
    pub fn open(url: &str, pool_size: usize) -> Result<PgStore, OpenError> {
        let store = PgStore::connect(url, pool_size)?;
        store
            .block_on(schema::migrate(store.clone()))?
            .map_err(|e| OpenError::Database(e.to_string()))?;
        store.start_listener(url)?;
        Ok(store)
    }

    /// Connect without touching the schema (for `authgate migrate` and tests).
    fn connect(url: &str, pool_size: usize) -> Result<PgStore, OpenError> {
        let target = Target::parse(url).map_err(OpenError::Database)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("authgate-db")
            .enable_all()
            .build()
            .map_err(|e| OpenError::Database(format!("cannot start the database runtime: {e}")))?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match target.tls.clone() {
            Tls::Off => {
                Manager::from_config(target.config.clone(), tokio_postgres::NoTls, manager_config)
            }
            Tls::On(tls) => Manager::from_config(target.config.clone(), tls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(OPERATION_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| OpenError::Database(format!("cannot make the connection pool: {e}")))?;
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw)
            .map_err(|e| OpenError::Database(format!("no randomness: {e}")))?;
        let origin: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                runtime: Runtime(Some(runtime)),
                events: Arc::new(Events::default()),
                listening: Arc::new(AtomicBool::new(false)),
                origin: origin.into(),
                sessions_per_user: AtomicUsize::new(DEFAULT_SESSIONS_PER_USER),
            }),
        })
    }

    /// Apply the schema's migrations and return the version the database is at.
    pub fn migrate(url: &str) -> Result<i32, OpenError> {
        let store = PgStore::connect(url, 1)?;
        store
            .block_on(schema::migrate(store.clone()))?
            .map_err(|e| OpenError::Database(e.to_string()))
    }

    /// Start the notification listener and wait (briefly) until it listens, so that a store
    /// returned from [`PgStore::open`] keeps copies only once it hears every change.
    fn start_listener(&self, url: &str) -> Result<(), OpenError> {
        let target = Target::parse(url).map_err(OpenError::Database)?;
        let handle = self
            .inner
            .runtime
            .handle()
            .ok_or_else(|| OpenError::Database("the database runtime is gone".into()))?;
        handle.spawn(listener::run(
            target,
            Arc::clone(&self.inner.events),
            Arc::clone(&self.inner.listening),
            Arc::clone(&self.inner.origin),
        ));
        let deadline = std::time::Instant::now() + CONNECT_TIMEOUT;
        while !self.notifications_live() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Whether changes by other instances are heard now (only then may copies be kept).
    pub fn notifications_live(&self) -> bool {
        self.inner.listening.load(Ordering::Acquire)
    }

    /// Run `fut` on the store's runtime from synchronous code (start-up, the CLI).
    fn block_on<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, OpenError> {
        let handle = self
            .inner
            .runtime
            .handle()
            .ok_or_else(|| OpenError::Database("the database runtime is gone".into()))?
            .clone();
        // On a thread of its own: the caller may itself be inside a runtime.
        std::thread::scope(|s| {
            s.spawn(move || handle.block_on(fut))
                .join()
                .map_err(|_| OpenError::Database("the database task failed".into()))
        })
    }

    /// The cap set by `set_sessions_per_user`.
    fn sessions_per_user(&self) -> usize {
        self.inner.sessions_per_user.load(Ordering::Relaxed)
    }

    /// Announce committed changes to this instance's listeners.
    fn publish(&self, events: &[StoreEvent]) {
        self.inner.events.publish_all(events);
    }

    /// Run `op` with a pooled connection on the store's runtime, within
    /// [`OPERATION_TIMEOUT`]; the one way every operation reaches the database (and is
    /// counted and timed).
    async fn run<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.run_within(OPERATION_TIMEOUT, op).await
    }

    /// [`PgStore::run`] within `limit`.
    async fn run_within<T, E, F, Fut>(&self, limit: Duration, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let Some(handle) = self.inner.runtime.handle() else {
            return Err(StoreError::Unavailable("the store is closed".into()).into());
        };
        let pool = self.inner.pool.clone();
        let events = Arc::clone(&self.inner.events);
        let task = handle.spawn(async move {
            let started = std::time::Instant::now();
            let work = async {
                let conn = pool
                    .get()
                    .await
                    .map_err(|e| StoreError::from(PoolError(e)))?;
                op(conn).await
            };
            let out = match tokio::time::timeout(limit, work).await {
                Ok(out) => out,
                Err(_) => Err(StoreError::Unavailable(
                    "the database did not answer in time".into(),
                )
                .into()),
            };
            events.count_query();
            events.timed(started.elapsed());
            out
        });
        match task.await {
            Ok(out) => out,
            Err(e) => Err(StoreError::Unavailable(format!("storage task failed: {e}")).into()),
        }
    }

    /// [`PgStore::run`] with a transaction: `op` runs inside it, its events are sent to every
    /// other instance on commit and published here after it.
    async fn write<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> FnOnce(
                &'t Transaction<'t>,
            )
                -> futures_util::future::BoxFuture<'t, Result<(T, Vec<StoreEvent>), E>>
            + Send
            + 'static,
    {
        let origin = Arc::clone(&self.inner.origin);
        let (out, events) = self
            .run(move |mut conn| async move {
                let tx = conn
                    .transaction()
                    .await
                    .map_err(|e| E::from(StoreError::from(e)))?;
                let (out, events) = op(&tx).await?;
                announce(&tx, &origin, &events).await.map_err(E::from)?;
                tx.commit()
                    .await
                    .map_err(|e| E::from(StoreError::from(e)))?;
                Ok::<_, E>((out, events))
            })
            .await?;
        self.publish(&events);
        Ok(out)
    }

    /// Whether the database answers a query now.
    async fn ping(&self) -> bool {
        self.run(|conn| async move {
            conn.simple_query("SELECT 1")
                .await
                .map_err(StoreError::from)?;
            Ok::<_, StoreError>(())
        })
        .await
        .is_ok()
    }
}

/// Send `events` to every other instance (delivered when the transaction commits), marked as
/// coming from `origin`.
async fn announce(
    tx: &Transaction<'_>,
    origin: &str,
    events: &[StoreEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let payloads: Vec<String> = events
        .iter()
        .map(|e| listener::notification(origin, e))
        .collect();
    tx.execute(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
        &[&CHANNEL, &payloads],
    )
    .await?;
    Ok(())
}

/// Serialise writers that must see each other's effects (what redb's single writer decides:
/// who is the first owner, which racing sign-up takes an email) for the rest of `tx`.
#[derive(Debug, Clone, Copy)]
enum Lock {
    /// Creating, renaming and deleting accounts; owner checks.
    Accounts,
    /// Sign-ins waiting for a provider (their bounds are checked across rows).
    Flows,
}

async fn lock(tx: &Transaction<'_>, which: Lock) -> Result<(), StoreError> {
    let key: i64 = match which {
        Lock::Accounts => 0x6175_7468_0001,
        Lock::Flows => 0x6175_7468_0002,
    };
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
        .await?;
    Ok(())
}

/// The constraint a statement broke, if it broke a unique one.
fn unique_violation(e: &tokio_postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or(""))
}

/// A value as stored in a `jsonb` column.
fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode record: {e}")))
}

/// A record read from a `jsonb` column.
fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, StoreError> {
    serde_json::from_value(value)
        .map_err(|e| StoreError::Corrupt(format!("undecodable record: {e}")))
}

/// A 32-byte key read from a `bytea` column.
fn key32(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a stored key is not 32 bytes".into()))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => StoreError::Unavailable(format!(
                "database: {} ({})",
                db.message(),
                db.code().code()
            )),
            None => StoreError::Unavailable(format!("database: {}", with_causes(&e))),
        }
    }
}

impl From<tokio_postgres::Error> for WriteError {
    fn from(e: tokio_postgres::Error) -> Self {
        WriteError::Store(e.into())
    }
}

/// `e` and what caused it (why a TLS handshake failed, say), each once.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

/// A connection could not be had from the pool.
struct PoolError(deadpool_postgres::PoolError);

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        StoreError::Unavailable(format!("no database connection: {}", with_causes(&e.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_parameters_the_client_does_not_know_are_taken_out() {
        let file = |p: &str| Roots::File(p.into());
        let cases: &[(&str, &str, Roots)] = &[
            ("postgres://h/db", "postgres://h/db", Roots::System),
            (
                "postgres://u:p@h/db?sslmode=require",
                "postgres://u:p@h/db?sslmode=require",
                Roots::System,
            ),
            (
                "postgres://h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem",
                "postgres://h/db?sslmode=require",
                file("/etc/ca.pem"),
            ),
            (
                "postgresql://h/db?sslrootcert=%2Fa%20b%2Fca.pem&sslmode=verify-ca&application_name=x",
                "postgresql://h/db?sslmode=require&application_name=x",
                file("/a b/ca.pem"),
            ),
            // What stays is kept as written.
            (
                "postgres://h/db?application_name=a%20b&sslrootcert=ca.pem&options=-c%20x%3Dy",
                "postgres://h/db?application_name=a%20b&options=-c%20x%3Dy",
                file("ca.pem"),
            ),
            (
                "postgres://h/db?sslrootcert=system",
                "postgres://h/db",
                Roots::System,
            ),
            (
                "postgres://h1:5432,h2:5433/db?sslrootcert=ca.pem&target_session_attrs=read-write",
                "postgres://h1:5432,h2:5433/db?target_session_attrs=read-write",
                file("ca.pem"),
            ),
            // A key=value string is the client library's to read.
            (
                "host=h sslmode=require",
                "host=h sslmode=require",
                Roots::System,
            ),
        ];
        for (url, want_url, want_roots) in cases {
            let (got_url, got_roots) = libpq_extras(url).expect(url);
            assert_eq!(&got_url, want_url, "{url}");
            assert_eq!(&got_roots, want_roots, "{url}");
        }
        assert!(libpq_extras("postgres://h/db?sslrootcert=").is_err());
    }

    #[test]
    fn urls_are_parsed_with_tls_as_their_mode_says() {
        let on = |url: &str| match Target::parse(url) {
            Ok(t) => matches!(t.tls, Tls::On(_)),
            Err(e) => panic!("{url}: {e}"),
        };
        assert!(!on("postgres://h/db?sslmode=disable"));
        assert!(on("postgres://h/db"));
        assert!(on("postgres://h/db?sslmode=verify-full&sslrootcert=system"));
        // The client's own checks still apply, and never repeat the password.
        let bad = Target::parse("postgres://u:hunter2@h/db?sslmode=sometimes")
            .err()
            .expect("an unknown sslmode is refused");
        assert!(!bad.contains("hunter2"), "{bad}");
        let missing = Target::parse("postgres://u:hunter2@h/db?sslrootcert=/nonexistent/ca.pem")
            .err()
            .expect("a missing CA file is refused");
        assert!(
            missing.contains("sslrootcert /nonexistent/ca.pem") && !missing.contains("hunter2"),
            "{missing}"
        );
    }
}
