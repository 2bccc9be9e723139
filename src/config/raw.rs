//! The configuration file as written: serde structs that reject unknown keys, with every
//! key's default. [`super::validate`] turns them into the [`super::Config`] the program uses.

use std::path::PathBuf;

use serde::Deserialize;

use super::model::{FieldMode, LogFormat, SameSite, SmtpTls, DEFAULT_TITLE};
use super::oidc::RawOidc;
use crate::policy::routes::RoutePolicy;

// Every struct rejects unknown keys; every key has a default except what a route needs.

/// The whole file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawConfig {
    pub(super) server: RawServer,
    pub(super) storage: RawStorage,
    pub(super) session: RawSession,
    pub(super) auth: RawAuth,
    pub(super) security: RawSecurity,
    pub(super) headers: RawHeaders,
    pub(super) log: RawLog,
    pub(super) smtp: Option<RawSmtp>,
    pub(super) metrics: RawMetrics,
    pub(super) routes: Vec<RawRoute>,
    pub(super) oidc: Vec<RawOidc>,
    pub(super) ui: RawUi,
}

/// `[ui]`: empty means not set (the built-in look).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawUi {
    pub(super) title: String,
    pub(super) logo: PathBuf,
    pub(super) accent_color: String,
    pub(super) custom_css: PathBuf,
    pub(super) help_text: String,
}

impl Default for RawUi {
    fn default() -> Self {
        RawUi {
            title: DEFAULT_TITLE.into(),
            logo: PathBuf::new(),
            accent_color: String::new(),
            custom_css: PathBuf::new(),
            help_text: String::new(),
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawMetrics {
    pub(super) listen: String,
}

/// `[smtp]`: absent means no mail is sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub(super) host: String,
    #[serde(default)]
    pub(super) port: Option<u16>,
    #[serde(default = "starttls")]
    pub(super) tls: SmtpTls,
    #[serde(default)]
    pub(super) username: String,
    #[serde(default)]
    pub(super) password: String,
    #[serde(default)]
    pub(super) password_file: String,
    pub(super) from: String,
    #[serde(default = "ten_seconds")]
    pub(super) timeout: String,
}

fn starttls() -> SmtpTls {
    SmtpTls::Starttls
}
fn ten_seconds() -> String {
    "10s".into()
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawServer {
    pub(super) listen: Vec<String>,
    pub(super) tls_listen: Vec<String>,
    pub(super) ext_authz_grpc_listen: Vec<String>,
    pub(super) tls_cert: PathBuf,
    pub(super) tls_key: PathBuf,
    pub(super) upstream_ca_file: PathBuf,
    pub(super) public_url: String,
    pub(super) threads: usize,
    pub(super) trusted_proxies: Vec<String>,
    pub(super) max_body: String,
    pub(super) max_header_size: String,
    pub(super) shutdown_timeout: String,
    pub(super) upstream_connect_timeout: String,
    pub(super) upstream_timeout: String,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: vec!["127.0.0.1:8080".into()],
            tls_listen: Vec::new(),
            ext_authz_grpc_listen: Vec::new(),
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

/// `[storage]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStorage {
    pub(super) backend: String,
    pub(super) path: PathBuf,
    pub(super) cache_size: String,
    pub(super) url: String,
    pub(super) url_file: String,
    pub(super) pool_size: usize,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            backend: "redb".into(),
            path: PathBuf::from("data/authgate.redb"),
            cache_size: "64MiB".into(),
            url: String::new(),
            url_file: String::new(),
            pool_size: 16,
        }
    }
}

/// `secure = true | false | "auto"`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(untagged)]
pub(super) enum RawSecure {
    Bool(bool),
    Word(SecureWord),
}

/// The one word `session.secure` takes besides a boolean.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum SecureWord {
    Auto,
}

/// `[session]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSession {
    pub(super) cookie_name: String,
    pub(super) cookie_domain: String,
    pub(super) secure: RawSecure,
    pub(super) same_site: SameSite,
    pub(super) idle_timeout: String,
    pub(super) lifetime: String,
    pub(super) remember_me_lifetime: String,
    pub(super) bearer: bool,
    pub(super) max_per_user: usize,
    pub(super) token_header: String,
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
            token_header: "X-Authgate-Token".into(),
        }
    }
}

/// `[auth]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAuth {
    pub(super) prefix: String,
    pub(super) registration: String,
    pub(super) native_signin: bool,
    pub(super) password_min_length: usize,
    pub(super) password_max_length: usize,
    pub(super) require_email_verification: bool,
    pub(super) allowed_redirect_hosts: Vec<String>,
    pub(super) second_factor: String,
    pub(super) fields: RawFields,
    pub(super) passkeys: RawPasskeys,
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
            second_factor: "optional".into(),
            fields: RawFields::default(),
            passkeys: RawPasskeys::default(),
        }
    }
}

/// `[auth.passkeys]`: empty means derived (from `public_url`, and `[ui] title` for the name).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawPasskeys {
    pub(super) rp_id: String,
    pub(super) rp_name: String,
    pub(super) origins: Vec<String>,
}

/// `[auth.fields]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawFields {
    pub(super) username: FieldMode,
    pub(super) full_name: FieldMode,
    pub(super) first_name: FieldMode,
    pub(super) last_name: FieldMode,
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

/// `[security]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSecurity {
    pub(super) max_failed_logins: u32,
    pub(super) lockout: String,
    pub(super) ip_rate_limit: String,
    pub(super) hash_concurrency: usize,
    pub(super) hash_queue: usize,
    pub(super) validate_token: String,
    pub(super) validate_token_file: String,
    pub(super) audit_retention: String,
    pub(super) encryption_key_file: String,
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
            encryption_key_file: String::new(),
        }
    }
}

/// `[headers]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawHeaders {
    pub(super) user: String,
    pub(super) email: String,
    pub(super) name: String,
    pub(super) groups: String,
    pub(super) user_id: String,
    pub(super) auth_methods: String,
}

impl Default for RawHeaders {
    fn default() -> Self {
        RawHeaders {
            user: "Remote-User".into(),
            email: "Remote-Email".into(),
            name: "Remote-Name".into(),
            groups: "Remote-Groups".into(),
            user_id: "Remote-User-Id".into(),
            auth_methods: "Remote-Auth-Methods".into(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLog {
    pub(super) format: LogFormat,
    pub(super) level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// One `[[routes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    #[serde(default = "star")]
    pub(super) host: String,
    #[serde(default = "slash")]
    pub(super) path: String,
    #[serde(default)]
    pub(super) methods: Vec<String>,
    #[serde(default)]
    pub(super) upstream: Option<String>,
    pub(super) policy: RoutePolicy,
    #[serde(default)]
    pub(super) groups: Vec<String>,
    #[serde(default)]
    pub(super) raw_path: bool,
    #[serde(default)]
    pub(super) second_factor: bool,
    #[serde(default = "yes")]
    pub(super) tokens: bool,
}

fn yes() -> bool {
    true
}

fn star() -> String {
    "*".into()
}
fn slash() -> String {
    "/".into()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::config::{Config, FieldMode, Registration};

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
        assert_eq!(c.ui, crate::config::UiConfig::default());
        assert_eq!(c.ui.title, "authgate");
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
        let e = Config::from_toml("[ui]\ncolor = \"#fff\"\n").expect_err("unknown ui key");
        assert!(e.to_string().contains("color"), "{e}");
    }
}
