//! The session cookie: the only place that names it, builds it and reads it.

use cookie::{Cookie, SameSite as CookieSameSite};
use http::header::COOKIE;
use http::HeaderMap;

use crate::config::{SameSite, SessionConfig};

/// At most this many same-named cookies are considered (cookie tossing sends several).
const MAX_CANDIDATES: usize = 4;

/// The cookie's name on the wire: `__Host-` when Secure without a domain, `__Secure-` when
/// Secure with a domain, the plain name otherwise.
pub fn wire_name(cfg: &SessionConfig) -> String {
    match (cfg.secure, &cfg.cookie_domain) {
        (true, None) => format!("__Host-{}", cfg.cookie_name),
        (true, Some(_)) => format!("__Secure-{}", cfg.cookie_name),
        (false, _) => cfg.cookie_name.clone(),
    }
}

/// Every name the gateway's cookies may carry (including spellings from an earlier `secure`
/// setting): the session cookie and the sign-in flow cookie, all kept away from upstreams.
pub fn all_names(cfg: &SessionConfig) -> [String; 6] {
    let flow = format!("{}{FLOW_SUFFIX}", cfg.cookie_name);
    [
        cfg.cookie_name.clone(),
        format!("__Host-{}", cfg.cookie_name),
        format!("__Secure-{}", cfg.cookie_name),
        format!("__Host-{flow}"),
        format!("__Secure-{flow}"),
        flow,
    ]
}

/// The sign-in flow cookie is the session cookie's name with this suffix.
const FLOW_SUFFIX: &str = "_signin";

/// How long a sign-in at a provider may take before the flow cookie is gone.
pub const FLOW_COOKIE_SECS: i64 = 600;

/// The flow cookie's name on the wire: always host-only, so `__Host-` when Secure.
fn flow_name(cfg: &SessionConfig) -> String {
    if cfg.secure {
        format!("__Host-{}{FLOW_SUFFIX}", cfg.cookie_name)
    } else {
        format!("{}{FLOW_SUFFIX}", cfg.cookie_name)
    }
}

/// `Set-Cookie` for the value that binds a sign-in at a provider to this browser. SameSite=Lax
/// whatever the session's setting: it must come back on the provider's redirect.
pub fn set_flow_cookie(cfg: &SessionConfig, value: &str) -> String {
    Cookie::build((flow_name(cfg), value.to_string()))
        .http_only(true)
        .path("/")
        .secure(cfg.secure)
        .same_site(CookieSameSite::Lax)
        .max_age(cookie::time::Duration::seconds(FLOW_COOKIE_SECS))
        .build()
        .to_string()
}

/// The flow cookie values a request carries (at most a few).
pub fn flow_values(headers: &HeaderMap, cfg: &SessionConfig) -> Vec<String> {
    session_token_refs(headers, &flow_name(cfg))
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn base(cfg: &SessionConfig, value: String) -> cookie::CookieBuilder<'static> {
    let mut b = Cookie::build((wire_name(cfg), value))
        .http_only(true)
        .path("/")
        .secure(cfg.secure)
        .same_site(match cfg.same_site {
            SameSite::Lax => CookieSameSite::Lax,
            SameSite::Strict => CookieSameSite::Strict,
            SameSite::None => CookieSameSite::None,
        });
    if let Some(domain) = &cfg.cookie_domain {
        b = b.domain(domain.clone());
    }
    b
}

/// `Set-Cookie` value carrying a session token. `max_age` makes it persistent ("remember me");
/// without it the browser drops it when closed.
pub fn set_cookie(
    cfg: &SessionConfig,
    token: &str,
    max_age: Option<std::time::Duration>,
) -> String {
    let mut b = base(cfg, token.to_string());
    if let Some(age) = max_age {
        let secs = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
        b = b.max_age(cookie::time::Duration::seconds(secs));
    }
    b.build().to_string()
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(cfg: &SessionConfig) -> String {
    base(cfg, String::new())
        .max_age(cookie::time::Duration::ZERO)
        .expires(cookie::time::OffsetDateTime::UNIX_EPOCH)
        .build()
        .to_string()
}

/// The values of the cookie named `wire_name` in the request's `Cookie` header(s), in order,
/// borrowed (no copies): the one cookie reader. Malformed pairs and non-UTF-8 headers are
/// skipped, never an error.
pub fn session_token_refs<'h>(headers: &'h HeaderMap, wire_name: &str) -> Vec<&'h str> {
    let mut out = Vec::new();
    for value in headers.get_all(COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for cookie in Cookie::split_parse(text).flatten() {
            if cookie.name_raw() == Some(wire_name) {
                if let Some(v) = cookie.value_raw().filter(|v| !v.is_empty()) {
                    out.push(v);
                    if out.len() == MAX_CANDIDATES {
                        return out;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use http::HeaderValue;

    fn cfg(toml: &str) -> SessionConfig {
        Config::from_toml(toml).expect("valid").session
    }

    #[test]
    fn name_prefix_follows_secure_and_domain() {
        assert_eq!(wire_name(&cfg("")), "authgate_session");
        assert_eq!(
            wire_name(&cfg("[session]\nsecure = true\n")),
            "__Host-authgate_session"
        );
        assert_eq!(
            wire_name(&cfg(
                "[server]\npublic_url = \"https://auth.example.com\"\n[session]\ncookie_domain = \"example.com\"\n"
            )),
            "__Secure-authgate_session"
        );
    }

    #[test]
    fn set_cookie_has_the_required_attributes() {
        let c = set_cookie(
            &cfg("[session]\nsecure = true\nsame_site = \"strict\"\n"),
            "tok",
            None,
        );
        assert!(c.starts_with("__Host-authgate_session=tok"), "{c}");
        for attr in ["HttpOnly", "Secure", "Path=/", "SameSite=Strict"] {
            assert!(c.contains(attr), "{attr} missing in {c}");
        }
        assert!(!c.contains("Domain"), "{c}");
        assert!(!c.contains("Max-Age"), "{c}");

        let c = set_cookie(&cfg(""), "tok", Some(std::time::Duration::from_secs(60)));
        assert!(
            c.contains("Max-Age=60") && c.contains("SameSite=Lax") && !c.contains("Secure"),
            "{c}"
        );

        let c = set_cookie(
            &cfg("[server]\npublic_url = \"https://auth.example.com\"\n[session]\ncookie_domain = \"example.com\"\n"),
            "tok",
            None,
        );
        assert!(
            c.contains("Domain=example.com") && c.starts_with("__Secure-"),
            "{c}"
        );

        let clear = clear_cookie(&cfg(""));
        assert!(
            clear.starts_with("authgate_session=;") && clear.contains("Max-Age=0"),
            "{clear}"
        );
    }

    #[test]
    fn tokens_are_read_leniently() {
        let c = cfg("");
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; authgate_session=one; ;;garbage; authgate_session=two"),
        );
        h.append(
            COOKIE,
            HeaderValue::from_bytes(b"authgate_session=\xff\xfe").expect("bytes"),
        );
        h.append(COOKIE, HeaderValue::from_static("authgate_session=three"));
        let name = wire_name(&c);
        assert_eq!(session_token_refs(&h, &name), vec!["one", "two", "three"]);
        let mut many = HeaderMap::new();
        many.append(COOKIE, HeaderValue::from_static("authgate_session=1; authgate_session=2; authgate_session=3; authgate_session=4; authgate_session=5"));
        assert_eq!(session_token_refs(&many, &name).len(), MAX_CANDIDATES);
        assert!(session_token_refs(&HeaderMap::new(), &name).is_empty());
    }
}
