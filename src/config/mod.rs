//! The configuration file: raw TOML structs (unknown keys rejected) turned by [`Config::from_toml`]
//! into a validated [`Config`] that the rest of the program uses.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use ipnet::IpNet;
use serde::Deserialize;

use crate::proxy::routing::{normalise_path, HostPattern};

mod oidc;
pub use oidc::{secret_env_name, ClaimNames, OidcProviderConfig, ProviderKind, TokenAuth};

/// Where `serve` and `check-config` look when no `--config` is given.
pub const DEFAULT_PATHS: [&str; 2] = ["config.toml", "/etc/authgate/config.toml"];

/// A problem in the configuration, naming the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found in one configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<ConfigProblem>);

impl ConfigError {
    fn one(key: &str, message: impl Into<String>) -> Self {
        ConfigError(vec![ConfigProblem {
            key: key.to_string(),
            message: message.into(),
        }])
    }
}

// ---------------------------------------------------------------------------
// Raw file layout. Every struct rejects unknown keys; every key has a default except
// what a route needs.

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    server: RawServer,
    storage: RawStorage,
    session: RawSession,
    auth: RawAuth,
    security: RawSecurity,
    headers: RawHeaders,
    log: RawLog,
    smtp: Option<RawSmtp>,
    metrics: RawMetrics,
    routes: Vec<RawRoute>,
    oidc: Vec<oidc::RawOidc>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawMetrics {
    listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default = "starttls")]
    tls: SmtpTls,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_file: String,
    from: String,
    #[serde(default = "ten_seconds")]
    timeout: String,
}

fn starttls() -> SmtpTls {
    SmtpTls::Starttls
}
fn ten_seconds() -> String {
    "10s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: Vec<String>,
    tls_listen: Vec<String>,
    tls_cert: PathBuf,
    tls_key: PathBuf,
    upstream_ca_file: PathBuf,
    public_url: String,
    threads: usize,
    trusted_proxies: Vec<String>,
    max_body: String,
    max_header_size: String,
    shutdown_timeout: String,
    upstream_connect_timeout: String,
    upstream_timeout: String,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: vec!["127.0.0.1:8080".into()],
            tls_listen: Vec::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            upstream_ca_file: PathBuf::new(),
            public_url: "http://127.0.0.1:8080".into(),
            threads: 0,
            trusted_proxies: vec!["127.0.0.1/32".into(), "::1/128".into()],
            max_body: "64KiB".into(),
            max_header_size: "32KiB".into(),
            shutdown_timeout: "5s".into(),
            upstream_connect_timeout: "5s".into(),
            upstream_timeout: "60s".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStorage {
    path: PathBuf,
    cache_size: String,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            path: PathBuf::from("data/authgate.redb"),
            cache_size: "64MiB".into(),
        }
    }
}

