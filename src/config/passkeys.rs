//! `[auth.passkeys]`: the WebAuthn relying party. Its id and origins default to `public_url`;
//! when those cannot work (an IP address, plain HTTP off localhost) passkeys are off with the
//! reason, while explicit keys that cannot work are problems.

use url::{Host, Url};

use super::model::{PasskeyConfig, PasskeySupport, PublicUrl};
use super::raw::RawPasskeys;
use super::validate::Validator;

/// The key of the relying party id.
const RP_ID: &str = "auth.passkeys.rp_id";
/// The key of the origins when they are left to their default.
const ORIGINS: &str = "auth.passkeys.origins";
/// `auth.passkeys.rp_name` may be this many characters long.
const RP_NAME_MAX_CHARS: usize = 64;

/// Why a relying party id or origin cannot work, and which key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unusable {
    pub(super) key: String,
    pub(super) message: String,
}

fn unusable(key: impl Into<String>, message: impl Into<String>) -> Unusable {
    Unusable {
        key: key.into(),
        message: message.into(),
    }
}

/// The relying party id and origins, or why they cannot work: the one place that decides.
/// `rp_id` empty means `public_url`'s host, `origins` empty means `public_url`'s origin. The id
/// must be a domain name (WebAuthn refuses IP addresses) equal to or a parent of every origin's
/// host, and every origin a secure context: `https`, or `http` on `localhost`.
pub(super) fn relying_party(
    rp_id: &str,
    origins: &[String],
    public_url: &PublicUrl,
) -> Result<(String, Vec<String>), Unusable> {
    let rp_id = rp_id.trim();
    let id_text = if rp_id.is_empty() {
        public_url.host.as_str()
    } else {
        rp_id
    };
    let id = domain_of(id_text).map_err(|m| unusable(RP_ID, m))?;
    let listed: Vec<(String, &str)> = if origins.is_empty() {
        vec![(ORIGINS.into(), public_url.origin.as_str())]
    } else {
        origins
            .iter()
            .enumerate()
            .map(|(i, o)| (format!("auth.passkeys.origins[{i}]"), o.as_str()))
            .collect()
    };
    let mut out = Vec::new();
    for (key, text) in listed {
        let (origin, host) = secure_origin(text).map_err(|m| unusable(&key, m))?;
        if host != id && !host.ends_with(&format!(".{id}")) {
            // An origin left to its default is blamed on the id that does not cover it.
            let key = if origins.is_empty() { RP_ID } else { &key };
            return Err(unusable(
                key,
                format!("the relying party id {id:?} does not cover the origin {origin}: it must be the origin's host or a parent domain of it"),
            ));
        }
        if !out.contains(&origin) {
            out.push(origin);
        }
    }
    Ok((id, out))
}

/// A relying party id as WebAuthn compares it: a domain name in ASCII, lower-case.
fn domain_of(text: &str) -> Result<String, String> {
    let trimmed = text.trim().trim_end_matches('.');
    // An IPv6 address comes bracketed; anything else with these is more than a name.
    let bracketed = trimmed.starts_with('[') && trimmed.ends_with(']');
    if !bracketed && trimmed.contains([':', '/', '?', '#', '@']) {
        return Err(format!(
            "{text:?} is not a domain name (no scheme, port or path)"
        ));
    }
    let url = Url::parse(&format!("https://{trimmed}/"))
        .map_err(|_| format!("{text:?} is not a domain name"))?;
    match url.host() {
        Some(Host::Domain(d)) => Ok(d.to_string()),
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => Err(format!(
            "{text} is an IP address, and WebAuthn needs a domain name as the relying party id"
        )),
        None => Err(format!("{text:?} is not a domain name")),
    }
}

/// An origin that is a secure context, normalised, with its host.
fn secure_origin(text: &str) -> Result<(String, String), String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?} must be an origin only, such as \"https://auth.example.com\" (no path)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?} must not contain credentials"));
    }
    let host = match url.host() {
        Some(Host::Domain(d)) => d.trim_end_matches('.').to_string(),
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => {
            return Err(format!(
                "{text} has an IP address as its host, and WebAuthn needs a domain name"
            ))
        }
        None => return Err(format!("{text:?} has no host")),
    };
    let localhost = host == "localhost" || host.ends_with(".localhost");
    match url.scheme() {
        "https" => {}
        "http" if localhost => {}
        "http" => {
            return Err(format!(
                "{text} is plain HTTP, and WebAuthn needs a secure context: https, or http on localhost"
            ))
        }
        other => return Err(format!("scheme {other:?} is not http or https")),
    }
    Ok((url.origin().ascii_serialization(), host))
}

