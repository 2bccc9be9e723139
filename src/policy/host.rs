//! Hosts: the one parser of `Host`, authorities and `X-Forwarded-Host`, the request's host
//! from its headers, and a route's host pattern.

/// A route's `host`: `*`, an exact host, or `*.example.com` (any subdomain, not the apex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Any,
    Exact(String),
    /// Stored with its leading dot: `.example.com`.
    Subdomains(String),
}

impl HostPattern {
    /// Parse a config value; the host is read by the same parser as requests' hosts.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let t = text.trim();
        if t == "*" {
            return Ok(HostPattern::Any);
        }
        let invalid = || format!("{text:?} is not \"*\", a host name, or \"*.example.com\"");
        match t.strip_prefix("*.") {
            Some(rest) => {
                let name = parse_host(rest).map_err(|_| invalid())?;
                Ok(HostPattern::Subdomains(format!(".{name}")))
            }
            None => parse_host(t).map(HostPattern::Exact).map_err(|_| invalid()),
        }
    }

    /// Whether a canonical request host (see [`parse_host`]) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        }
    }
}

/// Why a host could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("the host is empty")]
    Empty,
    #[error("the port is not a number from 0 to 65535")]
    BadPort,
    #[error("the host is not a valid host name or IP address")]
    BadName,
    #[error("the request names two different hosts")]
    Conflicting,
}

/// Parse a `Host` header, a URL's authority or `X-Forwarded-Host` into the host that routes
/// compare: lower-case, without port or trailing dot, IPv6 in brackets. The one host parser of
/// the proxy and forward auth. The port must be digits (or absent); a name must be what a URL
/// parser reads it as, unchanged (no userinfo, escapes, non-ASCII, or numeric forms such as
/// `0x7f.1` that parsers rewrite), so a host rule cannot be dodged by a spelling the app behind
/// reads differently.
pub fn parse_host(raw: &str) -> Result<String, HostError> {
    if raw.is_empty() {
        return Err(HostError::Empty);
    }
    let (name, port) = if raw.starts_with('[') {
        let end = raw.find(']').ok_or(HostError::BadName)?;
        let rest = &raw[end + 1..];
        let port = match rest {
            "" => None,
            r => Some(r.strip_prefix(':').ok_or(HostError::BadName)?),
        };
        (&raw[..=end], port)
    } else {
        match raw.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (raw, None),
        }
    };
    if let Some(port) = port {
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u32>().map_or(true, |p| p > 65_535) {
            return Err(HostError::BadPort);
        }
    }
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    let lower = name.to_ascii_lowercase();
    if plainly_canonical(&lower) {
        return Ok(lower);
    }
    canonical_by_url(lower)
}

/// Whether a lower-cased host name is one that [`canonical_by_url`] would return unchanged,
/// decided without the URL parser (which costs about a microsecond per request): a dotted-quad
/// IPv4 address in its canonical form, or non-empty labels of letters, digits, `-` and `_`
/// whose last one starts with a letter (so the URL standard does not read it as a number),
/// none of them punycode, no trailing dot. Anything else takes the full parse.
fn plainly_canonical(lower: &str) -> bool {
    if lower.parse::<std::net::Ipv4Addr>().is_ok() {
        // The standard library reads only the canonical dotted quad (no leading zeros).
        return true;
    }
    let mut labels = lower.split('.').peekable();
    while let Some(label) = labels.next() {
        let plain = !label.is_empty()
            && !label.starts_with("xn--")
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !plain {
            return false;
        }
        if labels.peek().is_none() && !label.starts_with(|c: char| c.is_ascii_lowercase()) {
            return false;
        }
    }
    true
}

/// The canonical form of a lower-cased host name by the URL standard's host parser, or
/// [`HostError::BadName`].
fn canonical_by_url(lower: String) -> Result<String, HostError> {
    let parsed = url::Host::parse(&lower).map_err(|_| HostError::BadName)?;
    match parsed {
        url::Host::Ipv6(ip) => Ok(format!("[{ip}]")),
        url::Host::Ipv4(ip) if ip.to_string() == lower => Ok(lower),
        url::Host::Domain(d)
            if d == lower
                && lower
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) =>
        {
            let trimmed = lower.trim_end_matches('.');
            if trimmed.is_empty() {
                return Err(HostError::BadName);
            }
            Ok(trimmed.to_string())
        }
        _ => Err(HostError::BadName),
    }
}

/// The host a request names, as sent and as routes compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHost {
    /// As sent (validated): what the upstream is told in `X-Forwarded-Host`.
    pub sent: String,
    /// From [`parse_host`].
    pub canonical: String,
}

