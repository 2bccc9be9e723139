//! Path normalisation and route matching: the one place that decides which route a request
//! belongs to. Plain Rust, no Pingora types.

use http::Method;

use crate::config::{Policy, Route};

/// Why a path could not be normalised (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with '/'")]
    NotAbsolute,
    #[error("the path has a malformed percent-escape")]
    BadEscape,
    #[error("the path contains a NUL byte")]
    Nul,
    #[error("the path climbs above the root")]
    AboveRoot,
    #[error("the decoded path is not valid UTF-8")]
    NotUtf8,
}

/// How many rounds of percent-decoding are applied (to see through double encoding such as
/// `%252e`); a path still holding escapes after that is refused.
const DECODE_ROUNDS: usize = 4;

/// Normalise a request path for matching: fully percent-decode (`%2F` and `%5C` become
/// separators, double encoding is seen through), treat `\` as `/`, drop `;parameters` from each
/// segment, resolve `.` and `..`, collapse duplicate slashes and drop a trailing slash.
///
/// The result is only used to decide; the upstream receives the path as the client sent it.
pub fn normalise_path(raw: &str) -> Result<String, PathError> {
    normalise_path_bytes(raw.as_bytes())
}

/// [`normalise_path`] for a raw request path that may not be UTF-8.
pub fn normalise_path_bytes(raw: &[u8]) -> Result<String, PathError> {
    if !raw.starts_with(b"/") {
        return Err(PathError::NotAbsolute);
    }
    // The first round is strict: a '%' must start a valid escape.
    let mut bytes = percent_decode(raw, true)?;
    let mut rounds = 1;
    while has_escape(&bytes) {
        if rounds == DECODE_ROUNDS {
            return Err(PathError::BadEscape);
        }
        bytes = percent_decode(&bytes, false)?;
        rounds += 1;
    }
    if bytes.contains(&0) {
        return Err(PathError::Nul);
    }
    // Overlong and invalid sequences (`%C0%AE` for '.') are what some servers decode loosely:
    // refuse them rather than decide differently from the app behind.
    if std::str::from_utf8(&bytes).is_err() {
        return Err(PathError::NotUtf8);
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in bytes.split(|b| *b == b'/' || *b == b'\\') {
        let segment = match segment.iter().position(|b| *b == b';') {
            Some(i) => &segment[..i],
            None => segment,
        };
        match segment {
            b"" | b"." => {}
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(bytes.len() + 1);
    if segments.is_empty() {
        out.push('/');
    }
    for s in segments {
        out.push('/');
        encode_segment(s, &mut out);
    }
    Ok(out)
}

/// Write a decoded segment in canonical form: characters that are safe and unambiguous in a
/// path stay as they are, every other byte (`%`, `?`, `#`, spaces, controls, non-ASCII) becomes
/// an upper-case escape. So distinct byte strings stay distinct, and normalising a normalised
/// path changes nothing.
fn encode_segment(segment: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in segment {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn has_escape(bytes: &[u8]) -> bool {
    bytes
        .windows(3)
        .any(|w| w[0] == b'%' && hex(w[1]).is_some() && hex(w[2]).is_some())
}

fn percent_decode(input: &[u8], strict: bool) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            let pair = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            );
            if let (Some(hi), Some(lo)) = pair {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            if strict {
                return Err(PathError::BadEscape);
            }
        }
        out.push(b);
        i += 1;
    }
    Ok(out)
}

/// A route's `host`: `*`, an exact host, or `*.example.com` (any subdomain, not the apex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Any,
    Exact(String),
    /// Stored with its leading dot: `.example.com`.
    Subdomains(String),
}

impl HostPattern {
    /// Parse a config value.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let t = canonical_host(text);
        if t == "*" {
            return Ok(HostPattern::Any);
        }
        let (pattern, name) = match t.strip_prefix("*.") {
            Some(rest) => (
                HostPattern::Subdomains(format!(".{rest}")),
                rest.to_string(),
            ),
            None => (HostPattern::Exact(t.clone()), t.clone()),
        };
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
        if valid {
            Ok(pattern)
        } else {
            Err(format!(
                "{text:?} is not \"*\", a host name, or \"*.example.com\""
            ))
        }
    }

    /// Whether a canonical request host (see [`canonical_host`]) matches.
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

/// A host as routes compare it: lower-case, port and trailing dot removed.
pub fn canonical_host(raw: &str) -> String {
    let raw = raw.trim();
    let without_port = if raw.starts_with('[') {
        // [v6]:port
        match raw.find(']') {
            Some(end) => &raw[..=end],
            None => raw,
        }
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `path` (normalised) lies within the segment-wise prefix `prefix` (normalised).
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The first route matching host, normalised path and method, with its index.
pub fn find_route<'a>(
    routes: &'a [Route],
    host: &str,
    path: &str,
    method: &Method,
) -> Option<(usize, &'a Route)> {
    routes.iter().enumerate().find(|(_, r)| {
        r.host.matches(host)
            && path_has_prefix(path, &r.path)
            && (r.methods.is_empty() || r.methods.contains(method))
    })
}

/// What a request may do on a route, given who (if anyone) is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allow,
    /// A session is needed.
    LoginRequired,
    Forbidden,
}

/// The access decision of a route for a caller with `groups` (None = no valid session).
/// `groups` includes the role.
pub fn decide(route: &Route, groups: Option<&[String]>) -> Access {
    match (route.policy, groups) {
        (Policy::Deny, _) => Access::Forbidden,
        (Policy::Public, _) => Access::Allow,
        (Policy::Authenticated, None) => Access::LoginRequired,
        (Policy::Authenticated, Some(have)) => {
            if route.groups.is_empty() || route.groups.iter().any(|g| have.contains(g)) {
                Access::Allow
            } else {
                Access::Forbidden
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Upstream;

    #[test]
    fn normalisation_table() {
        let ok = [
            ("/", "/"),
            ("//", "/"),
            ("/a/b/", "/a/b"),
            ("/a//b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/a/b/..", "/a"),
            ("/%61dmin", "/admin"),
            ("/admin%2Fx", "/admin/x"),
            ("/admin%2fx", "/admin/x"),
            ("/x%5Cadmin", "/x/admin"),
            ("/x\\admin", "/x/admin"),
            ("/admin;jsessionid=1", "/admin"),
            ("/admin;a/b;c", "/admin/b"),
            ("/a/..;/admin", "/admin"),
            ("/a/%2e%2e/admin", "/admin"),
            ("/a/%2E%2E/admin", "/admin"),
            ("/a/%252e%252e/admin", "/admin"),
            ("/a/%25252e%25252e/admin", "/admin"),
            ("/a/.%2e/admin", "/admin"),
            ("/100%25", "/100%25"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/café", "/caf%C3%A9"),
            ("/a%3Fb%23c", "/a%3Fb%23c"),
            ("/a%20b", "/a%20b"),
            ("/a/b/../../c", "/c"),
        ];
        for (input, want) in ok {
            assert_eq!(normalise_path(input).as_deref(), Ok(want), "{input}");
        }
        let bad = [
            ("", PathError::NotAbsolute),
            ("admin", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("/%", PathError::BadEscape),
            ("/100%", PathError::BadEscape),
            ("/%zz", PathError::BadEscape),
            ("/%2", PathError::BadEscape),
            ("/a%00b", PathError::Nul),
            ("/a%2500b", PathError::Nul),
            ("/..", PathError::AboveRoot),
            ("/a%ffb", PathError::NotUtf8),
            ("/x/%C0%AE%C0%AE/admin", PathError::NotUtf8),
            ("/%E9t%E9", PathError::NotUtf8),
            ("/a/../..", PathError::AboveRoot),
            ("/%2e%2e/etc", PathError::AboveRoot),
            ("/a/..%2f..%2fetc", PathError::AboveRoot),
            ("/%2525252525", PathError::BadEscape),
        ];
        for (input, want) in bad {
            assert_eq!(normalise_path(input), Err(want), "{input}");
        }
    }

    #[test]
    fn normalised_paths_are_fixed_points() {
        for input in [
            "/a//b/../c;x",
            "/%2561",
            "/a/%2e/b",
            "/x\\y",
            "/100%25",
            "/caf%C3%A9",
            "/%2541%25",
            "/sp%20ace",
        ] {
            let once = normalise_path(input).expect("normalises");
            assert_eq!(
                normalise_path(&once).as_deref(),
                Ok(once.as_str()),
                "{input}"
            );
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(path_has_prefix("/api", "/api"));
        assert!(path_has_prefix("/api/x", "/api"));
        assert!(!path_has_prefix("/apix", "/api"));
        assert!(!path_has_prefix("/ap", "/api"));
        assert!(path_has_prefix("/anything", "/"));
    }

    #[test]
    fn hosts_compare_canonically() {
        assert_eq!(canonical_host("App.Example.COM:8443"), "app.example.com");
        assert_eq!(canonical_host("app.example.com."), "app.example.com");
        assert_eq!(canonical_host("[::1]:8080"), "[::1]");
        assert_eq!(canonical_host("127.0.0.1:80"), "127.0.0.1");
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
    }

    fn route(path: &str, policy: Policy, methods: &[Method], groups: &[&str]) -> Route {
        Route {
            host: HostPattern::Any,
            path: path.into(),
            methods: methods.to_vec(),
            upstream: Upstream::Whoami,
            policy,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn first_matching_route_wins_and_methods_filter() {
        let routes = vec![
            route("/admin", Policy::Deny, &[], &[]),
            route("/api", Policy::Public, &[Method::GET], &[]),
            route("/", Policy::Authenticated, &[], &[]),
        ];
        let find = |p: &str, m: Method| find_route(&routes, "h", p, &m).map(|(i, _)| i);
        assert_eq!(find("/admin/x", Method::GET), Some(0));
        assert_eq!(find("/administrator", Method::GET), Some(2));
        assert_eq!(find("/api/x", Method::GET), Some(1));
        assert_eq!(find("/api/x", Method::POST), Some(2));
        let none: Vec<Route> = vec![route("/only", Policy::Public, &[], &[])];
        assert!(find_route(&none, "h", "/other", &Method::GET).is_none());
    }

    #[test]
    fn decisions_follow_policy_and_groups() {
        let admins = vec!["user".to_string(), "admins".to_string()];
        let plain = vec!["user".to_string()];
        let deny = route("/", Policy::Deny, &[], &[]);
        let public = route("/", Policy::Public, &[], &[]);
        let authed = route("/", Policy::Authenticated, &[], &[]);
        let grouped = route("/", Policy::Authenticated, &[], &["admins"]);
        assert_eq!(decide(&deny, Some(&admins)), Access::Forbidden);
        assert_eq!(decide(&public, None), Access::Allow);
        assert_eq!(decide(&authed, None), Access::LoginRequired);
        assert_eq!(decide(&authed, Some(&plain)), Access::Allow);
        assert_eq!(decide(&grouped, None), Access::LoginRequired);
        assert_eq!(decide(&grouped, Some(&plain)), Access::Forbidden);
        assert_eq!(decide(&grouped, Some(&admins)), Access::Allow);
    }
}
