//! Forward auth: `GET /verify` (nginx `auth_request`) and `GET /forward` (Traefik `ForwardAuth`,
//! Caddy `forward_auth`) decide for the original request a trusted proxy names, with the same
//! routes and policies as proxying. Never 200 unless the decision is "allow".

use std::sync::Arc;

use http::header::LOCATION;
use http::{HeaderMap, Method, StatusCode};

use super::response::ApiResponse;
use super::ApiRequest;
use crate::access::{self, login_url, wants_html, Verdict};
use crate::app::App;
use crate::error::ApiError;
use crate::proxy::headers::identity_values;
use crate::proxy::routing::normalise_path;

/// Which endpoint answers: they differ only for a missing session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// nginx: 401, nginx's `error_page` does the rest.
    Verify,
    /// Traefik and Caddy: browsers are redirected to the login page.
    Forward,
}

/// The request the proxy asks about.
#[derive(Debug, PartialEq, Eq)]
struct Original {
    method: Method,
    scheme: String,
    /// Host as sent (may carry a port).
    host: String,
    /// Path and query as sent.
    target: String,
}

impl Original {
    fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.target)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(s) if !s.trim().is_empty() => Ok(Some(s.trim())),
            _ => Err(format!("the {name} header is empty or not valid text")),
        },
    }
}

/// The original method; required when a route filters by method (else an unknown method could
/// slip past a method-restricted rule), GET otherwise.
fn original_method(
    headers: &HeaderMap,
    name: &str,
    routes_use_methods: bool,
) -> Result<Method, String> {
    match header(headers, name)? {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("the {name} header is not an HTTP method")),
        None if routes_use_methods => Err(format!(
            "the {name} header is missing (routes filter by method)"
        )),
        None => Ok(Method::GET),
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
}

/// Read the original request from `X-Original-URL`/`-Method` (nginx) or
/// `X-Forwarded-Proto`/`-Host`/`-Uri`/`-Method` (Traefik, Caddy). Errors name the header.
fn original_request(
    headers: &HeaderMap,
    default_scheme: &str,
    routes_use_methods: bool,
) -> Result<Original, String> {
    if let Some(url) = header(headers, "x-original-url")? {
        let lower = url.to_ascii_lowercase();
        let (scheme, rest) = if lower.starts_with("https://") {
            ("https", &url[8..])
        } else if lower.starts_with("http://") {
            ("http", &url[7..])
        } else {
            return Err("the X-Original-URL header is not an absolute http(s) URL".into());
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (host, target) = rest.split_at(split);
        if !valid_host(host) {
            return Err("the X-Original-URL header has no valid host".into());
        }
        let target = match target {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_string(),
        };
        let method = original_method(headers, "x-original-method", routes_use_methods)?;
        return Ok(Original {
            method,
            scheme: scheme.into(),
            host: host.into(),
            target,
        });
    }
    let host = header(headers, "x-forwarded-host")?
        .ok_or("the X-Forwarded-Host header is missing (or send X-Original-URL)")?;
    // A list means several proxies appended: the first is the client's.
    let host = host.split(',').next().unwrap_or("").trim();
    if !valid_host(host) {
        return Err("the X-Forwarded-Host header is not a valid host".into());
    }
    let target = header(headers, "x-forwarded-uri")?
        .ok_or("the X-Forwarded-Uri header is missing (or send X-Original-URL)")?;
    if !target.starts_with('/') {
        return Err("the X-Forwarded-Uri header must start with '/'".into());
    }
    let scheme = match header(headers, "x-forwarded-proto")? {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        Some(_) => return Err("the X-Forwarded-Proto header is not http or https".into()),
        None => default_scheme,
    };
    let method = original_method(headers, "x-forwarded-method", routes_use_methods)?;
    Ok(Original {
        method,
        scheme: scheme.into(),
        host: host.into(),
        target: target.into(),
    })
}

/// `GET /verify`.
pub async fn verify(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    decide(&app, &req, Mode::Verify)
}

/// `GET /forward`.
pub async fn forward(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    decide(&app, &req, Mode::Forward)
}

fn decide(app: &App, req: &ApiRequest, mode: Mode) -> Result<ApiResponse, ApiError> {
    if !crate::net::is_trusted(req.peer_ip, &app.config.server.trusted_proxies) {
        tracing::warn!(peer = %req.peer_ip, "forward-auth request from an untrusted peer refused");
        return Err(ApiError::Forbidden(
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
    let routes_use_methods = policy.routes_use_methods;
    let original =
        original_request(&req.headers, default_scheme, routes_use_methods).map_err(|problem| {
            tracing::warn!(%problem, "forward-auth request cannot be decided");
            ApiError::Forbidden(problem)
        })?;
    let raw_path = original.target.split('?').next().unwrap_or("/");
    let path = normalise_path(raw_path)
        .map_err(|e| ApiError::Forbidden(format!("the original path is invalid: {e}")))?;
    let decision = access::evaluate(
        app,
        &policy,
        &original.host,
        &path,
        &original.method,
        &req.headers,
    );
    app.metrics.decision("forward", decision.verdict.name());
    match decision.verdict {
        Verdict::Allow => {
            let mut resp = ApiResponse::new(StatusCode::OK, "text/plain; charset=utf-8", "");
            // Every identity header is always present, empty when there is no session (or no
            // name): some proxies (Caddy 2.6's copy_headers) otherwise copy an unresolved
            // placeholder onto the forwarded request instead of removing the header.
            let id = decision.identity.as_deref();
            for (name, value) in identity_values(&policy.headers, id) {
                resp.headers.push((name.clone(), value));
            }
            Ok(resp)
        }
        Verdict::LoginRequired => {
            if mode == Mode::Forward && wants_html(&req.headers) {
                let status = if original.method == Method::GET || original.method == Method::HEAD {
                    StatusCode::FOUND
                } else {
                    StatusCode::SEE_OTHER
                };
                let location = login_url(app, &original.url());
                return Ok(ApiResponse::new(
                    status,
                    "text/plain; charset=utf-8",
                    "login required\n",
                )
                .with_header(LOCATION, &location));
            }
            Err(ApiError::Unauthorized)
        }
        Verdict::Forbidden => Err(ApiError::Forbidden(
            "access to this resource is denied".into(),
        )),
        Verdict::NoRoute => Err(ApiError::Forbidden(
            "no route matches the original request".into(),
        )),
        Verdict::Unavailable => Err(ApiError::Forbidden(
            "authorization could not be decided".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
        let o = original_request(&h, "http", false).expect("parses");
        assert_eq!(
            o,
            Original {
                method: Method::POST,
                scheme: "https".into(),
                host: "App.example.com:8443".into(),
                target: "/a/b?c=d".into()
            }
        );
        let h = headers(&[("x-original-url", "http://app.example.com?x=1")]);
        assert_eq!(
            original_request(&h, "http", false).expect("parses").target,
            "/?x=1"
        );
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
        let o = original_request(&h, "http", true).expect("parses");
        assert_eq!(o.url(), "https://app.example.com/x?y=1");
        assert_eq!(o.method, Method::DELETE);
    }

    #[test]
    fn problems_name_the_header() {
        type Case = (&'static [(&'static str, &'static str)], bool, &'static str);
        let cases: &[Case] = &[
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
                &[
                    ("x-original-url", "https://h/"),
                    ("x-original-method", "G E T"),
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
        for (pairs, methods, name) in cases {
            let err = original_request(&headers(pairs), "http", *methods).expect_err("refused");
            assert!(
                err.to_lowercase().contains(&name.to_lowercase()),
                "{pairs:?}: {err}"
            );
        }
    }
}
