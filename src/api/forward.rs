//! Forward auth: `GET /verify` (nginx `auth_request`) and `GET /forward` (Traefik `ForwardAuth`,
//! Caddy `forward_auth`) decide for the original request a trusted proxy names, with the same
//! routes and policies as proxying. Never 200 unless the decision is "allow".

use std::sync::Arc;

use http::header::{AUTHORIZATION, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::response::ApiResponse;
use super::ApiRequest;
use crate::access::{self, login_url, wants_html, Verdict};
use crate::app::App;
use crate::auth::api_token;
use crate::error::ApiError;
use crate::policy::headers::{envoy_plan, identity_values, IdentityValues};
use crate::policy::host::parse_host;
use crate::policy::path::classify_path;

/// Which proxy asks: they name the original request differently, and differ for a missing
/// session and in how identity headers are handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// nginx: 401, nginx's `error_page` does the rest.
    Verify,
    /// Traefik and Caddy: browsers are redirected to the login page.
    Forward,
    /// Envoy's `ext_authz` (HTTP or gRPC): browsers are redirected; headers to set and to
    /// remove are listed.
    Envoy,
}

/// The request the proxy asks about.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Original {
    method: Method,
    scheme: &'static str,
    /// Host as sent (may carry a port), already validated.
    host: String,
    /// Canonical host, as routes compare it.
    canonical_host: String,
    /// Path and query as sent.
    target: String,
}

impl Original {
    /// The original request from its parts as a proxy names them: the host goes through the
    /// one host parser; the target (path and query) is kept exactly as sent.
    pub(crate) fn new(
        method: Method,
        scheme: &'static str,
        host: &str,
        target: String,
    ) -> Result<Original, String> {
        let canonical_host =
            parse_host(host).map_err(|e| format!("the original host is invalid: {e}"))?;
        Ok(Original {
            method,
            scheme,
            host: host.to_string(),
            canonical_host,
            target,
        })
    }

    fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.target)
    }
}

/// A decision header: absent, or exactly one non-empty text value. A second copy is refused
/// (the client controls one of them), as is a comma list where `list_ok` is false.
fn header<'a>(
    headers: &'a HeaderMap,
    name: &str,
    list_ok: bool,
) -> Result<Option<&'a str>, String> {
    let mut values = headers.get_all(name).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(format!("the {name} header appears more than once"));
    }
    let text = match v.to_str() {
        Ok(s) if !s.trim().is_empty() => s.trim(),
        _ => return Err(format!("the {name} header is empty or not valid text")),
    };
    if !list_ok && text.contains(',') {
        return Err(format!(
            "the {name} header holds a list; it must name one value"
        ));
    }
    Ok(Some(text))
}

/// The original method; required when a route filters by method (else an unknown method could
/// slip past a method-restricted rule), GET otherwise.
fn original_method(
    headers: &HeaderMap,
    name: &str,
    routes_use_methods: bool,
) -> Result<Method, String> {
    match header(headers, name, false)? {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("the {name} header is not an HTTP method")),
        None if routes_use_methods => Err(format!(
            "the {name} header is missing (routes filter by method)"
        )),
        None => Ok(Method::GET),
    }
}