/// `secure = true | false | "auto"`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(untagged)]
enum RawSecure {
    Bool(bool),
    Word(SecureWord),
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum SecureWord {
    Auto,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSession {
    cookie_name: String,
    cookie_domain: String,
    secure: RawSecure,
    same_site: SameSite,
    idle_timeout: String,
    lifetime: String,
    remember_me_lifetime: String,
    bearer: bool,
    max_per_user: usize,
}

impl Default for RawSession {
    fn default() -> Self {
        RawSession {
            cookie_name: "authgate_session".into(),
            cookie_domain: String::new(),
            secure: RawSecure::Word(SecureWord::Auto),
            same_site: SameSite::Lax,
            idle_timeout: "2h".into(),
            lifetime: "7d".into(),
            remember_me_lifetime: "30d".into(),
            bearer: false,
            max_per_user: 50,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAuth {
    prefix: String,
    registration: String,
    native_signin: bool,
    password_min_length: usize,
    password_max_length: usize,
    require_email_verification: bool,
    allowed_redirect_hosts: Vec<String>,
    fields: RawFields,
}

impl Default for RawAuth {
    fn default() -> Self {
        RawAuth {
            prefix: "/auth".into(),
            registration: "open".into(),
            native_signin: true,
            password_min_length: 8,
            password_max_length: 128,
            require_email_verification: false,
            allowed_redirect_hosts: Vec::new(),
            fields: RawFields::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawFields {
    username: FieldMode,
    full_name: FieldMode,
    first_name: FieldMode,
    last_name: FieldMode,
}

impl Default for RawFields {
    fn default() -> Self {
        RawFields {
            username: FieldMode::Optional,
            full_name: FieldMode::Optional,
            first_name: FieldMode::Off,
            last_name: FieldMode::Off,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSecurity {
    max_failed_logins: u32,
    lockout: String,
    ip_rate_limit: String,
    hash_concurrency: usize,
    hash_queue: usize,
    validate_token: String,
    validate_token_file: String,
    audit_retention: String,
}

impl Default for RawSecurity {
    fn default() -> Self {
        RawSecurity {
            max_failed_logins: 5,
            lockout: "15m".into(),
            ip_rate_limit: "30/min".into(),
            hash_concurrency: 0,
            hash_queue: 64,
            validate_token: String::new(),
            validate_token_file: String::new(),
            audit_retention: "365d".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHeaders {
    user: String,
    email: String,
    name: String,
    groups: String,
    user_id: String,
}

impl Default for RawHeaders {
    fn default() -> Self {
        RawHeaders {
            user: "Remote-User".into(),
            email: "Remote-Email".into(),
            name: "Remote-Name".into(),
            groups: "Remote-Groups".into(),
            user_id: "Remote-User-Id".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: LogFormat,
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default = "star")]
    host: String,
    #[serde(default = "slash")]
    path: String,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    upstream: Option<String>,
    policy: Policy,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    raw_path: bool,
}

fn star() -> String {
    "*".into()
}
fn slash() -> String {
    "/".into()
}

// ---------------------------------------------------------------------------
// The validated configuration.

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub session: SessionConfig,
    pub auth: AuthConfig,
    pub security: SecurityConfig,
    pub headers: IdentityHeaders,
    pub log: LogConfig,
    pub smtp: Option<SmtpConfig>,
    pub metrics: MetricsConfig,
    pub routes: Vec<Route>,
    /// Sign-in providers, in file order.
    pub oidc: Vec<OidcProviderConfig>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Prometheus text at `/metrics` on this address; `None`: no metrics listener.
    pub listen: Option<SocketAddr>,
}

/// `server.tls_listen` with its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A secret from the config, a file or the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `smtp.tls`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a local relay only).
    None,
}

/// `[smtp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub password: Option<Secret>,
    pub from: String,
    pub timeout: Duration,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    /// HTTPS listeners; `None` without `tls_listen`.
    pub tls: Option<TlsConfig>,
    /// Extra trust roots for `https://` upstreams (PEM); `None`: the system's roots.
    pub upstream_ca_file: Option<PathBuf>,
    pub public_url: PublicUrl,
    /// Worker threads; already resolved from 0 to the number of cores.
    pub threads: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub max_body: usize,
    /// Request headers (names and values, all together) larger than this get 431.
    pub max_header_size: usize,
    pub shutdown_timeout: Duration,
    /// Connecting to an upstream may take this long before 504.
    pub upstream_connect_timeout: Duration,
    /// An upstream may stay silent this long (per read or write) before 504.
    pub upstream_timeout: Duration,
}

/// `server.public_url`, split into what the gateway needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `scheme://host[:port]` without a trailing slash.
    pub origin: String,
    pub https: bool,
    /// Host without port, lower-case.
    pub host: String,
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    pub path: PathBuf,
    /// The database's page cache in bytes (sessions in use are also kept in memory apart).
    pub cache_size: usize,
}

/// `session.same_site`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

/// `[session]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub cookie_name: String,
    pub cookie_domain: Option<String>,
    /// Resolved from `secure` (auto: public_url is https).
    pub secure: bool,
    pub same_site: SameSite,
    pub idle_timeout: Duration,
    pub lifetime: Duration,
    pub remember_me_lifetime: Duration,
    pub bearer: bool,
    /// Sessions one user may have at once; a sign-in beyond it ends the oldest.
    pub max_per_user: usize,
}

/// How people may create accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Open,
    Approval,
    Invite,
    Closed,
}

impl Registration {
    /// Parse the config / API word.
    pub fn parse(word: &str) -> Option<Registration> {
        match word {
            "open" => Some(Registration::Open),
            "approval" => Some(Registration::Approval),
            "invite" => Some(Registration::Invite),
            "closed" => Some(Registration::Closed),
            _ => None,
        }
    }

    /// The config / API word.
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Open => "open",
            Registration::Approval => "approval",
            Registration::Invite => "invite",
            Registration::Closed => "closed",
        }
    }
}

/// Whether a profile field is asked for at registration.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FieldMode {
    Off,
    Optional,
    Required,
}

/// `[auth.fields]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileFields {
    pub username: FieldMode,
    pub full_name: FieldMode,
    pub first_name: FieldMode,
    pub last_name: FieldMode,
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Normalised: starts with `/`, no trailing slash.
    pub prefix: String,
    pub registration: Registration,
    pub native_signin: bool,
    pub password_min_length: usize,
    pub password_max_length: usize,
    pub require_email_verification: bool,
    pub allowed_redirect_hosts: Vec<String>,
    pub fields: ProfileFields,
}

/// `[security]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    pub max_failed_logins: u32,
    pub lockout: Duration,
    /// Failed attempts allowed per client IP in `ip_rate_window`.
    pub ip_rate_limit: u32,
    pub ip_rate_window: Duration,
    /// Resolved from 0 to the number of cores.
    pub hash_concurrency: usize,
    pub hash_queue: usize,
    /// Bearer token that lets a cron job call `/auth/validate`.
    pub validate_token: Option<Secret>,
    /// Audit entries older than this are deleted.
    pub audit_retention: Duration,
}

/// `[headers]`: the names of the identity headers sent upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub user: HeaderName,
    pub email: HeaderName,
    pub name: HeaderName,
    pub groups: HeaderName,
    pub user_id: HeaderName,
}

impl IdentityHeaders {
    /// All configured names, for stripping.
    pub fn all(&self) -> [&HeaderName; 5] {
        [
            &self.user,
            &self.email,
            &self.name,
            &self.groups,
            &self.user_id,
        ]
    }
}

/// `log.format`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

/// A route's access policy.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Public,
    Authenticated,
    Deny,
}

/// Where a route's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The built-in page showing what an upstream would receive.
    Whoami,
    /// An HTTP(S) server.
    Http {
        addr: SocketAddr,
        tls: bool,
        /// Host name for SNI and certificate verification.
        sni: String,
    },
    /// No upstream: the route only answers forward-auth checks.
    None,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub host: HostPattern,
    /// Normalised path prefix without trailing slash ("/" stays "/").
    pub path: String,
    /// Upper-case methods; empty = all.
    pub methods: Vec<http::Method>,
    pub upstream: Upstream,
    pub policy: Policy,
    pub groups: Vec<String>,
    /// Forward the path exactly as sent even when it is not in canonical form (for apps that
    /// need encoded slashes or `;` parameters); the decision still uses the normalised path.
    pub raw_path: bool,
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::one("(file)", format!("cannot read {}: {e}", path.display()))
        })?;
        Config::from_toml(&text)
    }

    /// Parse and validate TOML text. Every problem found is reported, each naming its key.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_string();
            ConfigError::one(&describe_toml_error(&e, text), message)
        })?;
        let mut v = Validator::default();
        let config = v.config(raw);
        match config {
            Some(c) if v.problems.is_empty() => Ok(c),
            _ => Err(ConfigError(v.problems)),
        }
    }

    /// The cookie name as sent on the wire (with `__Host-`/`__Secure-` prefix when Secure).
    pub fn cookie_name(&self) -> String {
        crate::auth::cookie::wire_name(&self.session)
    }
}

