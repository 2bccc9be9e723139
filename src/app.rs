//! The shared state of a running gateway: the configuration (with the routes a reload may
//! replace), the store, the one session check, the password hasher, limits, mail and sign-in
//! providers; and the settings the API may override.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use tokio::sync::mpsc;

use crate::auth::authenticator::Authenticator;
use crate::auth::limits::{ClientLimit, Lockout};
use crate::auth::password::Hasher;
use crate::auth::signin::Gate;
use crate::config::{Config, Registration};
use crate::error::ApiError;
use crate::mail::Mailer;
use crate::metrics::{Metrics, StoreOp};
use crate::policy::headers::IdentityHeaders;
use crate::policy::routes::Route;
use crate::store::{AuditRecord, Store, StoreError};

/// Current time in Unix seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The registration settings in force: the file's, or a stored override
/// (`POST /auth/config/update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub registration: Registration,
    pub native_signin: bool,
}

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
    /// The storage backend chosen at start.
    pub store: Store,
    /// The one session check.
    pub auth: Authenticator,
    pub hasher: Hasher,
    pub lockout: Lockout,
    pub client_limit: ClientLimit,
    /// `None` without `[smtp]`: mail features answer 503 SMTP_NOT_CONFIGURED.
    pub mailer: Option<Arc<Mailer>>,
    /// Sign-in providers and the rules for sign-ins in progress.
    pub oidc: crate::oidc::Oidc,
    /// Upstream host names, looked up when connecting.
    pub resolver: crate::net::resolve::Resolver,
    /// The pages' stylesheet, icon and logo, built from `[ui]`.
    pub assets: crate::pages::Assets,
    /// Seals second-factor secrets at rest.
    pub sealing: crate::auth::sealing::SealingKey,
    /// The WebAuthn relying party; `None` when passkeys are off.
    pub passkeys: Option<crate::auth::passkey::RelyingParty>,
    audits: mpsc::Sender<AuditRecord>,
    audit_rx: Mutex<Option<mpsc::Receiver<AuditRecord>>>,
}

impl App {
    /// Build the state over an open store.
    pub fn new(config: Config, store: Store) -> Result<Arc<App>, String> {
        let metrics = Arc::new(Metrics::new());
        let hasher = Hasher::new(config.security.hash_concurrency, config.security.hash_queue)?
            .with_wait_metric(metrics.hash_wait.clone());
        store.set_sessions_per_user(config.session.max_per_user);
        let timing = Arc::clone(&metrics);
        store.events().time_with(Arc::new(move |took| {
            timing.store_time(StoreOp::Pooled, took)
        }));
        let mailer = config
            .smtp
            .as_ref()
            .map(|smtp| Mailer::new(smtp, &config.server.public_url.host))
            .transpose()?
            .map(Arc::new);
        let oidc = crate::oidc::Oidc::new(&config.oidc)?;
        let sealing = crate::auth::sealing::SealingKey::load_or_create(
            &crate::auth::sealing::key_path(&config),
        )?;
        let passkeys = match config.auth.passkeys.config() {
            Some(p) => Some(crate::auth::passkey::RelyingParty::new(p).map_err(|e| e.to_string())?),
            None => None,
        };
        let (audit_tx, audit_rx) = mpsc::channel(AUDIT_QUEUE);
        let lockout_secs = i64::try_from(config.security.lockout.as_secs()).unwrap_or(i64::MAX);
        let window_secs =
            i64::try_from(config.security.ip_rate_window.as_secs()).unwrap_or(i64::MAX);
        Ok(Arc::new(App {
            lockout: Lockout {
                max_failures: config.security.max_failed_logins,
                lockout_secs,
            },
            client_limit: ClientLimit {
                max_failures: config.security.ip_rate_limit,
                window_secs,
            },
            auth: Authenticator::new(store.clone(), &config.session, Arc::clone(&metrics)),
            hasher,
            mailer,
            oidc,
            resolver: crate::net::resolve::Resolver::system(),
            sealing,
            passkeys,
            assets: crate::pages::Assets::new(
                config.ui.accent_color,
                config.ui.custom_css.as_deref(),
                config
                    .ui
                    .logo
                    .as_ref()
                    .map(|l| crate::pages::assets::Asset {
                        bytes: l.bytes.clone(),
                        content_type: l.content_type,
                    }),
            ),
            store,
            audits: audit_tx,
            audit_rx: Mutex::new(Some(audit_rx)),
            policy: arc_swap::ArcSwap::from_pointee(Policy::of(&config)),
            metrics,
            config,
        }))
    }

    /// The registration settings in force (database overrides, else the file). An override
    /// the database holds in an unknown form counts as none.
    pub async fn settings(&self) -> Result<Effective, StoreError> {
        let stored = self.store.overrides().await?;
        Ok(Effective {
            registration: stored
                .registration
                .as_deref()
                .and_then(Registration::parse)
                .unwrap_or(self.config.auth.registration),
            native_signin: stored
                .native_signin
                .unwrap_or(self.config.auth.native_signin),
        })
    }

    /// What the sign-in policy judges by, read now.
    pub async fn gate(&self) -> Result<Gate, StoreError> {
        let settings = self.settings().await?;
        Ok(Gate {
            owner_exists: self.store.owner_exists().await?,
            registration: settings.registration,
            native_signin: settings.native_signin,
            require_email_verification: self.config.auth.require_email_verification,
        })
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
            // The branding (with the logo and stylesheet files) is read once, at start.
            ("ui", old.ui != new.ui),
        ];
        changed
            .into_iter()
            .filter_map(|(name, differs)| differs.then_some(name))
            .collect()
    }

    /// The metrics page, with the gauges read now (one database read for the session count).
    pub async fn render_metrics(&self) -> Result<String, String> {
        self.metrics.render(
            self.store.session_count().await.ok(),
            self.hasher.queue_depth(),
            self.hasher.running(),
            self.store.events().queries(),
        )
    }

    /// Idle timeout in seconds.
    pub fn idle_secs(&self) -> i64 {
        self.auth.idle_secs()
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
        let store = Store::open_redb(&config.storage.path, 1 << 20).expect("store");
        let app = App::new(config, store).expect("app");
        let same = Config::from_toml(&base("one", "t1")).expect("config");
        assert!(app.apply_reload(&same).is_empty());
        let rotated = Config::from_toml(&base("two", "t1")).expect("config");
        assert_eq!(app.apply_reload(&rotated), vec!["smtp"]);
        let token = Config::from_toml(&base("one", "t2")).expect("config");
        assert_eq!(app.apply_reload(&token), vec!["security"]);
        let renamed = Config::from_toml(&format!("{}[ui]\ntitle = \"Other\"\n", base("one", "t1")))
            .expect("config");
        assert_eq!(app.apply_reload(&renamed), vec!["ui"]);
    }
}
