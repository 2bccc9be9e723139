//! Redirect safety: the one function every redirecting endpoint (login, logout, forward-auth)
//! uses to decide whether `rd` may be followed.

use crate::config::Config;

/// The hosts a redirect may go to, from the configuration.
pub struct RedirectPolicy<'a> {
    /// `public_url`'s host, lower-case.
    pub public_host: &'a str,
    /// `session.cookie_domain`: it and its subdomains are allowed.
    pub cookie_domain: Option<&'a str>,
    /// `auth.allowed_redirect_hosts`, lower-case, exact.
    pub allowed_hosts: &'a [String],
}

impl<'a> RedirectPolicy<'a> {
    /// The policy of a configuration.
    pub fn of(config: &'a Config) -> RedirectPolicy<'a> {
        RedirectPolicy {
            public_host: &config.server.public_url.host,
            cookie_domain: config.session.cookie_domain.as_deref(),
            allowed_hosts: &config.auth.allowed_redirect_hosts,
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        host == self.public_host
            || self.allowed_hosts.iter().any(|h| h == host)
            || self.cookie_domain.is_some_and(|d| {
                host == d
                    || (host.len() > d.len() + 1
                        && host.ends_with(d)
                        && host.as_bytes()[host.len() - d.len() - 1] == b'.')
            })
    }
}

/// The URL to redirect to, if `rd` is an absolute http(s) URL to an allowed host; `None`
/// means "use the fallback". Anything unusual is refused: relative or scheme-relative forms,
/// backslashes, whitespace or control characters anywhere, credentials, percent-escapes in the
/// authority, hosts that merely end like an allowed one.
pub fn safe_redirect(rd: &str, policy: &RedirectPolicy<'_>) -> Option<String> {
    if rd.is_empty() || rd.len() > MAX_REDIRECT_LEN {
        return None;
    }
    if rd
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let lower = rd.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    // The authority, exactly as written: no escapes, no userinfo, no empty host.
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('%') || authority.contains('@') {
        return None;
    }
    let url = url::Url::parse(rd).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    let host = match url.host()? {
        url::Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => format!("[{ip}]"),
    };
    // After IDNA only letters, digits, '-' and '.' belong in a host name, within DNS limits.
    let plain = host.len() <= 253
        && host.split('.').all(|label| label.len() <= 63)
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b"[]:".contains(&b));
    if !plain || !policy.host_allowed(&host) {
        return None;
    }
    // The serialised form (punycode can make it longer) obeys the same bound, so the answer
    // is stable: checking it again accepts it unchanged.
    let out = url.to_string();
    (out.len() <= MAX_REDIRECT_LEN).then_some(out)
}

/// Longest `rd` accepted.
const MAX_REDIRECT_LEN: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RedirectPolicy<'static> {
        static ALLOWED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        RedirectPolicy {
            public_host: "auth.example.com",
            cookie_domain: Some("example.com"),
            allowed_hosts: ALLOWED
                .get_or_init(|| vec!["partner.org".to_string(), "10.0.0.5".to_string()]),
        }
    }

    #[test]
    fn allowed_redirects() {
        let ok = [
            ("https://auth.example.com/", "https://auth.example.com/"),
            (
                "https://auth.example.com/x?y=1#z",
                "https://auth.example.com/x?y=1#z",
            ),
            ("http://app.example.com/page", "http://app.example.com/page"),
            ("https://example.com/", "https://example.com/"),
            (
                "https://a.b.example.com:8443/deep/path",
                "https://a.b.example.com:8443/deep/path",
            ),
            (
                "HTTPS://APP.EXAMPLE.COM/Path",
                "https://app.example.com/Path",
            ),
            ("https://app.example.com./x", "https://app.example.com./x"),
            ("https://partner.org/welcome", "https://partner.org/welcome"),
            ("http://10.0.0.5:3000/", "http://10.0.0.5:3000/"),
            (
                "https://app.example.com/a%2Fb",
                "https://app.example.com/a%2Fb",
            ),
        ];
        for (rd, want) in ok {
            assert_eq!(safe_redirect(rd, &policy()).as_deref(), Some(want), "{rd}");
        }
    }

    #[test]
    fn hostile_redirects_fall_back() {
        let hostile = [
            "",
            "/",
            "/account",
            "//evil.com",
            "//evil.com/x",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "https:evil.com",
            "https:/evil.com",
            "https:\\\\evil.com",
            "http:\\\\evil.com",
            "https://evil.com",
            "https://evil.com/https://app.example.com",
            "https://evil.com?rd=https://app.example.com",
            "https://evilexample.com/",
            "https://example.com.evil.com/",
            "https://app.example.com.evil.com/",
            "https://auth.example.com@evil.com/",
            "https://user:pass@app.example.com/",
            "https://user@app.example.com/",
            "https://evil.com\\@app.example.com/",
            "https://evil.com%2f@app.example.com/",
            "https://evil.com%2F.example.com/",
            "https://app.example.com%2f@evil.com/",
            "https://app.example.com%00.evil.com/",
            "https://app.example.com\u{0}/",
            "https://app.example.com/\r\nSet-Cookie:x=y",
            "https://app.example.com/\tx",
            " https://app.example.com/",
            "https://app.example.com /",
            "javascript:alert(1)",
            "javascript://app.example.com/%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "ftp://app.example.com/",
            "file:///etc/passwd",
            "https://partner.org.evil.com/",
            "https://10.0.0.55/",
            "https://[::1]/",
            "https://evil.com#@app.example.com",
            "https://evil.com?@app.example.com",
            "https://%61pp.example.com/",
            "https://аpp.example.com.evil.com/",
            "https://xn--example-evil.com/",
            "http://",
            "https://:443/",
            "https://app.example.com:99999/",
            "https://ex%61mple.com/",
            "https://a\"b.example.com/",
            "https://a*b.example.com/",
        ];
        assert!(hostile.len() >= 30);
        for rd in hostile {
            assert_eq!(safe_redirect(rd, &policy()), None, "{rd:?} was accepted");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(5000));
        assert_eq!(safe_redirect(&long, &policy()), None);
        // Found by fuzzing: a URL under the limit whose serialised form (punycode, escapes) is
        // over it; and host names beyond DNS limits.
        let grows = format!("https://app.example.com/{}", "ä".repeat(2000));
        assert!(grows.len() <= MAX_REDIRECT_LEN);
        assert_eq!(safe_redirect(&grows, &policy()), None);
        let long_label = format!("https://{}.example.com/", "a".repeat(64));
        assert_eq!(safe_redirect(&long_label, &policy()), None);
        let long_host = format!("https://{}example.com/", "abcdefgh.".repeat(30));
        assert_eq!(safe_redirect(&long_host, &policy()), None);
    }

    #[test]
    fn accepted_redirects_are_accepted_again_unchanged() {
        for rd in [
            "https://app.example.com/a b",
            "https://BÜCHER.example.com/x",
            "http://partner.org",
        ] {
            if let Some(out) = safe_redirect(rd, &policy()) {
                assert_eq!(
                    safe_redirect(&out, &policy()).as_deref(),
                    Some(out.as_str()),
                    "{rd}"
                );
            }
        }
    }

    #[test]
    fn without_cookie_domain_only_public_and_listed_hosts() {
        let p = RedirectPolicy {
            public_host: "auth.example.com",
            cookie_domain: None,
            allowed_hosts: &[],
        };
        assert!(safe_redirect("https://auth.example.com/x", &p).is_some());
        assert!(safe_redirect("https://app.example.com/x", &p).is_none());
        assert!(safe_redirect("https://example.com/", &p).is_none());
    }
}
