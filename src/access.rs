//! The access decision for a request to a protected app, shared by the proxy path and the
//! forward-auth endpoints: route match on the normalised path, session check, route policy.

use http::{HeaderMap, Method};

use crate::app::App;
use std::sync::Arc;

use crate::auth::session::Identity;
use crate::policy::routes::{decide, find_route, Access, Route, RoutePolicy};

/// What to do with a request.
#[derive(Debug)]
pub enum Verdict {
    /// Serve it; `auth` is the session if one was presented (public routes may have none).
    Allow,
    /// A session is needed and there is none.
    LoginRequired,
    /// Refused by the route's policy or groups.
    Forbidden,
    /// No route matches.
    NoRoute,
    /// The session store could not be read on a route that needs it: fail closed.
    Unavailable,
    /// The path's letter case alone decides the rule (see [`crate::policy::routes::CaseAmbiguous`]).
    Ambiguous,
}

impl Verdict {
    /// The metrics label.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::LoginRequired => "login_required",
            Verdict::Forbidden => "forbidden",
            Verdict::NoRoute => "no_route",
            Verdict::Unavailable => "unavailable",
            Verdict::Ambiguous => "ambiguous",
        }
    }
}

/// The metrics label of a route's policy.
pub fn policy_name(route: &Route) -> &'static str {
    match route.policy {
        RoutePolicy::Deny => "deny",
        RoutePolicy::Public => "public",
        RoutePolicy::Authenticated if !route.groups.is_empty() => "groups",
        RoutePolicy::Authenticated => "authenticated",
    }
}

/// A decision with what it was based on.
#[derive(Debug)]
pub struct Decision<'a> {
    pub verdict: Verdict,
    pub route: Option<&'a Route>,
    /// The matched route's metrics label.
    pub label: Option<&'a std::sync::Arc<String>>,
    /// Who the request is from, if it carries a live session (public routes may have none).
    pub identity: Option<Arc<Identity>>,
    /// The session came as a bearer token (to be kept from the upstream).
    pub bearer_used: bool,
}

/// Decide for a request to a canonical `host` (from [`crate::policy::host::parse_host`]; empty
/// when the request names none) and a *normalised* `path`.
pub fn evaluate<'a>(
    app: &App,
    policy: &'a crate::app::Policy,
    host: &str,
    path: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Decision<'a> {
    let found = find_route(&policy.routes, host, path, method);
    let Ok(Some((index, route))) = found else {
        return Decision {
            verdict: if found.is_err() {
                Verdict::Ambiguous
            } else {
                Verdict::NoRoute
            },
            route: None,
            label: None,
            identity: None,
            bearer_used: false,
        };
    };
    let seen = match app.identify(headers) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "session check failed");
            if route.policy == RoutePolicy::Public {
                None
            } else {
                return Decision {
                    verdict: Verdict::Unavailable,
                    route: Some(route),
                    label: policy.labels.get(index),
                    identity: None,
                    bearer_used: false,
                };
            }
        }
    };
    let verdict = match decide(route, seen.as_ref().map(|s| s.identity.groups.as_slice())) {
        Access::Allow => Verdict::Allow,
        Access::LoginRequired => Verdict::LoginRequired,
        Access::Forbidden => Verdict::Forbidden,
    };
    let bearer_used = seen.as_ref().is_some_and(|s| s.via_bearer);
    Decision {
        verdict,
        route: Some(route),
        label: policy.labels.get(index),
        identity: seen.map(|s| s.identity),
        bearer_used,
    }
}

/// Whether the client is a browser (gets pages and redirects rather than JSON): decided by
/// `Accept` and `Sec-Fetch-Mode`, never by `User-Agent`.
pub fn wants_html(headers: &HeaderMap) -> bool {
    let accept_html = headers.get_all(http::header::ACCEPT).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.to_ascii_lowercase().contains("text/html"))
    });
    let navigate = headers
        .get("sec-fetch-mode")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"navigate"));
    accept_html || navigate
}

/// The login page URL that brings the user back to `original` afterwards.
pub fn login_url(app: &App, original: &str) -> String {
    let cfg = &app.config;
    let rd: String = form_urlencoded::byte_serialize(original.as_bytes()).collect();
    format!(
        "{}{}/login?rd={rd}",
        cfg.server.public_url.origin, cfg.auth.prefix
    )
}