/// The host of a request from its `Host` header(s) and the URI's authority (HTTP/2, or an
/// absolute-form target): several `Host` headers, or a `Host` that names another host than
/// the authority, are refused.
pub fn request_host<'a>(
    mut host_headers: impl Iterator<Item = &'a [u8]>,
    authority: Option<&str>,
) -> Result<Option<RequestHost>, HostError> {
    let first = host_headers.next();
    if host_headers.next().is_some() {
        return Err(HostError::Conflicting);
    }
    let from_header = match first {
        Some(v) => {
            let text = std::str::from_utf8(v).map_err(|_| HostError::BadName)?;
            Some(RequestHost {
                canonical: parse_host(text)?,
                sent: text.to_string(),
            })
        }
        None => None,
    };
    let from_authority = match authority {
        Some(a) => Some(RequestHost {
            canonical: parse_host(a)?,
            sent: a.to_string(),
        }),
        None => None,
    };
    match (from_header, from_authority) {
        (Some(h), Some(a)) if h.canonical != a.canonical => Err(HostError::Conflicting),
        (Some(h), _) => Ok(Some(h)),
        (None, a) => Ok(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut never accepts a name the full parse would refuse or rewrite: checked on
    /// tricky names and on every name of up to four characters from an alphabet with the
    /// characters that matter (letters, digits, `x` for `0x`, `-`, `_`, `.`).
    #[test]
    fn the_plain_name_shortcut_agrees_with_the_url_parser() {
        let tricky = [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "1.2.3",
            "127.1",
            "0x7f.0.0.1",
            "01.2.3.4",
            "1.2.3.4.",
            "1.2.3.256",
            "a.1",
            "a.1a",
            "a.0x1",
            "a.0x",
            "example.com",
            "localhost",
            "a..b",
            ".a",
            "a.",
            "xn--nxasmq6b.com",
            "xn--a",
            "a.xn--b",
            "a-b_c.d",
            "-a.b",
            "a-.b",
            "_a",
            "9a.b",
            "a.9b",
            "app.example.com",
        ];
        let alphabet = b"ab0919x-_.";
        let mut names: Vec<String> = tricky.iter().map(|t| t.to_string()).collect();
        let mut frontier = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for prefix in &frontier {
                for c in alphabet {
                    let mut n = prefix.clone();
                    n.push(char::from(*c));
                    next.push(n);
                }
            }
            names.extend(next.iter().cloned());
            frontier = next;
        }
        let mut shortcut = 0;
        for name in &names {
            if plainly_canonical(name) {
                shortcut += 1;
                assert_eq!(
                    canonical_by_url(name.clone()),
                    Ok(name.clone()),
                    "{name:?} taken as plain"
                );
            }
        }
        // The shortcut is taken for the usual names.
        for name in [
            "127.0.0.1",
            "example.com",
            "localhost",
            "a-b_c.d",
            "app2.example",
        ] {
            assert!(plainly_canonical(name), "{name}");
        }
        assert!(shortcut > 1000, "{shortcut}");
    }

    #[test]
    fn hosts_compare_canonically() {
        let ok = [
            ("App.Example.COM:8443", "app.example.com"),
            ("app.example.com.", "app.example.com"),
            ("[::1]:8080", "[::1]"),
            ("[0:0::1]", "[::1]"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("localhost", "localhost"),
            ("a-b_c.example.com:0", "a-b_c.example.com"),
            ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ];
        for (raw, want) in ok {
            assert_eq!(parse_host(raw).as_deref(), Ok(want), "{raw}");
        }
        let bad = [
            ("", HostError::Empty),
            (":80", HostError::Empty),
            ("secure.example.com:abc", HostError::BadPort),
            ("secure.example.com:80:80", HostError::BadPort),
            ("secure.example.com:8a", HostError::BadPort),
            ("secure.example.com:", HostError::BadPort),
            ("secure.example.com:65536", HostError::BadPort),
            ("secure.example.com: 80", HostError::BadPort),
            ("[::1", HostError::BadName),
            ("[::1]x", HostError::BadName),
            ("[::1]:8a", HostError::BadPort),
            ("user@secure.example.com", HostError::BadName),
            ("secure.example.com/x", HostError::BadName),
            ("secure%2eexample.com", HostError::BadName),
            ("0x7f.0.0.1", HostError::BadName),
            ("127.1", HostError::BadName),
            ("999.1.1.1", HostError::BadName),
            ("bücher.de", HostError::BadName),
            ("a b", HostError::BadName),
            ("*", HostError::BadName),
            (".", HostError::BadName),
        ];
        for (raw, want) in bad {
            assert_eq!(parse_host(raw), Err(want), "{raw:?}");
        }
        let exact = HostPattern::parse("App.Example.com.").expect("valid");
        assert!(exact.matches("app.example.com"));
        assert!(!exact.matches("x.app.example.com"));
        let sub = HostPattern::parse("*.example.com").expect("valid");
        assert!(sub.matches("a.example.com"));
        assert!(sub.matches("a.b.example.com"));
        assert!(!sub.matches("example.com"));
        assert!(!sub.matches("evilexample.com"));
        assert!(HostPattern::parse("*").expect("valid").matches("anything"));
        assert!(HostPattern::parse("bad host").is_err());
        assert!(HostPattern::parse("*.").is_err());
    }

    #[test]
    fn a_request_names_one_host() {
        let one = |h: &'static str| vec![h.as_bytes()];
        let got = request_host(one("App.example.com:8080").into_iter(), None).expect("ok");
        assert_eq!(
            got,
            Some(RequestHost {
                sent: "App.example.com:8080".into(),
                canonical: "app.example.com".into()
            })
        );
        assert_eq!(request_host(std::iter::empty(), None), Ok(None));
        let h2 = request_host(std::iter::empty(), Some("a.example.com")).expect("ok");
        assert_eq!(h2.map(|h| h.canonical).as_deref(), Some("a.example.com"));
        // Both present: they must agree (port and case aside).
        assert!(request_host(one("a.example.com").into_iter(), Some("A.example.com:443")).is_ok());
        assert_eq!(
            request_host(one("a.example.com").into_iter(), Some("b.example.com")),
            Err(HostError::Conflicting)
        );
        let two = vec![&b"a.example.com"[..], &b"b.example.com"[..]];
        assert_eq!(
            request_host(two.into_iter(), None),
            Err(HostError::Conflicting)
        );
        assert_eq!(
            request_host(vec![&b"a\xff"[..]].into_iter(), None),
            Err(HostError::BadName)
        );
    }
}
