//! The [`Validator`]: turns the raw file ([`super::raw`]) into the validated [`Config`]
//! ([`super::model`]), resolving defaults and naming the key of every problem it finds.

use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderName;

use super::model::{
    AuthConfig, Config, LogConfig, MetricsConfig, ProfileFields, PublicUrl, Registration, SameSite,
    SecondFactorPolicy, SecurityConfig, ServerConfig, SessionConfig, SmtpConfig, SmtpTls,
    TlsConfig,
};
use super::raw::{
    RawAuth, RawConfig, RawRoute, RawSecure, RawSecurity, RawServer, RawSession, RawSmtp,
    SecureWord,
};
use super::{
    parse_cidr, parse_duration, parse_public_url, parse_rate, parse_size, parse_upstream,
    ConfigProblem,
};
use crate::policy::headers::{fold_header_name, IdentityHeaders};
use crate::policy::host::HostPattern;
use crate::policy::path::normalise_path;
use crate::policy::routes::{Route, RoutePolicy, Upstream};

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Collects every problem while building the [`Config`], so one run reports them all.
#[derive(Default)]
pub(super) struct Validator {
    pub(super) problems: Vec<ConfigProblem>,
}

impl Validator {
    /// Note a problem with `key`.
    pub(super) fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// A positive duration (a problem, and one second, otherwise).
    pub(super) fn duration(&mut self, key: &str, text: &str) -> Duration {
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

    /// The whole configuration; `None` or problems when it is not valid.
    pub(super) fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let server = self.server(raw.server);
        let session = self.session(raw.session, &server.public_url);
        // The passkeys' name defaults to the title as `ui()` keeps it (trimmed).
        let auth = self.auth(raw.auth, &server.public_url, raw.ui.title.trim());
        let security = self.security(raw.security);
        let headers = IdentityHeaders {
            user: self.header("headers.user", &raw.headers.user),
            email: self.header("headers.email", &raw.headers.email),
            name: self.header("headers.name", &raw.headers.name),
            groups: self.header("headers.groups", &raw.headers.groups),
            user_id: self.header("headers.user_id", &raw.headers.user_id),
            auth_methods: self.header("headers.auth_methods", &raw.headers.auth_methods),
        };
        let mut seen = std::collections::HashSet::new();
        for h in headers.all() {
            if !seen.insert(fold_header_name(h.as_str())) {
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
        let ui = self.ui(raw.ui);
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
        let storage = self.storage(raw.storage);
        if storage.postgres.is_some() && security.encryption_key_file.is_none() {
            self.problem(
                "security.encryption_key_file",
                "backend = \"postgres\" needs it: every instance must seal second factors with the same key (copy one file to each)",
            );
        }
        let metrics = MetricsConfig {
            listen: if raw.metrics.listen.trim().is_empty() {
                None
            } else {
                match raw.metrics.listen.trim().parse::<SocketAddr>() {
                    Ok(a) => {
                        if server.listen.contains(&a)
                            || server.ext_authz_grpc_listen.contains(&a)
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
            storage,
            session,
            auth,
            security,
            headers,
            log,
            smtp,
            routes,
            oidc,
            ui,
        })
    }

    /// Each entry of the list `key` as an `IP:port` address; a problem for each that is not.
    fn addresses(&mut self, key: &str, list: &[String]) -> Vec<SocketAddr> {
        let mut out = Vec::with_capacity(list.len());
        for (i, addr) in list.iter().enumerate() {
            match addr.parse::<SocketAddr>() {
                Ok(a) => out.push(a),
                Err(_) => self.problem(
                    &format!("{key}[{i}]"),
                    format!("{addr:?} is not an IP:port address"),
                ),
            }
        }
        out
    }

    fn server(&mut self, raw: RawServer) -> ServerConfig {
        let listen = self.addresses("server.listen", &raw.listen);
        let tls_listen = self.addresses("server.tls_listen", &raw.tls_listen);
        let ext_authz_grpc_listen =
            self.addresses("server.ext_authz_grpc_listen", &raw.ext_authz_grpc_listen);
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
        all.extend(&ext_authz_grpc_listen);
        all.sort();
        if all.windows(2).any(|w| w[0] == w[1]) {
            self.problem(
                "server.ext_authz_grpc_listen",
                "must differ from each other and from the gateway's listeners",
            );
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
            ext_authz_grpc_listen,
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
        let token_header = self.token_header(raw.token_header.trim());
        SessionConfig {
            token_header,
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

    fn auth(&mut self, raw: RawAuth, public_url: &PublicUrl, title: &str) -> AuthConfig {
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
            second_factor: SecondFactorPolicy::parse(raw.second_factor.trim()).unwrap_or_else(
                || {
                    self.problem(
                        "auth.second_factor",
                        "must be optional, required or required_for_admins",
                    );
                    SecondFactorPolicy::Optional
                },
            ),
            fields: ProfileFields {
                username: raw.fields.username,
                full_name: raw.fields.full_name,
                first_name: raw.fields.first_name,
                last_name: raw.fields.last_name,
            },
            passkeys: self.passkeys(raw.passkeys, public_url, title),
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
            encryption_key_file: Some(raw.encryption_key_file.trim())
                .filter(|f| !f.is_empty())
                .map(std::path::PathBuf::from),
        }
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
        if !groups.is_empty() && raw.policy != RoutePolicy::Authenticated {
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
            second_factor: raw.second_factor,
            tokens: raw.tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::policy::routes::{Target, Upstream};

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Ok(_) => vec![],
            Err(e) => e.0.into_iter().map(|p| p.key).collect(),
        }
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
                target: Target::Addr("127.0.0.1:3000".parse().expect("addr")),
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
