//! The access decision for a request to a protected app, shared by the proxy path and the
//! forward-auth endpoints: the route for the (canonical) host and normalised path, then who
//! the request is from (a session, or an API token where the route accepts them), then the
//! route's policy for them.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, Method};

use crate::app::App;
use crate::auth::api_token::{self, Challenge, LiveToken, Presented, Via};
use crate::auth::authenticator::Principal;
use crate::auth::session::Identity;
use crate::config::Config;
use crate::error::ApiError;
use crate::policy::routes::{decide, find_route, Access, Caller, Route, RoutePolicy};

/// Why a token is refused on a route with `tokens = false`.
pub const TOKENS_NOT_ACCEPTED: &str = "API tokens are not accepted here; sign in instead";

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it (public routes may have no requester).
    Allow,
    /// A session (or, where accepted, an API token) is needed and there is none.
    LoginRequired,
    /// An API token was presented and is unknown, expired or revoked (or several were).
    TokenRefused,
    /// An API token was presented where the route refuses tokens (`tokens = false`).
    TokensNotAccepted,
    /// The client has used up its failed attempts (bad tokens count).
    RateLimited { retry_after_secs: u64 },
    /// Refused by the route's policy or groups.
    Forbidden,
    /// No route matches.
    NoRoute,
    /// The store could not be read on a route that needs it: fail closed.
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
            Verdict::TokenRefused => "token_refused",
            Verdict::TokensNotAccepted => "tokens_not_accepted",
            Verdict::RateLimited { .. } => "rate_limited",
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

/// A request authenticated by an API token.
#[derive(Debug, Clone)]
pub struct TokenUse {
    pub live: Arc<LiveToken>,
    pub via: Via,
}

/// Who an allowed request is from.
#[derive(Debug, Clone)]
pub enum Requester {
    Session(Principal),
    Token(TokenUse),
}

impl Requester {
    /// The identity upstreams are told.
    pub fn identity(&self) -> &Identity {
        match self {
            Requester::Session(p) => p.identity(),
            Requester::Token(t) => &t.live.identity,
        }
    }

    /// Whether this request gave a second factor (a token never does).
    fn second_factor(&self) -> bool {
        match self {
            Requester::Session(p) => crate::auth::second_factor::gave_second_factor(&p.session.amr),
            Requester::Token(_) => false,
        }
    }
}

/// Who a request is from, as far as the authenticator could tell.
#[derive(Debug, Clone)]
pub enum Seen {
    /// No credential names a live session (and no token was presented).
    Nobody,
    Principal(Principal),
    Token(TokenUse),
    /// A presented token is not valid; `retry_after_secs` once the client has used up its
    /// failures.
    BadToken {
        retry_after_secs: Option<u64>,
    },
    /// A token was presented on a route that refuses tokens, and no session.
    TokenNotAccepted,
    /// The store could not be read: nobody can be confirmed.
    Unknown,
}

/// Ask the authenticator who a request is from, for a route that does (or does not) accept
/// API tokens. A presented token decides alone where tokens count (a cookie beside it is not
/// consulted); a bad one counts as a failed attempt of `counted` (the client's address; `None`
/// where nothing is refused for it, a public route). A store failure is [`Seen::Unknown`]
/// (logged), so routes that need a session fail closed.
pub async fn seen(app: &App, headers: &HeaderMap, tokens: bool, counted: Option<IpAddr>) -> Seen {
    let now = crate::app::now_secs();
    let presented = api_token::presented(headers, app.auth.token_header());
    if tokens {
        match presented {
            Presented::Nothing => {}
            Presented::One { token, via } => {
                return match app.auth.check_token(&token, now).await {
                    Ok(Some(live)) => Seen::Token(TokenUse { live, via }),
                    Ok(None) => bad_token(app, counted, now).await,
                    Err(e) => {
                        tracing::error!(error = %e, "token check failed");
                        Seen::Unknown
                    }
                };
            }
            Presented::Unclear => return bad_token(app, counted, now).await,
        }
    }
    match app.auth.authenticate(headers, now).await {
        Ok(Some(p)) => Seen::Principal(p),
        Ok(None) if !tokens && presented != Presented::Nothing => Seen::TokenNotAccepted,
        Ok(None) => Seen::Nobody,
        Err(e) => {
            tracing::error!(error = %e, "session check failed");
            Seen::Unknown
        }
    }
}