/// Best-effort `line N` location for a TOML syntax error.
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].lines().count().max(1);
            format!("line {line}")
        }
        None => "(file)".into(),
    }
}

/// Parse `"90s"`, `"15m"`, `"2h"`, `"7d"` and combinations such as `"1h30m"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// Parse sizes such as `"64KiB"`, `"1MB"`, `"4096"`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = text
        .trim()
        .parse()
        .map_err(|e| format!("invalid size {text:?}: {e}"))?;
    usize::try_from(size.as_u64()).map_err(|_| format!("size {text:?} is too large"))
}

/// Parse `"30/min"` (also `/s`, `/sec`, `/m`, `/h`, `/hour`) into a count and a window.
pub fn parse_rate(text: &str) -> Result<(u32, Duration), String> {
    let (count, unit) = text
        .split_once('/')
        .ok_or_else(|| format!("invalid rate {text:?}: expected e.g. \"30/min\""))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("invalid rate {text:?}: count must be a whole number"))?;
    let window = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        other => parse_duration(other)?,
    };
    if count == 0 || window.is_zero() {
        return Err(format!("invalid rate {text:?}: must be positive"));
    }
    Ok((count, window))
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[derive(Default)]
struct Validator {
    problems: Vec<ConfigProblem>,
}

impl Validator {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn duration(&mut self, key: &str, text: &str) -> Duration {
        match parse_duration(text) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.problem(key, "must be greater than zero");
                Duration::from_secs(1)
            }
            Err(e) => {
                self.problem(key, e);
                Duration::from_secs(1)
            }
        }
    }

    fn header(&mut self, key: &str, text: &str) -> HeaderName {
        match HeaderName::from_bytes(text.trim().as_bytes()) {
            Ok(h) if !text.trim().is_empty() => h,
            _ => {
                self.problem(key, format!("{text:?} is not a valid header name"));
                HeaderName::from_static("x-invalid")
            }
        }
    }

    fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let server = self.server(raw.server);
        let session = self.session(raw.session, &server.public_url);
        let auth = self.auth(raw.auth);
        let security = self.security(raw.security);
        let headers = IdentityHeaders {
            user: self.header("headers.user", &raw.headers.user),
            email: self.header("headers.email", &raw.headers.email),
            name: self.header("headers.name", &raw.headers.name),
            groups: self.header("headers.groups", &raw.headers.groups),
            user_id: self.header("headers.user_id", &raw.headers.user_id),
        };
        let mut seen = std::collections::HashSet::new();
        for h in headers.all() {
            if !seen.insert(crate::proxy::headers::fold_header_name(h.as_str())) {
                self.problem("headers", format!("header {h} is configured twice"));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&raw.log.level).is_err() {
            self.problem(
                "log.level",
                format!("invalid log level {:?}", raw.log.level),
            );
        }
        let log = LogConfig {
            format: raw.log.format,
            level: raw.log.level,
        };
        let smtp = raw.smtp.map(|r| self.smtp(r));
        if auth.require_email_verification && smtp.is_none() {
            self.problem(
                "auth.require_email_verification",
                "needs [smtp] to send the verification mail",
            );
        }
        let oidc = self.oidc(raw.oidc, &server.public_url, &auth.prefix);
        if !auth.native_signin && oidc.is_empty() {
            self.problem(
                "auth.native_signin",
                "false needs at least one [[oidc]] provider to sign in with",
            );
        }
        let mut routes = Vec::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            if let Some(route) = self.route(i, r, &auth.prefix) {
                routes.push(route);
            }
        }
        if raw.storage.path.as_os_str().is_empty() {
            self.problem("storage.path", "must not be empty");
        }
        let metrics = MetricsConfig {
            listen: if raw.metrics.listen.trim().is_empty() {
                None
            } else {
                match raw.metrics.listen.trim().parse::<SocketAddr>() {
                    Ok(a) => {
                        if server.listen.contains(&a)
                            || server.tls.as_ref().is_some_and(|t| t.listen.contains(&a))
                        {
                            self.problem(
                                "metrics.listen",
                                "must differ from the gateway's listeners",
                            );
                        }
                        Some(a)
                    }
                    Err(_) => {
                        self.problem(
                            "metrics.listen",
                            format!("{:?} is not an IP:port address", raw.metrics.listen),
                        );
                        None
                    }
                }
            },
        };
        Some(Config {
            server,
            metrics,
            storage: StorageConfig {
                path: raw.storage.path,
                cache_size: match parse_size(&raw.storage.cache_size) {
                    Ok(n) if n >= 1 << 20 => n,
                    Ok(_) => {
                        self.problem("storage.cache_size", "must be at least 1MiB");
                        1 << 20
                    }
                    Err(e) => {
                        self.problem("storage.cache_size", e);
                        1 << 20
                    }
                },
            },
            session,
            auth,
            security,
            headers,
            log,
            smtp,
            routes,
            oidc,
        })
    }

    fn server(&mut self, raw: RawServer) -> ServerConfig {
        let mut listen = Vec::new();
        for (i, addr) in raw.listen.iter().enumerate() {
            match addr.parse::<SocketAddr>() {
                Ok(a) => listen.push(a),
                Err(_) => self.problem(
                    &format!("server.listen[{i}]"),
                    format!("{addr:?} is not an IP:port address"),
                ),
            }
        }
        let mut tls_listen = Vec::new();
        for (i, addr) in raw.tls_listen.iter().enumerate() {
            match addr.parse::<SocketAddr>() {
                Ok(a) => tls_listen.push(a),
                Err(_) => self.problem(
                    &format!("server.tls_listen[{i}]"),
                    format!("{addr:?} is not an IP:port address"),
                ),
            }
        }
        if raw.listen.is_empty() && raw.tls_listen.is_empty() {
            self.problem(
                "server.listen",
                "at least one listener (listen or tls_listen) is needed",
            );
        }
        let mut all: Vec<SocketAddr> = listen.iter().chain(&tls_listen).copied().collect();
        all.sort();
        if all.windows(2).any(|w| w[0] == w[1]) {
            self.problem("server.tls_listen", "an address is listed twice");
        }
        let tls = if raw.tls_listen.is_empty() {
            if !raw.tls_cert.as_os_str().is_empty() || !raw.tls_key.as_os_str().is_empty() {
                self.problem(
                    "server.tls_cert",
                    "tls_cert and tls_key are used only with tls_listen",
                );
            }
            None
        } else {
            if raw.tls_cert.as_os_str().is_empty() {
                self.problem("server.tls_cert", "tls_listen needs a certificate file");
            }
            if raw.tls_key.as_os_str().is_empty() {
                self.problem("server.tls_key", "tls_listen needs a private key file");
            }
            Some(TlsConfig {
                listen: tls_listen,
                cert: raw.tls_cert,
                key: raw.tls_key,
            })
        };
        let upstream_ca_file =
            (!raw.upstream_ca_file.as_os_str().is_empty()).then_some(raw.upstream_ca_file);
        let public_url = match parse_public_url(&raw.public_url) {
            Ok(u) => u,
            Err(e) => {
                self.problem("server.public_url", e);
                PublicUrl {
                    origin: "http://invalid".into(),
                    https: false,
                    host: "invalid".into(),
                }
            }
        };
        let mut trusted_proxies = Vec::new();
        for (i, cidr) in raw.trusted_proxies.iter().enumerate() {
            match parse_cidr(cidr) {
                Ok(net) => trusted_proxies.push(net),
                Err(e) => self.problem(&format!("server.trusted_proxies[{i}]"), e),
            }
        }
        let max_body = match parse_size(&raw.max_body) {
            Ok(0) => {
                self.problem("server.max_body", "must be greater than zero");
                1
            }
            Ok(n) => n,
            Err(e) => {
                self.problem("server.max_body", e);
                1
            }
        };
        ServerConfig {
            listen,
            tls,
            upstream_ca_file,
            public_url,
            threads: if raw.threads == 0 {
                cores()
            } else {
                raw.threads
            },
            trusted_proxies,
            max_body,
            max_header_size: match parse_size(&raw.max_header_size) {
                Ok(n) if n >= 1024 => n,
                Ok(_) => {
                    self.problem("server.max_header_size", "must be at least 1KiB");
                    1024
                }
                Err(e) => {
                    self.problem("server.max_header_size", e);
                    1024
                }
            },
            shutdown_timeout: self.duration("server.shutdown_timeout", &raw.shutdown_timeout),
            upstream_connect_timeout: self.duration(
                "server.upstream_connect_timeout",
                &raw.upstream_connect_timeout,
            ),
            upstream_timeout: self.duration("server.upstream_timeout", &raw.upstream_timeout),
        }
    }

    fn session(&mut self, raw: RawSession, public_url: &PublicUrl) -> SessionConfig {
        let name_ok = !raw.cookie_name.is_empty()
            && raw
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            && !raw.cookie_name.starts_with("__");
        if !name_ok {
            self.problem(
                "session.cookie_name",
                "must be non-empty, of letters, digits, '_', '-', '.', and not start with \"__\"",
            );
        }
        let domain = raw
            .cookie_domain
            .trim()
            .trim_start_matches('.')
            .to_lowercase();
        let cookie_domain = if domain.is_empty() {
            None
        } else {
            if !domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                || !domain.contains('.')
            {
                self.problem(
                    "session.cookie_domain",
                    format!(
                        "{:?} is not a domain such as \"example.com\"",
                        raw.cookie_domain
                    ),
                );
            } else if public_url.host != domain && !public_url.host.ends_with(&format!(".{domain}"))
            {
                self.problem(
                    "session.cookie_domain",
                    format!(
                        "public_url's host {:?} is not within {domain:?}; browsers would refuse the cookie",
                        public_url.host
                    ),
                );
            }
            Some(domain)
        };
        let secure = match raw.secure {
            RawSecure::Bool(b) => b,
            RawSecure::Word(SecureWord::Auto) => public_url.https,
        };
        if raw.same_site == SameSite::None && !secure {
            self.problem(
                "session.same_site",
                "\"none\" needs a Secure cookie (secure = true, or an https public_url)",
            );
        }
        let idle_timeout = self.duration("session.idle_timeout", &raw.idle_timeout);
        let lifetime = self.duration("session.lifetime", &raw.lifetime);
        let remember_me_lifetime =
            self.duration("session.remember_me_lifetime", &raw.remember_me_lifetime);
        if raw.max_per_user == 0 {
            self.problem("session.max_per_user", "must be at least 1");
        }
        SessionConfig {
            max_per_user: raw.max_per_user.max(1),
            cookie_name: raw.cookie_name,
            cookie_domain,
            secure,
            same_site: raw.same_site,
            idle_timeout,
            lifetime,
            remember_me_lifetime,
            bearer: raw.bearer,
        }
    }

    fn auth(&mut self, raw: RawAuth) -> AuthConfig {
        let prefix = raw.prefix.trim_end_matches('/').to_string();
        let prefix_ok = prefix.starts_with('/')
            && prefix.len() > 1
            && normalise_path(&prefix).as_deref() == Ok(prefix.as_str());
        if !prefix_ok {
            self.problem(
                "auth.prefix",
                "must be an absolute, normalised path such as \"/auth\" (not \"/\")",
            );
        }
        let registration = match Registration::parse(&raw.registration) {
            Some(r) => r,
            None => {
                self.problem(
                    "auth.registration",
                    format!(
                        "{:?} is not one of \"open\", \"approval\", \"invite\", \"closed\"",
                        raw.registration
                    ),
                );
                Registration::Closed
            }
        };
        if raw.password_min_length < 1 {
            self.problem("auth.password_min_length", "must be at least 1");
        }
        if raw.password_max_length < raw.password_min_length || raw.password_max_length > 4096 {
            self.problem(
                "auth.password_max_length",
                "must be at least password_min_length and at most 4096",
            );
        }
        let mut allowed_redirect_hosts = Vec::new();
        for (i, host) in raw.allowed_redirect_hosts.iter().enumerate() {
            let h = host.trim().trim_end_matches('.').to_lowercase();
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                self.problem(
                    &format!("auth.allowed_redirect_hosts[{i}]"),
                    format!("{host:?} is not a host name"),
                );
            } else {
                allowed_redirect_hosts.push(h);
            }
        }
        AuthConfig {
            prefix,
            registration,
            native_signin: raw.native_signin,
            password_min_length: raw.password_min_length,
            password_max_length: raw.password_max_length,
            require_email_verification: raw.require_email_verification,
            allowed_redirect_hosts,
            fields: ProfileFields {
                username: raw.fields.username,
                full_name: raw.fields.full_name,
                first_name: raw.fields.first_name,
                last_name: raw.fields.last_name,
            },
        }
    }

    fn security(&mut self, raw: RawSecurity) -> SecurityConfig {
        if raw.max_failed_logins == 0 {
            self.problem("security.max_failed_logins", "must be at least 1");
        }
        let (ip_rate_limit, ip_rate_window) = match parse_rate(&raw.ip_rate_limit) {
            Ok(r) => r,
            Err(e) => {
                self.problem("security.ip_rate_limit", e);
                (1, Duration::from_secs(60))
            }
        };
        SecurityConfig {
            max_failed_logins: raw.max_failed_logins,
            lockout: self.duration("security.lockout", &raw.lockout),
            ip_rate_limit,
            ip_rate_window,
            hash_concurrency: if raw.hash_concurrency == 0 {
                cores()
            } else {
                raw.hash_concurrency
            },
            hash_queue: raw.hash_queue,
            validate_token: self.secret(
                "security.validate_token",
                &raw.validate_token,
                &raw.validate_token_file,
                "AUTHGATE_VALIDATE_TOKEN",
            ),
            audit_retention: self.duration("security.audit_retention", &raw.audit_retention),
        }
    }

    /// A secret from (in order) the environment variable, the `_file` key, or the inline key.
    fn secret(&mut self, key: &str, inline: &str, file: &str, env: &str) -> Option<Secret> {
        if let Ok(v) = std::env::var(env) {
            if !v.is_empty() {
                return Some(Secret(v));
            }
        }
        if !file.is_empty() {
            return match std::fs::read_to_string(file) {
                Ok(v) if !v.trim().is_empty() => {
                    Some(Secret(v.trim_end_matches(['\r', '\n']).to_string()))
                }
                Ok(_) => {
                    self.problem(&format!("{key}_file"), format!("{file} is empty"));
                    None
                }
                Err(e) => {
                    self.problem(&format!("{key}_file"), format!("cannot read {file}: {e}"));
                    None
                }
            };
        }
        (!inline.is_empty()).then(|| Secret(inline.to_string()))
    }

    fn smtp(&mut self, raw: RawSmtp) -> SmtpConfig {
        if raw.host.trim().is_empty() {
            self.problem("smtp.host", "must not be empty");
        }
        if raw.from.parse::<lettre::message::Mailbox>().is_err() {
            self.problem(
                "smtp.from",
                format!(
                    "{:?} is not an address such as \"authgate <no-reply@example.com>\"",
                    raw.from
                ),
            );
        }
        let port = raw.port.unwrap_or(match raw.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        let password = self.secret(
            "smtp.password",
            &raw.password,
            &raw.password_file,
            "AUTHGATE_SMTP_PASSWORD",
        );
        if password.is_some() && raw.username.is_empty() {
            self.problem("smtp.username", "a password is set but no username");
        }
        SmtpConfig {
            host: raw.host.trim().to_string(),
            port,
            tls: raw.tls,
            username: raw.username,
            password,
            from: raw.from,
            timeout: self.duration("smtp.timeout", &raw.timeout),
        }
    }

    fn route(&mut self, i: usize, raw: RawRoute, prefix: &str) -> Option<Route> {
        let key = |k: &str| format!("routes[{i}].{k}");
        let host = match HostPattern::parse(&raw.host) {
            Ok(h) => h,
            Err(e) => {
                self.problem(&key("host"), e);
                return None;
            }
        };
        let path = match normalise_path(&raw.path) {
            Ok(p) if raw.path.starts_with('/') => p,
            _ => {
                self.problem(
                    &key("path"),
                    format!(
                        "{:?} is not an absolute path such as \"/\" or \"/api\"",
                        raw.path
                    ),
                );
                return None;
            }
        };
        if path == prefix || path.starts_with(&format!("{prefix}/")) {
            self.problem(
                &key("path"),
                format!(
                    "{path:?} lies under auth.prefix {prefix:?}, which the gateway serves itself"
                ),
            );
        }
        let mut methods = Vec::new();
        for m in &raw.methods {
            match http::Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes()) {
                Ok(method) => methods.push(method),
                Err(_) => self.problem(&key("methods"), format!("{m:?} is not an HTTP method")),
            }
        }
        // Without an upstream a route only answers forward-auth checks (404 when proxied).
        let upstream = match &raw.upstream {
            None => Upstream::None,
            Some(text) => match parse_upstream(text) {
                Ok(u) => u,
                Err(e) => {
                    self.problem(&key("upstream"), e);
                    Upstream::None
                }
            },
        };
        let groups: Vec<String> = raw.groups.iter().map(|g| g.trim().to_string()).collect();
        if groups.iter().any(|g| g.is_empty() || g.contains(',')) {
            self.problem(
                &key("groups"),
                "group names must be non-empty and contain no comma",
            );
        }
        if !groups.is_empty() && raw.policy != Policy::Authenticated {
            self.problem(
                &key("groups"),
                "only meaningful with policy = \"authenticated\"",
            );
        }
        Some(Route {
            host,
            path,
            methods,
            upstream,
            policy: raw.policy,
            groups,
            raw_path: raw.raw_path,
        })
    }
}

