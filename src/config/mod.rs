//! The configuration file, in stages: `raw.rs` is the file's layout as serde structs (unknown
//! keys rejected, defaults filled in), `validate.rs` turns it into the validated [`Config`]
//! of `model.rs` that the rest of the program uses, `secrets.rs` reads secret keys, `oidc.rs`
//! is the `[[oidc]]` section, `ui.rs` checks `[ui]` and reads its files, `passkeys.rs` decides
//! `[auth.passkeys]`. This file has the entry points ([`Config::load`], [`Config::from_toml`]),
//! the notices, the error types, and the parsers of durations, sizes, rates, URLs, networks,
//! upstreams and colours.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;

use crate::policy::routes::{Target, Upstream};

mod model;
mod oidc;
mod passkeys;
mod raw;
mod secrets;
mod storage;
mod token_header;
mod ui;
mod validate;

pub use model::{
    AuthConfig, Config, FieldMode, LogConfig, LogFormat, MetricsConfig, PasskeyConfig,
    PasskeySupport, PostgresConfig, ProfileFields, PublicUrl, Registration, Rgb, SameSite,
    SecondFactorPolicy, SecurityConfig, ServerConfig, SessionConfig, SmtpConfig, SmtpTls,
    StorageConfig, TlsConfig, UiAsset, UiConfig,
};
pub use oidc::{secret_env_name, ClaimNames, OidcProviderConfig, ProviderKind, TokenAuth};
pub use secrets::Secret;
pub use storage::STORAGE_URL_ENV;

use raw::RawConfig;
use validate::Validator;

/// Where `serve` and `check-config` look when no `--config` is given.
pub const DEFAULT_PATHS: [&str; 2] = ["config.toml", "/etc/authgate/config.toml"];

/// A problem in the configuration, naming the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key, such as `server.listen[0]`, or `line N` for a syntax error.
    pub key: String,
    /// What is wrong with it.
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
    /// An error with a single problem.
    fn one(key: &str, message: impl Into<String>) -> Self {
        ConfigError(vec![ConfigProblem {
            key: key.to_string(),
            message: message.into(),
        }])
    }
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
}

impl Config {
    /// What `check-config` mentions without refusing the file: features that are off, and why.
    pub fn notices(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let PasskeySupport::Off { reason } = &self.auth.passkeys {
            out.push(format!("auth.passkeys: {reason}"));
        }
        out
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

/// Parse a CSS hex colour, `#rgb` or `#rrggbb` (either case).
pub fn parse_color(text: &str) -> Result<Rgb, String> {
    let bad = || format!("{text:?} is not a colour such as \"#0b57d0\" or \"#06c\"");
    let digits = text.trim().strip_prefix('#').ok_or_else(bad)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let channel = |hex: &str| u8::from_str_radix(hex, 16).map_err(|_| bad());
    match digits.len() {
        // `#abc` is `#aabbcc`: each digit stands for itself twice (0xa * 17 = 0xaa).
        3 => {
            let short = |i: usize| channel(&digits[i..=i]).map(|v| v * 17);
            Ok(Rgb(short(0)?, short(1)?, short(2)?))
        }
        6 => Ok(Rgb(
            channel(&digits[0..2])?,
            channel(&digits[2..4])?,
            channel(&digits[4..6])?,
        )),
        _ => Err(bad()),
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
    let (host, port) = with_port
        .rsplit_once(':')
        .unwrap_or((with_port.as_str(), ""));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{text:?}: the port must be a number from 1 to 65535"))?;
    let target = match host.parse::<IpAddr>() {
        Ok(ip) => Target::Addr(SocketAddr::new(ip, port)),
        Err(_) => match url::Host::parse(host) {
            Ok(url::Host::Domain(name)) if !name.is_empty() => Target::Name {
                host: name.trim_end_matches('.').to_string(),
                port,
            },
            _ => return Err(format!("{text:?}: {host:?} is not a host name or address")),
        },
    };
    Ok(Upstream::Http {
        target,
        tls,
        sni: host.to_string(),
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

    #[test]
    fn upstreams_keep_names_for_connect_time() {
        let addr = |t: &str| Target::Addr(t.parse().expect("addr"));
        let name = |h: &str, port| Target::Name {
            host: h.into(),
            port,
        };
        // text → (target, tls, sni)
        let cases = [
            ("127.0.0.1:3000", addr("127.0.0.1:3000"), false, "127.0.0.1"),
            ("http://[::1]:8080/", addr("[::1]:8080"), false, "::1"),
            ("https://10.0.0.5", addr("10.0.0.5:443"), true, "10.0.0.5"),
            ("app:3000", name("app", 3000), false, "app"),
            (
                "http://App.Internal",
                name("app.internal", 80),
                false,
                "App.Internal",
            ),
            (
                "https://api.example.com",
                name("api.example.com", 443),
                true,
                "api.example.com",
            ),
            // Not looked up now: a name that does not resolve yet is fine.
            (
                "never-resolves.invalid:9",
                name("never-resolves.invalid", 9),
                false,
                "never-resolves.invalid",
            ),
        ];
        for (text, target, tls, sni) in cases {
            assert_eq!(
                parse_upstream(text),
                Ok(Upstream::Http {
                    target,
                    tls,
                    sni: sni.into()
                }),
                "{text}"
            );
        }
        for bad in [
            "app:0",
            "app:http",
            "app:99999",
            "a b:80",
            "http://x/y",
            "u@h:1",
            "",
        ] {
            assert!(parse_upstream(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_upstream("whoami"), Ok(Upstream::Whoami));
    }

    #[test]
    fn colours_parse_in_both_notations() {
        let cases = [
            ("#0b57d0", Some(Rgb(0x0b, 0x57, 0xd0))),
            ("#0B57D0", Some(Rgb(0x0b, 0x57, 0xd0))),
            ("#06c", Some(Rgb(0x00, 0x66, 0xcc))),
            ("#FFF", Some(Rgb(255, 255, 255))),
            ("#000000", Some(Rgb(0, 0, 0))),
            (" #abcdef ", Some(Rgb(0xab, 0xcd, 0xef))),
            ("0b57d0", None),
            ("#0b57d", None),
            ("#0b57d0ff", None),
            ("#12", None),
            ("#", None),
            ("", None),
            ("#ggg", None),
            ("#+1+2+3", None),
            ("#éé", None),
            ("red", None),
            ("rgb(1,2,3)", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_color(text).ok(), want, "{text:?}");
        }
        assert_eq!(Rgb(0x0b, 0x57, 0xd0).hex(), "#0b57d0");
        assert_eq!(parse_color("#ABC").map(|c| c.hex()), Ok("#aabbcc".into()));
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
}