/// `public_url` with `localhost` as its host and plain HTTP: where passkeys work locally.
fn on_localhost(public_url: &PublicUrl) -> String {
    let port = Url::parse(&public_url.origin)
        .ok()
        .and_then(|u| u.port())
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    format!("http://localhost{port}")
}

impl Validator {
    /// `[auth.passkeys]`; `title` is `[ui] title`, the name's default.
    pub(super) fn passkeys(
        &mut self,
        raw: RawPasskeys,
        public_url: &PublicUrl,
        title: &str,
    ) -> PasskeySupport {
        let rp_name = raw.rp_name.trim();
        let rp_name = if rp_name.is_empty() {
            title.trim().to_string()
        } else {
            if rp_name.chars().count() > RP_NAME_MAX_CHARS || rp_name.chars().any(char::is_control)
            {
                self.problem(
                    "auth.passkeys.rp_name",
                    format!(
                        "must be at most {RP_NAME_MAX_CHARS} characters, without control characters"
                    ),
                );
            }
            rp_name.to_string()
        };
        let derived = raw.rp_id.trim().is_empty() && raw.origins.is_empty();
        match relying_party(&raw.rp_id, &raw.origins, public_url) {
            Ok((rp_id, origins)) => PasskeySupport::On(PasskeyConfig {
                rp_id,
                rp_name,
                origins,
            }),
            Err(why) if derived => PasskeySupport::Off {
                reason: format!(
                    "passkeys are off: server.public_url {}: {}; use an https public_url with a domain name (or {} to try them locally), or set auth.passkeys.rp_id and origins",
                    public_url.origin,
                    why.message,
                    on_localhost(public_url)
                ),
            },
            Err(why) => {
                let defaulted = if why.key == ORIGINS {
                    " (origins defaults to server.public_url's origin)"
                } else if why.key == RP_ID && raw.rp_id.trim().is_empty() {
                    " (rp_id defaults to server.public_url's host)"
                } else {
                    ""
                };
                self.problem(&why.key, format!("{}{defaulted}", why.message));
                PasskeySupport::Off {
                    reason: why.message,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::relying_party;
    use crate::config::{Config, PasskeySupport, PublicUrl};

    fn public(url: &str) -> PublicUrl {
        let u = url::Url::parse(url).expect("url");
        PublicUrl {
            origin: u.origin().ascii_serialization(),
            https: u.scheme() == "https",
            host: u.host_str().unwrap_or_default().to_string(),
        }
    }

    #[test]
    fn relying_party_defaults_and_refusals() {
        type Expected<'a> = Result<(&'a str, &'a [&'a str]), &'a str>;
        let cases: &[(&str, &[&str], &str, Expected)] = &[
            // Defaults from public_url.
            (
                "",
                &[],
                "https://auth.example.com",
                Ok(("auth.example.com", &["https://auth.example.com"])),
            ),
            (
                "",
                &[],
                "https://auth.example.com:8443",
                Ok(("auth.example.com", &["https://auth.example.com:8443"])),
            ),
            (
                "",
                &[],
                "http://localhost:8080",
                Ok(("localhost", &["http://localhost:8080"])),
            ),
            (
                "",
                &[],
                "http://app.localhost:8080",
                Ok(("app.localhost", &["http://app.localhost:8080"])),
            ),
            // An IP address or plain HTTP elsewhere cannot work.
            ("", &[], "http://127.0.0.1:8080", Err("auth.passkeys.rp_id")),
            (
                "",
                &[],
                "https://127.0.0.1:8443",
                Err("auth.passkeys.rp_id"),
            ),
            ("", &[], "https://[::1]:8443", Err("auth.passkeys.rp_id")),
            (
                "",
                &[],
                "http://auth.example.com",
                Err("auth.passkeys.origins"),
            ),
            // A parent domain as the id, the origin from public_url.
            (
                "Example.COM.",
                &[],
                "https://auth.example.com",
                Ok(("example.com", &["https://auth.example.com"])),
            ),
            // Explicit origins, normalised, duplicates once.
            (
                "example.com",
                &[
                    "https://auth.example.com:443",
                    "https://app.example.com",
                    "https://AUTH.example.com",
                ],
                "http://127.0.0.1:8080",
                Ok((
                    "example.com",
                    &["https://auth.example.com", "https://app.example.com"],
                )),
            ),
            // Explicit values that cannot work name their key.
            (
                "10.0.0.1",
                &[],
                "https://auth.example.com",
                Err("auth.passkeys.rp_id"),
            ),
            (
                "example.com:443",
                &[],
                "https://auth.example.com",
                Err("auth.passkeys.rp_id"),
            ),
            (
                "other.org",
                &[],
                "https://auth.example.com",
                Err("auth.passkeys.rp_id"),
            ),
            // A look-alike suffix is not a parent domain.
            (
                "ample.com",
                &[],
                "https://auth.example.com",
                Err("auth.passkeys.rp_id"),
            ),
            (
                "example.com",
                &["https://auth.example.com", "https://evil.org"],
                "https://auth.example.com",
                Err("auth.passkeys.origins[1]"),
            ),
            (
                "example.com",
                &["http://auth.example.com"],
                "https://auth.example.com",
                Err("auth.passkeys.origins[0]"),
            ),
            (
                "example.com",
                &["https://auth.example.com/login"],
                "https://auth.example.com",
                Err("auth.passkeys.origins[0]"),
            ),
            (
                "",
                &["https://auth.example.com"],
                "http://127.0.0.1:8080",
                Err("auth.passkeys.rp_id"),
            ),
        ];
        for (rp_id, origins, url, expected) in cases {
            let origins: Vec<String> = origins.iter().map(|o| o.to_string()).collect();
            let got = relying_party(rp_id, &origins, &public(url));
            match (expected, &got) {
                (Ok((id, list)), Ok((got_id, got_list))) => {
                    assert_eq!(got_id, id, "{rp_id:?} {origins:?} {url}");
                    assert_eq!(got_list, list, "{rp_id:?} {origins:?} {url}");
                }
                (Err(key), Err(why)) => assert_eq!(&why.key, key, "{rp_id:?} {origins:?} {url}"),
                _ => panic!("{rp_id:?} {origins:?} {url}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn passkeys_are_off_with_a_reason_on_the_default_public_url() {
        let c = Config::from_toml("").expect("defaults are valid");
        let PasskeySupport::Off { reason } = &c.auth.passkeys else {
            panic!("on with 127.0.0.1: {:?}", c.auth.passkeys);
        };
        assert!(reason.contains("IP address"), "{reason}");
        assert!(reason.contains("http://localhost:8080"), "{reason}");
        assert_eq!(c.notices().len(), 1, "{:?}", c.notices());

        let c =
            Config::from_toml("[server]\npublic_url = \"http://localhost:8080\"\n").expect("valid");
        let on = c.auth.passkeys.config().expect("on with localhost");
        assert_eq!(on.rp_id, "localhost");
        assert_eq!(on.rp_name, "authgate");
        assert_eq!(on.origins, ["http://localhost:8080"]);
        assert!(c.notices().is_empty(), "{:?}", c.notices());
    }

    #[test]
    fn passkey_keys_are_read_and_checked() {
        let c = Config::from_toml(
            "[server]\npublic_url = \"https://auth.example.com\"\n[ui]\ntitle = \"Acme\"\n",
        )
        .expect("valid");
        assert_eq!(
            c.auth.passkeys.config().map(|p| p.rp_name.as_str()),
            Some("Acme")
        );

        let c = Config::from_toml(
            r#"
            [server]
            public_url = "https://auth.example.com"
            [auth.passkeys]
            rp_id = "example.com"
            rp_name = "Acme sign-in"
            origins = ["https://auth.example.com", "https://app.example.com"]
            "#,
        )
        .expect("valid");
        let on = c.auth.passkeys.config().expect("on");
        assert_eq!(on.rp_id, "example.com");
        assert_eq!(on.rp_name, "Acme sign-in");
        assert_eq!(on.origins.len(), 2);

        let e = Config::from_toml("[auth.passkeys]\nrp_id = \"127.0.0.1\"\n")
            .expect_err("an explicit IP address is a problem, not a notice");
        assert!(e.to_string().contains("auth.passkeys.rp_id"), "{e}");
        let e = Config::from_toml("[auth.passkeys]\nrp_ids = \"x\"\n").expect_err("unknown key");
        assert!(e.to_string().contains("rp_ids"), "{e}");
    }
}
