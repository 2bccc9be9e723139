//! The shared state of a running gateway and the operations both the API and the proxy use:
//! the session check, settings that the API may override, and blocking-pool helpers.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::AUTHORIZATION;
use http::HeaderMap;
use tokio::sync::mpsc;

use crate::auth::cookie;
use crate::auth::lockout::Lockout;
use crate::auth::mail_throttle::MailThrottle;
use crate::auth::password::Hasher;
use crate::auth::ratelimit::IpLimiter;
use crate::auth::session::{self, Authenticated, Identity};
use crate::auth::session_cache::SessionCache;
use crate::config::{Config, Registration};
use crate::error::ApiError;
use crate::mail::Mailer;
use crate::metrics::{Metrics, StoreOp};
use crate::policy::headers::IdentityHeaders;
use crate::policy::routes::Route;
use crate::store::{AuditRecord, SessionKey, Store, StoreError};

/// Last-seen is written at most this often per session.
pub const TOUCH_INTERVAL_SECS: i64 = 60;
/// Live sessions kept in memory at most (about 300 bytes each).
const SESSION_CACHE_ENTRIES: usize = 65_536;
/// Pending last-seen updates held at most; beyond that updates are dropped (they are advisory).
const TOUCH_QUEUE: usize = 8192;

/// Current time in Unix seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Settings stored in the database that override the file (`POST /auth/config/update`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    pub registration: Option<Registration>,
    pub native_signin: Option<bool>,
}

/// Setting names in the store.
pub const SETTING_REGISTRATION: &str = "registration";
pub const SETTING_NATIVE_SIGNIN: &str = "native_signin";

/// A last-seen update waiting to be written.
pub type Touch = (SessionKey, i64);

/// Audit entries waiting to be written at most; beyond that they reach only the log.
const AUDIT_QUEUE: usize = 65_536;

/// What a configuration reload (SIGHUP) replaces while serving: the routes with their
/// policies and upstreams, and the identity header names.
#[derive(Debug, Clone)]
pub struct Policy {
    pub routes: Vec<Route>,
    pub headers: IdentityHeaders,
    /// Some route restricts methods (forward-auth then needs the original method).
    pub routes_use_methods: bool,
    /// Each route's metrics label: its host pattern and path, e.g. `*.example.com/admin`.
    pub labels: Vec<Arc<String>>,
}

impl Policy {
    /// The reloadable part of a configuration.
    pub fn of(config: &Config) -> Policy {
        Policy {
            routes: config.routes.clone(),
            headers: config.headers.clone(),
            routes_use_methods: config.routes.iter().any(|r| !r.methods.is_empty()),
            labels: config
                .routes
                .iter()
                .map(|r| {
                    use crate::policy::host::HostPattern;
                    let host = match &r.host {
                        HostPattern::Any => "*".to_string(),
                        HostPattern::Exact(h) => h.clone(),
                        HostPattern::Subdomains(d) => format!("*{d}"),
                    };
                    Arc::new(format!("{host}{}", r.path))
                })
                .collect(),
        }
    }
}

/// Everything a request needs.
pub struct App {
    /// The configuration read at start-up. Routes and identity headers may have been replaced
    /// since: read those through [`App::policy`].
    pub config: Config,
    policy: arc_swap::ArcSwap<Policy>,
    pub metrics: Arc<Metrics>,
    sessions: SessionCache,
    /// The session cookie's name on the wire.
    cookie_name: String,
    pub store: Store,
    pub hasher: Hasher,
    pub lockout: Lockout,
    pub ip_limiter: IpLimiter,
    /// How often one account is mailed and one client asks for mail.
    pub mail_throttle: MailThrottle,
    /// `None` without `[smtp]`: mail features answer 503 SMTP_NOT_CONFIGURED.
    pub mailer: Option<Arc<Mailer>>,
    /// Sign-in providers and the sign-ins in progress.
    pub oidc: crate::oidc::Oidc,
    overrides: RwLock<Overrides>,
    touches: mpsc::Sender<Touch>,
    touch_rx: Mutex<Option<mpsc::Receiver<Touch>>>,
    audits: mpsc::Sender<AuditRecord>,
    audit_rx: Mutex<Option<mpsc::Receiver<AuditRecord>>>,
}

impl App {
    /// Build the state over an open store (loads stored overrides).
    pub fn new(config: Config, store: Store) -> Result<Arc<App>, String> {
        let metrics = Arc::new(Metrics::new());
        let hasher = Hasher::new(config.security.hash_concurrency, config.security.hash_queue)?
            .with_wait_metric(metrics.hash_wait.clone());
        let overrides = load_overrides(&store).map_err(|e| e.to_string())?;
        store.set_sessions_per_user(config.session.max_per_user);
        let mailer = config
            .smtp
            .as_ref()
            .map(Mailer::new)
            .transpose()?
            .map(Arc::new);
        let oidc = crate::oidc::Oidc::new(&config.oidc)?;
        let (tx, rx) = mpsc::channel(TOUCH_QUEUE);
        let (audit_tx, audit_rx) = mpsc::channel(AUDIT_QUEUE);
        Ok(Arc::new(App {
            lockout: Lockout::new(config.security.max_failed_logins, config.security.lockout),
            ip_limiter: IpLimiter::new(
                config.security.ip_rate_limit,
                config.security.ip_rate_window,
            ),
            mail_throttle: MailThrottle::in_memory(),
            hasher,
            mailer,
            oidc,
            store,
            overrides: RwLock::new(overrides),
            touches: tx,
            touch_rx: Mutex::new(Some(rx)),
            audits: audit_tx,
            audit_rx: Mutex::new(Some(audit_rx)),
            policy: arc_swap::ArcSwap::from_pointee(Policy::of(&config)),
            metrics,
            sessions: SessionCache::new(SESSION_CACHE_ENTRIES),
            cookie_name: cookie::wire_name(&config.session),
            config,
        }))
    }