/// A refused token: answered with the wait when the client has already used up its failures
/// (as every password path does, before counting), else counted against the client.
async fn bad_token(app: &App, counted: Option<IpAddr>, now: i64) -> Seen {
    let Some(client_ip) = counted else {
        // A public route serves the request anyway: a stale monitor token there must not
        // use up the failures of everyone behind the same address.
        return Seen::BadToken {
            retry_after_secs: None,
        };
    };
    let counters = app.store.counters();
    tracing::info!(client = %client_ip, "API token refused");
    match app.client_limit.check(counters, client_ip, now).await {
        Ok(Err(secs)) => {
            return Seen::BadToken {
                retry_after_secs: Some(secs),
            }
        }
        Ok(Ok(())) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the client's failed attempts"),
    }
    if let Err(e) = app
        .client_limit
        .record_failure(counters, client_ip, now)
        .await
    {
        tracing::warn!(error = %e, "could not count a failed token attempt");
    }
    Seen::BadToken {
        retry_after_secs: None,
    }
}

/// A decision with what it was based on.
#[derive(Debug)]
pub struct Decision<'a> {
    pub verdict: Verdict,
    pub route: Option<&'a Route>,
    /// The matched route's place in the policy's routes (and labels).
    pub index: Option<usize>,
    /// Who the request is from, when it is allowed for someone (public routes may have none).
    pub requester: Option<Requester>,
}

/// Decide for a request to a canonical `host` (from [`crate::policy::host::parse_host`]; empty
/// when the request names none) and a *normalised* `path`: the route first, then who the
/// request is from as that route counts credentials (nothing is checked for a route that
/// denies everyone), then the route's rule.
pub async fn decide_request<'a>(
    app: &App,
    policy: &'a crate::app::Policy,
    target: Target<'_>,
    headers: &HeaderMap,
    client_ip: IpAddr,
) -> Decision<'a> {
    let found = find_route(&policy.routes, target.host, target.path, target.method);
    let Ok(Some((index, route))) = found else {
        let verdict = if found.is_err() {
            Verdict::Ambiguous
        } else {
            Verdict::NoRoute
        };
        return Decision {
            verdict,
            route: None,
            index: None,
            requester: None,
        };
    };
    let seen = if route.policy == RoutePolicy::Deny {
        Seen::Nobody
    } else {
        let counted = (route.policy == RoutePolicy::Authenticated).then_some(client_ip);
        seen(app, headers, route.tokens, counted).await
    };
    let (verdict, requester) = evaluate(route, seen);
    Decision {
        verdict,
        route: Some(route),
        index: Some(index),
        requester,
    }
}

/// What a request asks for, as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Canonical host (empty when the request names none).
    pub host: &'a str,
    /// Normalised path.
    pub path: &'a str,
    pub method: &'a Method,
}

/// The verdict of `route` for who a request is from (and the requester, when there is one the
/// route lets through).
pub fn evaluate(route: &Route, seen: Seen) -> (Verdict, Option<Requester>) {
    let requester = match seen {
        Seen::Principal(p) if p.complete() => Some(Requester::Session(p)),
        Seen::Token(t) => Some(Requester::Token(t)),
        // A session still waiting for its second factor is no session here.
        Seen::Principal(_) | Seen::Nobody => None,
        // Public routes serve anyone and deny routes no one: a refused credential changes
        // neither.
        _ if route.policy != RoutePolicy::Authenticated => None,
        Seen::BadToken {
            retry_after_secs: Some(secs),
        } => {
            return (
                Verdict::RateLimited {
                    retry_after_secs: secs,
                },
                None,
            )
        }
        Seen::BadToken { .. } => return (Verdict::TokenRefused, None),
        Seen::TokenNotAccepted => return (Verdict::TokensNotAccepted, None),
        Seen::Unknown => return (Verdict::Unavailable, None),
    };
    let caller = requester.as_ref().map(|r| Caller {
        groups: r.identity().groups.as_slice(),
        second_factor: r.second_factor(),
    });
    let verdict = match decide(route, caller) {
        Access::Allow => Verdict::Allow,
        Access::LoginRequired => Verdict::LoginRequired,
        Access::Forbidden => Verdict::Forbidden,
        Access::SecondFactorRequired => Verdict::SecondFactorRequired,
    };
    (verdict, requester)
}

/// The 401 for a request without a usable credential: on a route that accepts tokens it says
/// how to authenticate (`WWW-Authenticate`: Bearer, and Basic for clients that are not a
/// browser's script).
pub fn unauthenticated(
    config: &Config,
    route: Option<&Route>,
    headers: &HeaderMap,
    invalid_token: bool,
) -> ApiError {
    match route {
        Some(r) if r.tokens => ApiError::CredentialsRequired(Challenge::new(
            &config.ui.title,
            api_token::offers_basic(headers),
            invalid_token,
        )),
        _ => ApiError::Unauthorized,
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
