//! The access decision for a request to a protected app, shared by the proxy path and the
//! forward-auth endpoints: the route for the (canonical) host and normalised path, then the
//! route's policy for who the authenticator says the request is from.

use http::{HeaderMap, Method};

use crate::auth::authenticator::{Credential, Principal};
use crate::config::Config;
use crate::policy::routes::{decide, find_route, Access, Caller, Route, RoutePolicy};

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it (public routes may have no principal).
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
    /// The route needs a session that gave a second factor, and this one did not.
    SecondFactorRequired,
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
            Verdict::SecondFactorRequired => "second_factor_required",
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

/// Who a request is from, as far as the authenticator could tell.
#[derive(Debug, Clone)]
pub enum Seen {
    /// No credential names a live session.
    Nobody,
    Principal(Principal),
    /// The store could not be read: nobody can be confirmed.
    Unknown,
}

/// Ask the authenticator who a request is from; a store failure is [`Seen::Unknown`] (logged),
/// so routes that need a session fail closed.
pub async fn seen(app: &crate::app::App, headers: &HeaderMap) -> Seen {
    match app.auth.authenticate(headers, crate::app::now_secs()).await {
        Ok(Some(p)) => Seen::Principal(p),
        Ok(None) => Seen::Nobody,
        Err(e) => {
            tracing::error!(error = %e, "session check failed");
            Seen::Unknown
        }
    }
}

/// A decision with what it was based on.
#[derive(Debug)]
pub struct Decision<'a> {
    pub verdict: Verdict,
    pub route: Option<&'a Route>,
    /// The matched route's metrics label.
    pub label: Option<&'a std::sync::Arc<String>>,
    /// Who the request is from, when it is allowed for someone (public routes may have none).
    pub principal: Option<Principal>,
}

impl Decision<'_> {
    /// The credential came as a bearer session token, which the upstream must not receive.
    pub fn bearer_used(&self) -> bool {
        self.principal
            .as_ref()
            .is_some_and(|p| p.credential == Credential::BearerSession)
    }
}

/// Decide for a request to a canonical `host` (from [`crate::policy::host::parse_host`]; empty
/// when the request names none) and a *normalised* `path`, from `seen`.
pub fn evaluate<'a>(
    policy: &'a crate::app::Policy,
    host: &str,
    path: &str,
    method: &Method,
    seen: Seen,
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
            principal: None,
        };
    };
    let label = policy.labels.get(index);
    let principal = match seen {
        Seen::Principal(p) if p.complete() => Some(p),
        // A session still waiting for its second factor is no session here.
        Seen::Principal(_) | Seen::Nobody => None,
        Seen::Unknown if route.policy == RoutePolicy::Public => None,
        Seen::Unknown => {
            return Decision {
                verdict: Verdict::Unavailable,
                route: Some(route),
                label,
                principal: None,
            }
        }
    };
    let caller = principal.as_ref().map(|p| Caller {
        groups: p.identity().groups.as_slice(),
        second_factor: crate::auth::second_factor::gave_second_factor(&p.session.amr),
    });
    let verdict = match decide(route, caller) {
        Access::Allow => Verdict::Allow,
        Access::LoginRequired => Verdict::LoginRequired,
        Access::Forbidden => Verdict::Forbidden,
        Access::SecondFactorRequired => Verdict::SecondFactorRequired,
    };
    Decision {
        verdict,
        route: Some(route),
        label,
        principal,
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
pub fn login_url(config: &Config, original: &str) -> String {
    page_back_to(config, "/login", original)
}

/// The two-step verification page that brings the user back to `original` afterwards.
pub fn second_factor_url(config: &Config, original: &str) -> String {
    page_back_to(config, "/2fa", original)
}

fn page_back_to(config: &Config, page: &str, original: &str) -> String {
    let rd: String = form_urlencoded::byte_serialize(original.as_bytes()).collect();
    format!(
        "{}{}{page}?rd={rd}",
        config.server.public_url.origin, config.auth.prefix
    )
}