fn parse_public_url(text: &str) -> Result<PublicUrl, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        other => return Err(format!("scheme {other:?} is not http or https")),
    };
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(
            "must be an origin only, such as \"https://auth.example.com\" (no path)".into(),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    let host = url
        .host_str()
        .ok_or_else(|| "has no host".to_string())?
        .trim_end_matches('.')
        .to_lowercase();
    let origin = url.origin().ascii_serialization();
    Ok(PublicUrl {
        origin,
        https,
        host,
    })
}

fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    t.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{text:?} is not a CIDR such as \"10.0.0.0/8\" or an IP address"))
}

/// Parse a route's `upstream`: `"whoami"`, `"host:port"`, `"http://host:port"`, `"https://host:port"`.
fn parse_upstream(text: &str) -> Result<Upstream, String> {
    let t = text.trim();
    if t == "whoami" {
        return Ok(Upstream::Whoami);
    }
    let (tls, rest) = if let Some(r) = t.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = t.strip_prefix("http://") {
        (false, r)
    } else {
        (false, t)
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') || rest.contains('@') || rest.is_empty() {
        return Err(format!(
            "{text:?} must be \"whoami\" or host:port, http://host:port, https://host:port (no path)"
        ));
    }
    let with_port = if has_port(rest) {
        rest.to_string()
    } else {
        format!("{rest}:{}", if tls { 443 } else { 80 })
    };
    let host = with_port
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .unwrap_or_default();
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {with_port:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{with_port:?} resolves to no address"))?;
    Ok(Upstream::Http {
        addr,
        tls,
        sni: host,
    })
}

fn has_port(hostport: &str) -> bool {
    if hostport.starts_with('[') {
        return hostport.contains("]:");
    }
    hostport.matches(':').count() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Ok(_) => vec![],
            Err(e) => e.0.into_iter().map(|p| p.key).collect(),
        }
    }

    #[test]
    fn empty_file_gives_all_defaults() {
        let c = Config::from_toml("").expect("defaults are valid");
        assert_eq!(
            c.server.listen,
            vec!["127.0.0.1:8080".parse().expect("addr")]
        );
        assert_eq!(c.server.public_url.origin, "http://127.0.0.1:8080");
        assert_eq!(c.server.max_body, 64 * 1024);
        assert_eq!(c.server.shutdown_timeout, Duration::from_secs(5));
        assert!(c.server.threads >= 1);
        assert_eq!(c.session.cookie_name, "authgate_session");
        assert!(!c.session.secure, "auto with an http public_url");
        assert_eq!(c.session.idle_timeout, Duration::from_secs(7200));
        assert_eq!(c.session.lifetime, Duration::from_secs(7 * 86400));
        assert_eq!(
            c.session.remember_me_lifetime,
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(c.auth.prefix, "/auth");
        assert_eq!(c.auth.registration, Registration::Open);
        assert_eq!(c.auth.fields.username, FieldMode::Optional);
        assert_eq!(c.auth.fields.first_name, FieldMode::Off);
        assert_eq!(c.security.max_failed_logins, 5);
        assert_eq!(c.security.lockout, Duration::from_secs(900));
        assert_eq!(
            (c.security.ip_rate_limit, c.security.ip_rate_window),
            (30, Duration::from_secs(60))
        );
        assert_eq!(c.security.audit_retention, Duration::from_secs(365 * 86400));
        assert_eq!(c.headers.user.as_str(), "remote-user");
        assert_eq!(c.storage.path, PathBuf::from("data/authgate.redb"));
        assert!(c.routes.is_empty());
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let e = Config::from_toml("[server]\nlisten = [\"127.0.0.1:1\"]\nlistn = 3\n")
            .expect_err("unknown key");
        assert!(e.to_string().contains("listn"), "{e}");
        let e = Config::from_toml("[sesion]\n").expect_err("unknown section");
        assert!(e.to_string().contains("sesion"), "{e}");
        let e = Config::from_toml(
            "[[routes]]\npolicy = \"public\"\nupstream = \"whoami\"\nupstrem = 1\n",
        )
        .expect_err("unknown route key");
        assert!(e.to_string().contains("upstrem"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let keys = problems(
            r#"
            [server]
            listen = ["nope"]
            public_url = "ftp://x"
            max_body = "lots"
            [session]
            idle_timeout = "soon"
            [security]
            ip_rate_limit = "many"
            audit_retention = "forever"
            [headers]
            user = "bad header"
            [[routes]]
            path = "relative"
            policy = "public"
            upstream = "whoami"
            "#,
        );
        for k in [
            "server.listen[0]",
            "server.public_url",
            "server.max_body",
            "session.idle_timeout",
            "security.ip_rate_limit",
            "security.audit_retention",
            "headers.user",
            "routes[0].path",
        ] {
            assert!(keys.contains(&k.to_string()), "{k} missing from {keys:?}");
        }
    }

    #[test]
    fn durations_sizes_and_rates_parse() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("big").is_err());
        assert_eq!(parse_rate("30/min"), Ok((30, Duration::from_secs(60))));
        assert_eq!(parse_rate("5/s"), Ok((5, Duration::from_secs(1))));
        assert!(parse_rate("0/min").is_err());
        assert!(parse_rate("30").is_err());
    }

    #[test]
    fn secure_auto_follows_public_url_and_can_be_forced() {
        let c =
            Config::from_toml("[server]\npublic_url = \"https://auth.example.com\"\n").expect("ok");
        assert!(c.session.secure);
        assert_eq!(c.server.public_url.host, "auth.example.com");
        let c = Config::from_toml("[session]\nsecure = true\n").expect("ok");
        assert!(c.session.secure);
        let c = Config::from_toml(
            "[server]\npublic_url = \"https://a.example.com\"\n[session]\nsecure = false\n",
        )
        .expect("ok");
        assert!(!c.session.secure);
        assert!(!problems("[session]\nsecure = \"sometimes\"\n").is_empty());
    }

    #[test]
    fn routes_validate_upstreams_and_paths() {
        let c = Config::from_toml(
            r#"
            [[routes]]
            host = "App.Example.com."
            path = "/api/"
            methods = ["get", "POST"]
            upstream = "http://127.0.0.1:3000"
            policy = "authenticated"
            groups = ["admins"]
            [[routes]]
            path = "/admin"
            policy = "deny"
            [[routes]]
            upstream = "whoami"
            policy = "public"
            "#,
        )
        .expect("valid routes");
        assert_eq!(c.routes.len(), 3);
        assert_eq!(c.routes[0].path, "/api");
        assert_eq!(
            c.routes[0].methods,
            vec![http::Method::GET, http::Method::POST]
        );
        assert_eq!(
            c.routes[0].upstream,
            Upstream::Http {
                addr: "127.0.0.1:3000".parse().expect("addr"),
                tls: false,
                sni: "127.0.0.1".into()
            }
        );
        assert_eq!(c.routes[1].upstream, Upstream::None);
        assert_eq!(c.routes[2].upstream, Upstream::Whoami);
        assert_eq!(c.routes[2].path, "/");

        assert!(
            problems("[[routes]]\npolicy = \"public\"\n").is_empty(),
            "a forward-auth-only route needs no upstream"
        );
        assert!(problems(
            "[[routes]]\npath = \"/auth/x\"\npolicy = \"public\"\nupstream = \"whoami\"\n"
        )
        .contains(&"routes[0].path".into()));
        assert!(
            problems("[[routes]]\npolicy = \"open\"\nupstream = \"whoami\"\n")
                .iter()
                .any(|k| k.starts_with("line"))
        );
        assert!(
            problems("[[routes]]\npolicy = \"public\"\nupstream = \"http://127.0.0.1:1/x\"\n")
                .contains(&"routes[0].upstream".into())
        );
    }

    #[test]
    fn cookie_domain_must_cover_public_url() {
        assert!(problems(
            "[server]\npublic_url = \"https://auth.example.com\"\n[session]\ncookie_domain = \"example.com\"\n"
        )
        .is_empty());
        assert!(problems(
            "[server]\npublic_url = \"https://auth.example.org\"\n[session]\ncookie_domain = \"example.com\"\n"
        )
        .contains(&"session.cookie_domain".into()));
    }

    #[test]
    fn duplicate_identity_headers_are_refused() {
        assert!(
            problems("[headers]\nuser = \"X-User\"\nemail = \"x_user\"\n")
                .contains(&"headers".into())
        );
    }
}
