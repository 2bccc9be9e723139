//! The validated configuration: what the rest of the program reads. Built only by
//! [`super::validate`], so every value here has been checked and every default resolved.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::oidc::OidcProviderConfig;
use super::secrets::Secret;
use crate::policy::headers::IdentityHeaders;
use crate::policy::routes::Route;

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
    pub ui: UiConfig,
}

/// `ui.title` when the file has none.
pub const DEFAULT_TITLE: &str = "authgate";

/// `[ui]`: the portal's branding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiConfig {
    /// The site's name: page titles ("Sign in · Title"), headings, mail subjects. Default "authgate".
    pub title: String,
    /// An image file's content, served at `{prefix}/assets/logo`.
    pub logo: Option<UiAsset>,
    /// Accent colour (buttons, links, focus), validated `#rgb` / `#rrggbb`.
    pub accent_color: Option<Rgb>,
    /// An operator stylesheet appended after the built-in one (UTF-8 text).
    pub custom_css: Option<String>,
    /// Plain text shown under every form (e.g. who to ask for help).
    pub help_text: Option<String>,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            title: DEFAULT_TITLE.into(),
            logo: None,
            accent_color: None,
            custom_css: None,
            help_text: None,
        }
    }
}

/// A file read at start-up and served as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiAsset {
    /// The file's content.
    pub bytes: bytes::Bytes,
    /// Its media type, from the file name's extension.
    pub content_type: &'static str,
}

/// A colour as red, green and blue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// CSS notation, `#rrggbb` in lower case.
    pub fn hex(&self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
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
    /// Envoy's gRPC `ext_authz` (plain-text HTTP/2) on these addresses.
    pub ext_authz_grpc_listen: Vec<SocketAddr>,
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
    /// The redb file (`backend = "redb"`).
    pub path: PathBuf,
    /// The database's page cache in bytes (sessions in use are also kept in memory apart).
    pub cache_size: usize,
    /// `Some` with `backend = "postgres"`: the database several instances share.
    pub postgres: Option<PostgresConfig>,
}

impl StorageConfig {
    /// The store this names.
    pub fn location(&self) -> crate::store::Location<'_> {
        match &self.postgres {
            Some(pg) => crate::store::Location::Postgres {
                url: &pg.url.0,
                pool_size: pg.pool_size,
            },
            None => crate::store::Location::Redb {
                path: &self.path,
                cache_bytes: self.cache_size,
            },
        }
    }
}

/// `[storage]` with `backend = "postgres"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// A `postgres://` URL (it may hold a password).
    pub url: Secret,
    /// Connections an instance keeps to the database at most.
    pub pool_size: usize,
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
    /// The header that may carry an API token (`None`: only `Authorization`).
    pub token_header: Option<http::HeaderName>,
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
    /// Who must have a second factor.
    pub second_factor: SecondFactorPolicy,
    pub fields: ProfileFields,
    pub passkeys: PasskeySupport,
}

/// `[auth.passkeys]`: whether passkeys (WebAuthn) can work here, and with which relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasskeySupport {
    On(PasskeyConfig),
    /// Off, with the reason `check-config` shows (only ever for values derived from
    /// `public_url`; explicit keys that cannot work are problems instead).
    Off {
        reason: String,
    },
}

impl PasskeySupport {
    /// The relying party when passkeys are on.
    pub fn config(&self) -> Option<&PasskeyConfig> {
        match self {
            PasskeySupport::On(c) => Some(c),
            PasskeySupport::Off { .. } => None,
        }
    }
}

/// The WebAuthn relying party: checked to be a domain that covers every origin, each origin a
/// secure context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyConfig {
    /// A domain (never an IP address), lower-case.
    pub rp_id: String,
    /// The name authenticators show.
    pub rp_name: String,
    /// `scheme://host[:port]`: https, or http on localhost.
    pub origins: Vec<String>,
}

/// `auth.second_factor`: who must have a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorPolicy {
    /// Whoever enrols one is asked for it.
    Optional,
    /// Everyone: without one a session may only enrol.
    Required,
    /// Owners and admins.
    RequiredForAdmins,
}

impl SecondFactorPolicy {
    /// The policy a word names.
    pub fn parse(word: &str) -> Option<SecondFactorPolicy> {
        Some(match word {
            "optional" => SecondFactorPolicy::Optional,
            "required" => SecondFactorPolicy::Required,
            "required_for_admins" => SecondFactorPolicy::RequiredForAdmins,
            _ => return None,
        })
    }
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
    /// The key that seals second-factor secrets; `None`: `encryption.key` beside the database.
    pub encryption_key_file: Option<std::path::PathBuf>,
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