    /// Registration mode in force (database override, else the file).
    pub fn registration(&self) -> Registration {
        self.overrides()
            .registration
            .unwrap_or(self.config.auth.registration)
    }

    /// Whether password login is open to everyone (database override, else the file).
    pub fn native_signin(&self) -> bool {
        self.overrides()
            .native_signin
            .unwrap_or(self.config.auth.native_signin)
    }

    /// The overrides in force.
    pub fn overrides(&self) -> Overrides {
        *self.overrides.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace the in-memory overrides after they were stored.
    pub fn set_overrides(&self, o: Overrides) {
        *self.overrides.write().unwrap_or_else(|p| p.into_inner()) = o;
    }

    /// The routes and identity headers in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Apply a re-read configuration: routes and identity headers take effect for the next
    /// request; the names of other sections that changed (and need a restart) are returned.
    pub fn apply_reload(&self, new: &Config) -> Vec<&'static str> {
        self.policy.store(Arc::new(Policy::of(new)));
        let old = &self.config;
        // Compared by value, secrets included (their Debug text is masked, so a rotated SMTP
        // password or client secret would look unchanged).
        let changed = [
            ("server", old.server != new.server),
            ("storage", old.storage != new.storage),
            ("session", old.session != new.session),
            ("auth", old.auth != new.auth),
            ("security", old.security != new.security),
            ("log", old.log != new.log),
            ("smtp", old.smtp != new.smtp),
            ("oidc", old.oidc != new.oidc),
            ("metrics", old.metrics != new.metrics),
        ];
        changed
            .into_iter()
            .filter_map(|(name, differs)| differs.then_some(name))
            .collect()
    }

    /// The metrics page, with the gauges read now (one database read for the session count).
    pub fn render_metrics(&self) -> Result<String, String> {
        self.metrics.render(
            self.store.session_count().ok(),
            self.hasher.queue_depth(),
            self.hasher.running(),
        )
    }

    /// Idle timeout in seconds.
    pub fn idle_secs(&self) -> i64 {
        i64::try_from(self.config.session.idle_timeout.as_secs()).unwrap_or(i64::MAX)
    }