/// `X-Original-URL` and `X-Original-Method`, as nginx's `auth_request` sets them; nothing else
/// names the original request here. The URL must be one a real URL parser accepts; its
/// authority goes through the one host parser, and the target is kept exactly as sent.
fn from_nginx(headers: &HeaderMap, routes_use_methods: bool) -> Result<Original, String> {
    const NAME: &str = "X-Original-URL";
    let url = header(headers, "x-original-url", true)?
        .ok_or("the X-Original-URL header is missing (nginx: proxy_set_header X-Original-URL $scheme://$http_host$request_uri)")?;
    if url::Url::parse(url).is_err() {
        return Err(format!("the {NAME} header is not a URL"));
    }
    let (scheme, rest) = match url.split_once("://") {
        Some((s, rest)) if s.eq_ignore_ascii_case("https") => ("https", rest),
        Some((s, rest)) if s.eq_ignore_ascii_case("http") => ("http", rest),
        _ => return Err(format!("the {NAME} header is not an absolute http(s) URL")),
    };
    let split = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(split);
    let canonical_host =
        parse_host(authority).map_err(|e| format!("the {NAME} header's host is invalid: {e}"))?;
    let target = match target {
        "" => "/".to_string(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_string(),
    };
    Ok(Original {
        method: original_method(headers, "x-original-method", routes_use_methods)?,
        scheme,
        host: authority.to_string(),
        canonical_host,
        target,
    })
}

/// `X-Forwarded-Proto`, `-Host`, `-Uri` and `-Method`, as Traefik's `ForwardAuth` and Caddy's
/// `forward_auth` set them; nothing else names the original request here.
fn from_forwarded(
    headers: &HeaderMap,
    default_scheme: &'static str,
    routes_use_methods: bool,
) -> Result<Original, String> {
    let host = header(headers, "x-forwarded-host", false)?
        .ok_or("the X-Forwarded-Host header is missing")?;
    let canonical_host = parse_host(host)
        .map_err(|e| format!("the X-Forwarded-Host header is not a valid host: {e}"))?;
    let target =
        header(headers, "x-forwarded-uri", true)?.ok_or("the X-Forwarded-Uri header is missing")?;
    if !target.starts_with('/') {
        return Err("the X-Forwarded-Uri header must start with '/'".into());
    }
    Ok(Original {
        method: original_method(headers, "x-forwarded-method", routes_use_methods)?,
        scheme: scheme(headers, default_scheme)?,
        host: host.to_string(),
        canonical_host,
        target: target.to_string(),
    })
}

/// The normalised path of an original target, refusing a raw path that an app server could
/// route elsewhere than the decision: the proxy forwards it as sent and cannot be told the
/// canonical form.
fn original_path(target: &str) -> Result<String, String> {
    let raw_path = target.split('?').next().unwrap_or("/");
    let forms = classify_path(raw_path.as_bytes())
        .map_err(|e| format!("the original path is invalid: {e}"))?;
    if !forms.unambiguous {
        return Err(
            "the original path is not in canonical form (dot segments, doubled slashes, encoded \
             separators or characters, backslashes, ';' parameters or '#'), which the app could \
             read differently"
                .into(),
        );
    }
    Ok(forms.matched)
}

/// The answer header saying whether the request's `Authorization` held the gateway's
/// credential (`true`) and must be removed before forwarding: for proxies that cannot rely on
/// copying an empty `Authorization` (Caddy skips or mangles empty values, depending on its
/// version), so they remove the header when this says `true`.
pub const STRIP_AUTHORIZATION: &str = "x-authgate-strip-authorization";

/// The `Authorization` the app should receive, for the proxy to copy onto the forwarded
/// request: the client's own, or empty (nginx then removes it) when it carried the gateway's
/// credential (an API token, or the session with `session.bearer`), and whether it did. A
/// proxy cannot tell the two apart itself, and an app that sees a credential it does not know
/// (git servers, WebDAV) would refuse the request. Always present, like the identity headers.
fn app_authorization(app: &App, headers: &HeaderMap) -> (HeaderValue, bool) {
    let ours =
        api_token::credential_headers(headers, app.auth.token_header(), app.config.session.bearer)
            .contains(&AUTHORIZATION);
    match headers.get(AUTHORIZATION) {
        Some(v) if !ours => (v.clone(), false),
        _ => (HeaderValue::from_static(""), ours),
    }
}

/// `GET /verify`.
pub async fn verify(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    decide(&app, &req, Mode::Verify).await
}

/// `GET /forward`.
pub async fn forward(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    decide(&app, &req, Mode::Forward).await
}

/// `{prefix}/ext-authz/{original path}`, any method: Envoy's HTTP `ext_authz`.
pub async fn envoy(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    decide(&app, &req, Mode::Envoy).await
}

/// The header in which Envoy's HTTP `ext_authz` is told which headers to remove from the
/// request it forwards (a comma list).
pub const ENVOY_HEADERS_TO_REMOVE: &str = "x-envoy-auth-headers-to-remove";

/// The original request as Envoy's HTTP `ext_authz` names it: the method is the check's own,
/// the host its `Host`, the target what follows `{prefix}/ext-authz` in the raw path, as sent.
fn from_envoy(
    headers: &HeaderMap,
    method: &Method,
    target: Option<&str>,
    default_scheme: &'static str,
) -> Result<Original, String> {
    let target = match target {
        Some("") => "/".to_string(),
        Some(t) if t.starts_with('?') => format!("/{t}"),
        Some(t) if t.starts_with('/') => t.to_string(),
        _ => return Err("the original path must follow the ext-authz path".into()),
    };
    let host = header(headers, "host", false)?.ok_or("the Host header is missing")?;
    Original::new(
        method.clone(),
        scheme(headers, default_scheme)?,
        host,
        target,
    )
}

/// `X-Forwarded-Proto`, when the proxy sets it; the public URL's scheme otherwise.
fn scheme(headers: &HeaderMap, default_scheme: &'static str) -> Result<&'static str, String> {
    match header(headers, "x-forwarded-proto", false)? {
        Some(p) if p.eq_ignore_ascii_case("https") => Ok("https"),
        Some(p) if p.eq_ignore_ascii_case("http") => Ok("http"),
        Some(_) => Err("the X-Forwarded-Proto header is not http or https".into()),
        None => Ok(default_scheme),
    }
}

/// What a check decided, before any proxy's wire form.
pub(crate) enum Outcome {
    /// Allowed, for this identity's header values (none on a public route without a session);
    /// with the policy snapshot the decision was made on, whose header names the answer uses.
    Allow(Option<IdentityValues>, Arc<crate::app::Policy>),
    /// A browser is sent to a page (login, second factor) with this answer.
    Redirect(ApiResponse),
    Deny(ApiError),
}

/// What a check asks about: the caller, and the original request as its proxy names it.
pub(crate) struct Check<'a> {
    pub peer_ip: std::net::IpAddr,
    pub client_ip: std::net::IpAddr,
    pub headers: &'a HeaderMap,
    pub mode: Mode,
}

/// Decide for the original request `read` names, with the same routes and policies as
/// proxying. Only a trusted proxy is answered; anything that cannot be read is refused.
pub(crate) async fn check(
    app: &App,
    ask: Check<'_>,
    read: impl FnOnce(&'static str, bool) -> Result<Original, String>,
) -> Outcome {
    if !crate::net::is_trusted(ask.peer_ip, &app.config.server.trusted_proxies) {
        tracing::warn!(peer = %ask.peer_ip, "forward-auth request from an untrusted peer refused");
        return Outcome::Deny(ApiError::Forbidden(
            "forward-auth requests are accepted only from server.trusted_proxies".into(),
        ));
    }
    let cfg = &app.config;
    let default_scheme = if cfg.server.public_url.https {
        "https"
    } else {
        "http"
    };
    let policy = app.policy();
    let read = read(default_scheme, policy.routes_use_methods)
        .and_then(|o| original_path(&o.target).map(|p| (o, p)));
    let (original, path) = match read {
        Ok(read) => read,
        Err(problem) => {
            tracing::warn!(%problem, "forward-auth request cannot be decided");
            return Outcome::Deny(ApiError::Forbidden(problem));
        }
    };
    let target = access::Target {
        host: &original.canonical_host,
        path: &path,
        method: &original.method,
    };
    let headers = ask.headers;
    let decision = access::decide_request(app, &policy, target, headers, ask.client_ip).await;
    app.metrics.decision("forward", decision.verdict.name());
    // Envoy and Traefik pass a redirect on to the browser; nginx's auth_request cannot.
    let redirects = ask.mode != Mode::Verify && wants_html(headers);
    let unauthenticated =
        |token: bool| access::unauthenticated(cfg, decision.route, headers, token);
    let deny = match decision.verdict {
        Verdict::Allow => {
            let identity = decision
                .requester
                .as_ref()
                .map(|r| r.identity().header_values.clone());
            return Outcome::Allow(identity, Arc::clone(&policy));
        }
        Verdict::LoginRequired if redirects => {
            let status = if original.method == Method::GET || original.method == Method::HEAD {
                StatusCode::FOUND
            } else {
                StatusCode::SEE_OTHER
            };
            let location = login_url(cfg, &original.url());
            return Outcome::Redirect(
                ApiResponse::new(status, "text/plain; charset=utf-8", "login required\n")
                    .with_header(LOCATION, &location),
            );
        }
        Verdict::SecondFactorRequired if redirects => {
            let location = access::second_factor_url(cfg, &original.url());
            return Outcome::Redirect(
                ApiResponse::new(
                    StatusCode::FOUND,
                    "text/plain; charset=utf-8",
                    "second factor required\n",
                )
                .with_header(LOCATION, &location),
            );
        }
        Verdict::LoginRequired => unauthenticated(false),
        Verdict::TokenRefused => unauthenticated(true),
        Verdict::TokensNotAccepted => ApiError::Forbidden(access::TOKENS_NOT_ACCEPTED.into()),
        // nginx's auth_request turns any answer but 2xx, 401 and 403 into a 500: /verify
        // refuses the token (the wait is in the log); the others answer 429 with the wait.
        Verdict::RateLimited { .. } if ask.mode == Mode::Verify => unauthenticated(true),
        Verdict::RateLimited { retry_after_secs } => ApiError::RateLimited { retry_after_secs },
        Verdict::SecondFactorRequired => ApiError::SecondFactorRequired,
        Verdict::Forbidden => ApiError::Forbidden("access to this resource is denied".into()),
        Verdict::NoRoute => ApiError::Forbidden("no route matches the original request".into()),
        Verdict::Ambiguous => ApiError::Forbidden(crate::policy::routes::CaseAmbiguous.to_string()),
        Verdict::Unavailable => ApiError::Forbidden("authorization could not be decided".into()),
    };
    Outcome::Deny(deny)
}

/// The headers of the gateway's credentials in `headers` (removed before the app sees the
/// request), and its token header in any case.
pub(crate) fn credentials(app: &App, headers: &HeaderMap) -> Vec<http::HeaderName> {
    let token_header = app.auth.token_header();
    let mut found = api_token::credential_headers(headers, token_header, app.config.session.bearer);
    if let Some(name) = token_header.filter(|n| !found.contains(n)) {
        found.push(name.clone());
    }
    found
}

async fn decide(app: &App, req: &ApiRequest, mode: Mode) -> Result<ApiResponse, ApiError> {
    let ask = Check {
        peer_ip: req.peer_ip,
        client_ip: req.client_ip,
        headers: &req.headers,
        mode,
    };
    let headers = &req.headers;
    let outcome = check(app, ask, |default_scheme, methods| match mode {
        Mode::Verify => from_nginx(headers, methods),
        Mode::Forward => from_forwarded(headers, default_scheme, methods),
        Mode::Envoy => from_envoy(
            headers,
            &req.method,
            req.original_target.as_deref(),
            default_scheme,
        ),
    })
    .await;
    let (identity, policy) = match outcome {
        Outcome::Allow(identity, policy) => (identity, policy),
        Outcome::Redirect(resp) => return Ok(resp),
        Outcome::Deny(e) => return Err(e),
    };
    let mut resp = ApiResponse::new(StatusCode::OK, "text/plain; charset=utf-8", "");
    let names = &policy.headers;
    if mode == Mode::Envoy {
        let plan = envoy_plan(
            headers,
            names,
            identity.as_ref(),
            &credentials(app, headers),
        );
        resp.headers.extend(plan.set);
        let remove: Vec<&str> = plan.remove.iter().map(http::HeaderName::as_str).collect();
        if let Ok(v) = HeaderValue::from_str(&remove.join(", ")) {
            resp.headers
                .push((http::HeaderName::from_static(ENVOY_HEADERS_TO_REMOVE), v));
        }
        return Ok(resp);
    }
    // Every identity header is always present, empty when there is no session (or no
    // name): some proxies (Caddy 2.6's copy_headers) otherwise copy an unresolved
    // placeholder onto the forwarded request instead of removing the header.
    for (name, value) in identity_values(names, identity.as_ref()) {
        resp.headers.push((name.clone(), value));
    }
    let (authorization, strip) = app_authorization(app, headers);
    resp.headers.push((AUTHORIZATION, authorization));
    resp.headers.push((
        http::HeaderName::from_static(STRIP_AUTHORIZATION),
        HeaderValue::from_static(if strip { "true" } else { "false" }),
    ));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn original_request_from_nginx_headers() {
        let h = headers(&[
            ("x-original-url", "https://App.example.com:8443/a/b?c=d"),
            ("x-original-method", "post"),
        ]);
        let o = from_nginx(&h, false).expect("parses");
        assert_eq!(
            o,
            Original {
                method: Method::POST,
                scheme: "https",
                host: "App.example.com:8443".into(),
                canonical_host: "app.example.com".into(),
                target: "/a/b?c=d".into()
            }
        );
        let h = headers(&[("x-original-url", "http://app.example.com?x=1")]);
        assert_eq!(from_nginx(&h, false).expect("parses").target, "/?x=1");
    }

    #[test]
    fn original_request_from_traefik_and_caddy_headers() {
        let h = headers(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/x?y=1"),
            ("x-forwarded-method", "DELETE"),
            ("x-forwarded-prefix", "/ignored"),
            ("x-forwarded-port", "1234"),
        ]);
        let o = from_forwarded(&h, "http", true).expect("parses");
        assert_eq!(o.url(), "https://app.example.com/x?y=1");
        assert_eq!(o.method, Method::DELETE);
    }

    #[test]
    fn each_endpoint_reads_only_its_proxys_headers() {
        // Caddy and Traefik copy the client's headers into the check: an X-Original-URL
        // there is the client's and must not name the request.
        let h = headers(&[
            ("x-original-url", "http://app.example.com/pub/x"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/admin/x"),
        ]);
        assert_eq!(
            from_forwarded(&h, "http", false).expect("ok").target,
            "/admin/x"
        );
        assert_eq!(from_nginx(&h, false).expect("ok").target, "/pub/x");
        let only_forwarded = headers(&[
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/pub/x"),
        ]);
        assert!(from_nginx(&only_forwarded, false)
            .expect_err("nginx mode needs its own header")
            .contains("X-Original-URL"));
        let only_original = headers(&[("x-original-url", "http://app.example.com/pub/x")]);
        assert!(from_forwarded(&only_original, "http", false)
            .expect_err("forward mode needs its own headers")
            .contains("X-Forwarded-Host"));
        // The method follows the same rule.
        let h = headers(&[
            ("x-original-url", "http://app.example.com/x"),
            ("x-forwarded-method", "GET"),
        ]);
        assert!(
            from_nginx(&h, true).is_err(),
            "X-Forwarded-Method is not nginx's"
        );
    }

    #[test]
    fn problems_name_the_header() {
        type Case = (&'static [(&'static str, &'static str)], bool, &'static str);
        let forwarded: &[Case] = &[
            (&[], false, "X-Forwarded-Host"),
            (
                &[("x-forwarded-host", "a.example.com")],
                false,
                "X-Forwarded-Uri",
            ),
            (
                &[
                    ("x-forwarded-host", "a.example.com"),
                    ("x-forwarded-uri", "/"),
                ],
                true,
                "x-forwarded-method",
            ),
            (
                &[("x-forwarded-host", "a b"), ("x-forwarded-uri", "/")],
                false,
                "X-Forwarded-Host",
            ),
            (
                &[
                    ("x-forwarded-host", "a.example.com:abc"),
                    ("x-forwarded-uri", "/"),
                ],
                false,
                "X-Forwarded-Host",
            ),
            (
                &[
                    ("x-forwarded-host", "a.example.com, b.example.com"),
                    ("x-forwarded-uri", "/"),
                ],
                false,
                "x-forwarded-host",
            ),
            (
                &[
                    ("x-forwarded-host", "a.example.com"),
                    ("x-forwarded-host", "b.example.com"),
                    ("x-forwarded-uri", "/"),
                ],
                false,
                "x-forwarded-host",
            ),
            (
                &[
                    ("x-forwarded-host", "a.example.com"),
                    ("x-forwarded-uri", "/pub"),
                    ("x-forwarded-uri", "/admin"),
                ],
                false,
                "x-forwarded-uri",
            ),
            (
                &[
                    ("x-forwarded-host", "a.example.com"),
                    ("x-forwarded-uri", "relative"),
                ],
                false,
                "X-Forwarded-Uri",
            ),
            (
                &[
                    ("x-forwarded-host", "a"),
                    ("x-forwarded-uri", "/"),
                    ("x-forwarded-proto", "gopher"),
                ],
                false,
                "X-Forwarded-Proto",
            ),
            (
                &[
                    ("x-forwarded-host", "a"),
                    ("x-forwarded-uri", "/"),
                    ("x-forwarded-proto", "https, http"),
                ],
                false,
                "x-forwarded-proto",
            ),
            (
                &[
                    ("x-forwarded-host", "a"),
                    ("x-forwarded-uri", "/"),
                    ("x-forwarded-method", "GET,POST"),
                ],
                false,
                "x-forwarded-method",
            ),
        ];
        for (pairs, methods, name) in forwarded {
            let err = from_forwarded(&headers(pairs), "http", *methods).expect_err("refused");
            assert!(
                err.to_lowercase().contains(&name.to_lowercase()),
                "{pairs:?}: {err}"
            );
        }
        let nginx: &[Case] = &[
            (&[], false, "X-Original-URL"),
            (
                &[("x-original-url", "/just/a/path")],
                false,
                "X-Original-URL",
            ),
            (
                &[("x-original-url", "https:///nohost")],
                false,
                "X-Original-URL",
            ),
            (
                &[("x-original-url", "https://user@host/")],
                false,
                "X-Original-URL",
            ),
            (
                &[("x-original-url", "http://[::1")],
                false,
                "X-Original-URL",
            ),
            (
                &[("x-original-url", "http://:80/pub")],
                false,
                "X-Original-URL",
            ),
            (
                &[("x-original-url", "http://127.0.0.1:80:80/")],
                false,
                "X-Original-URL",
            ),
            (
                &[("x-original-url", "http://secure.example.com:abc/")],
                false,
                "X-Original-URL",
            ),
            (&[("x-original-url", "ftp://h/")], false, "X-Original-URL"),
            (
                &[
                    ("x-original-url", "https://h/a"),
                    ("x-original-url", "https://h/b"),
                ],
                false,
                "x-original-url",
            ),
            (
                &[
                    ("x-original-url", "https://h/"),
                    ("x-original-method", "G E T"),
                ],
                false,
                "x-original-method",
            ),
            (
                &[
                    ("x-original-url", "https://h/"),
                    ("x-original-method", "GET, POST"),
                ],
                false,
                "x-original-method",
            ),
            (
                &[("x-original-url", "https://h/")],
                true,
                "x-original-method",
            ),
        ];
        for (pairs, methods, name) in nginx {
            let err = from_nginx(&headers(pairs), *methods).expect_err("refused");
            assert!(
                err.to_lowercase().contains(&name.to_lowercase()),
                "{pairs:?}: {err}"
            );
        }
    }

    #[test]
    fn only_canonical_original_paths_are_decided() {
        for ok in ["/", "/pub/x", "/pub/x?y=../z", "/caf%C3%A9", "/a%20b/"] {
            assert!(original_path(ok).is_ok(), "{ok}");
        }
        for refused in [
            "/admin/../pub",
            "/admin/..;/pub",
            "/admin/%2e%2e/pub",
            "/admin%2f..%2fpub",
            "/admin\\..\\pub",
            "/owner/%2e%2e/pub",
            "/admin/x#/../../pub",
            "/pub#x",
            "//pub",
            "/pub;x",
            "/%70ub",
            "/a/%2e%2e",
        ] {
            assert!(original_path(refused).is_err(), "{refused}");
        }
    }
}