    /// The valid session a request carries (cookie, or bearer token when enabled), if any.
    /// A store failure is an error so callers fail closed. Queues a last-seen update when due;
    /// never writes to the database itself.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Authenticated>, StoreError> {
        let mut tokens = cookie::session_tokens(headers, &self.config.session);
        if self.config.session.bearer {
            if let Some(t) = bearer_token(headers) {
                tokens.push(t.to_string());
            }
        }
        if tokens.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let now = now_secs();
        let started = std::time::Instant::now();
        let found = session::check_tokens(&self.store, &refs, self.idle_secs(), now);
        self.metrics
            .store_time(StoreOp::SessionCheck, started.elapsed());
        let found = found?;
        if let Some(auth) = &found {
            if now - auth.session.last_seen >= TOUCH_INTERVAL_SECS {
                // Full queue: skip; the next request will try again.
                let _ = self.touches.try_send((auth.key, now));
            }
        }
        Ok(found)
    }

    /// Who a request to a protected app is: the first presented token (cookie, then bearer when
    /// enabled) that names a live session. Served from memory when the session was checked
    /// before and nothing that could end it has been written since; else one database read.
    /// A store failure is an error so callers fail closed.
    pub fn identify(&self, headers: &HeaderMap) -> Result<Option<Seen>, StoreError> {
        let cookies = cookie::session_token_refs(headers, &self.cookie_name);
        let bearer = if self.config.session.bearer {
            bearer_token(headers)
        } else {
            None
        };
        if cookies.is_empty() && bearer.is_none() {
            return Ok(None);
        }
        let now = now_secs();
        let idle = self.idle_secs();
        // Read before the database: a write after this point makes what we read unusable.
        let epoch = self.store.epoch();
        let candidates = cookies
            .iter()
            .map(|t| (*t, false))
            .chain(bearer.map(|t| (t, true)));
        for (token, via_bearer) in candidates {
            let Some(key) = session::key_for(token) else {
                continue;
            };
            if let Some(hit) = self.sessions.get(&key, epoch, now, idle) {
                self.note_activity(&key, hit.last_seen, now);
                return Ok(Some(Seen {
                    identity: hit.identity,
                    via_bearer,
                }));
            }
            let started = std::time::Instant::now();
            let found = self.store.get_session_and_user(&key);
            self.metrics
                .store_time(StoreOp::SessionCheck, started.elapsed());
            let Some((stored, user)) = found? else {
                continue;
            };
            if !session::is_live(&stored, &user, idle, now) {
                continue;
            }
            let identity = Arc::new(Identity::from_user(&user));
            let valid_until = stored.expires_at.min(user.expires_at.unwrap_or(i64::MAX));
            self.sessions.insert(
                key,
                epoch,
                Arc::clone(&identity),
                valid_until,
                stored.last_seen,
            );
            self.note_activity(&key, stored.last_seen, now);
            return Ok(Some(Seen {
                identity,
                via_bearer,
            }));
        }
        Ok(None)
    }

    /// Queue a last-seen update when one is due (at most once a minute per session).
    fn note_activity(&self, key: &crate::store::SessionKey, last_seen: i64, now: i64) {
        if now - last_seen >= TOUCH_INTERVAL_SECS && self.touches.try_send((*key, now)).is_ok() {
            self.sessions.seen(key, now);
        }
    }

    /// The receiving end of last-seen updates, for the maintenance task (taken once).
    pub fn take_touch_receiver(&self) -> Option<mpsc::Receiver<Touch>> {
        self.touch_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Record an audit event: to the log at once, and to the audit table by the maintenance
    /// task (batched, within about a second). Never pass secrets.
    pub fn audit(
        &self,
        event: &str,
        ip: Option<IpAddr>,
        actor: Option<&str>,
        target: Option<&str>,
        detail: Option<String>,
    ) {
        tracing::info!(target: "authgate::audit", event, actor, target, ip = ?ip, detail = detail.as_deref());
        let clip = |s: &str| s.chars().take(256).collect::<String>();
        let record = AuditRecord {
            at: now_secs(),
            event: event.to_string(),
            actor: actor.map(clip),
            target: target.map(clip),
            ip: ip.map(|i| i.to_string()),
            detail: detail.map(|d| clip(&d)),
        };
        if self.audits.try_send(record).is_err() {
            tracing::error!(event, "audit queue full: this entry is only in the log");
        }
    }

    /// The receiving end of audit entries, for the maintenance task (taken once).
    pub fn take_audit_receiver(&self) -> Option<mpsc::Receiver<AuditRecord>> {
        self.audit_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Run a store operation on the blocking pool (writes fsync).
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        op: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let out = op(&app.store);
            app.metrics.store_time(StoreOp::Pooled, started.elapsed());
            out
        })
        .await
        .map_err(|e| ApiError::Internal(format!("storage task failed: {e}")))
    }

    /// The mailer, or 503 SMTP_NOT_CONFIGURED.
    pub fn mailer(&self) -> Result<&Arc<Mailer>, ApiError> {
        self.mailer.as_ref().ok_or(ApiError::SmtpNotConfigured)
    }

    /// A link to a page of the gateway, always built from `public_url` (never `Host`).
    pub fn link(&self, page: &str, token: &str) -> String {
        let cfg = &self.config;
        let token: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
        format!(
            "{}{}{page}?token={token}",
            cfg.server.public_url.origin, cfg.auth.prefix
        )
    }

    /// The client address of a request from `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let xff = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        crate::net::client_ip(peer, xff, &self.config.server.trusted_proxies)
    }
}

/// A request's live session, as the access decision needs it.
pub struct Seen {
    pub identity: Arc<Identity>,
    /// The session came as a bearer token (to be kept from the upstream).
    pub via_bearer: bool,
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn load_overrides(store: &Store) -> Result<Overrides, StoreError> {
    let registration = store
        .get_setting(SETTING_REGISTRATION)?
        .and_then(|v| v.as_str().and_then(Registration::parse));
    let native_signin = store
        .get_setting(SETTING_NATIVE_SIGNIN)?
        .and_then(|v| v.as_bool());
    Ok(Overrides {
        registration,
        native_signin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reload_reports_rotated_secrets_as_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = |smtp_password: &str, token: &str| {
            format!(
                "[storage]\npath = \"{}\"\n[security]\nvalidate_token = \"{token}\"\n\
                 [smtp]\nhost = \"127.0.0.1\"\nusername = \"u\"\npassword = \"{smtp_password}\"\n\
                 from = \"authgate <a@example.com>\"\n",
                dir.path().join("db.redb").display()
            )
        };
        let config = Config::from_toml(&base("one", "t1")).expect("config");
        let store = Store::open(&config.storage.path).expect("store");
        let app = App::new(config, store).expect("app");
        let same = Config::from_toml(&base("one", "t1")).expect("config");
        assert!(app.apply_reload(&same).is_empty());
        let rotated = Config::from_toml(&base("two", "t1")).expect("config");
        assert_eq!(app.apply_reload(&rotated), vec!["smtp"]);
        let token = Config::from_toml(&base("one", "t2")).expect("config");
        assert_eq!(app.apply_reload(&token), vec!["security"]);
    }
}
