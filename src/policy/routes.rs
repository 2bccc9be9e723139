//! Routes: the validated `[[routes]]` model, which route a request belongs to (never decided
//! by the path's letter case), and what its policy allows the caller.

use std::net::SocketAddr;

use http::Method;
use serde::Deserialize;

use super::host::HostPattern;

/// A route's access policy (`policy` in `[[routes]]`).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoutePolicy {
    /// Anyone, with or without a session.
    Public,
    /// A live session (and one of the route's groups, when it names any).
    Authenticated,
    /// Nobody.
    Deny,
}

/// Where a route's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The built-in page showing what an upstream would receive.
    Whoami,
    /// An HTTP(S) server.
    Http {
        target: Target,
        tls: bool,
        /// Host name for SNI and certificate verification.
        sni: String,
    },
    /// No upstream: the route only answers forward-auth checks.
    None,
}

/// Where an HTTP(S) upstream listens: an address as written, or a host name looked up when
/// connecting (so a container that moves is followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Addr(SocketAddr),
    Name { host: String, port: u16 },
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub host: HostPattern,
    /// Normalised path prefix without trailing slash ("/" stays "/").
    pub path: String,
    /// Upper-case methods; empty = all.
    pub methods: Vec<Method>,
    pub upstream: Upstream,
    pub policy: RoutePolicy,
    /// The caller must be in one of these (the role counts); empty: any session.
    pub groups: Vec<String>,
    /// Forward the path exactly as sent even when it is not in canonical form (for apps that
    /// need encoded slashes or `;` parameters); the decision still uses the normalised path.
    pub raw_path: bool,
    /// Only sessions that gave a second factor pass.
    pub second_factor: bool,
    /// API tokens are accepted (`tokens = false`: sessions only, e.g. a browser-only app).
    pub tokens: bool,
}

/// Whether `path` (normalised) lies within the segment-wise prefix `prefix` (normalised).
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    prefix_rest(path, prefix, false).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// [`path_has_prefix`] ignoring ASCII letter case.
fn path_has_prefix_any_case(path: &str, prefix: &str) -> bool {
    prefix_rest(path, prefix, true).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn prefix_rest<'p>(path: &'p str, prefix: &str, any_case: bool) -> Option<&'p str> {
    if prefix == "/" {
        return Some("");
    }
    let head = path.get(..prefix.len())?;
    let same = if any_case {
        head.eq_ignore_ascii_case(prefix)
    } else {
        head == prefix
    };
    same.then(|| &path[prefix.len()..])
}

/// The path's letter case alone decides which rule applies (`/ADMIN` against a rule for
/// `/admin`): refused, because apps that route case-insensitively (Express by default, IIS)
/// would serve the other rule's resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the letter case of the path decides which access rule applies; use the path's usual spelling"
)]
pub struct CaseAmbiguous;

/// The first route matching host, normalised path and method, with its index. The match must
/// not depend on the path's letter case.
pub fn find_route<'a>(
    routes: &'a [Route],
    host: &str,
    path: &str,
    method: &Method,
) -> Result<Option<(usize, &'a Route)>, CaseAmbiguous> {
    let first = |any_case: bool| {
        routes.iter().enumerate().find(|(_, r)| {
            r.host.matches(host)
                && if any_case {
                    path_has_prefix_any_case(path, &r.path)
                } else {
                    path_has_prefix(path, &r.path)
                }
                && (r.methods.is_empty() || r.methods.contains(method))
        })
    };
    let exact = first(false);
    let any_case = first(true);
    if exact.map(|(i, _)| i) != any_case.map(|(i, _)| i) {
        return Err(CaseAmbiguous);
    }
    Ok(exact)
}

/// What a request may do on a route, given who (if anyone) is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allow,
    /// A session is needed.
    LoginRequired,
    Forbidden,
    /// Allowed, once the session has given a second factor.
    SecondFactorRequired,
}

/// Who asks, as a route's rule sees them: their groups (the role included) and whether their
/// session gave a second factor.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub groups: &'a [String],
    pub second_factor: bool,
}

/// The access decision of a route for a caller (`None`: no valid session).
pub fn decide(route: &Route, caller: Option<Caller<'_>>) -> Access {
    match (route.policy, caller) {
        (RoutePolicy::Deny, _) => Access::Forbidden,
        (RoutePolicy::Public, _) => Access::Allow,
        (RoutePolicy::Authenticated, None) => Access::LoginRequired,
        (RoutePolicy::Authenticated, Some(c)) => {
            if !(route.groups.is_empty() || route.groups.iter().any(|g| c.groups.contains(g))) {
                Access::Forbidden
            } else if route.second_factor && !c.second_factor {
                Access::SecondFactorRequired
            } else {
                Access::Allow
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(path_has_prefix("/api", "/api"));
        assert!(path_has_prefix("/api/x", "/api"));
        assert!(!path_has_prefix("/apix", "/api"));
        assert!(!path_has_prefix("/ap", "/api"));
        assert!(path_has_prefix("/anything", "/"));
    }

    fn route(path: &str, policy: RoutePolicy, methods: &[Method], groups: &[&str]) -> Route {
        Route {
            host: HostPattern::Any,
            path: path.into(),
            methods: methods.to_vec(),
            upstream: Upstream::Whoami,
            policy,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            raw_path: false,
            second_factor: false,
            tokens: true,
        }
    }

    #[test]
    fn first_matching_route_wins_and_methods_filter() {
        let routes = vec![
            route("/admin", RoutePolicy::Deny, &[], &[]),
            route("/api", RoutePolicy::Public, &[Method::GET], &[]),
            route("/", RoutePolicy::Authenticated, &[], &[]),
        ];
        let find = |p: &str, m: Method| {
            find_route(&routes, "h", p, &m)
                .expect("unambiguous")
                .map(|(i, _)| i)
        };
        assert_eq!(find("/admin/x", Method::GET), Some(0));
        assert_eq!(find("/administrator", Method::GET), Some(2));
        assert_eq!(find("/api/x", Method::GET), Some(1));
        assert_eq!(find("/api/x", Method::POST), Some(2));
        let none: Vec<Route> = vec![route("/only", RoutePolicy::Public, &[], &[])];
        assert_eq!(
            find_route(&none, "h", "/other", &Method::GET).map(|r| r.is_none()),
            Ok(true)
        );
    }

    #[test]
    fn letter_case_never_decides_the_rule() {
        let routes = vec![
            route("/admin", RoutePolicy::Deny, &[], &[]),
            route("/Pub", RoutePolicy::Public, &[], &[]),
            route("/", RoutePolicy::Authenticated, &[], &[]),
        ];
        let find = |p: &str| find_route(&routes, "h", p, &Method::GET).map(|r| r.map(|(i, _)| i));
        assert_eq!(find("/admin/x"), Ok(Some(0)));
        assert_eq!(find("/ADMIN"), Err(CaseAmbiguous));
        assert_eq!(find("/Admin/x"), Err(CaseAmbiguous));
        assert_eq!(find("/Pub"), Ok(Some(1)));
        assert_eq!(find("/pub/x"), Err(CaseAmbiguous));
        assert_eq!(find("/Other"), Ok(Some(2)));
        assert_eq!(find("/adminx"), Ok(Some(2)));
        assert_eq!(find("/ADMINX"), Ok(Some(2)));
        assert_eq!(find("/caf%C3%A9"), Ok(Some(2)));
    }

    #[test]
    fn decisions_follow_policy_groups_and_second_factor() {
        let admins = vec!["user".to_string(), "admins".to_string()];
        let plain = vec!["user".to_string()];
        let deny = route("/", RoutePolicy::Deny, &[], &[]);
        let public = route("/", RoutePolicy::Public, &[], &[]);
        let authed = route("/", RoutePolicy::Authenticated, &[], &[]);
        let grouped = route("/", RoutePolicy::Authenticated, &[], &["admins"]);
        let strong = Route {
            second_factor: true,
            ..grouped.clone()
        };
        let who = |groups: &'static Vec<String>, second_factor| {
            Some(Caller {
                groups,
                second_factor,
            })
        };
        let admins: &'static Vec<String> = Box::leak(Box::new(admins));
        let plain: &'static Vec<String> = Box::leak(Box::new(plain));
        // (route, caller) → access
        let cases = [
            (&deny, who(admins, true), Access::Forbidden),
            (&public, None, Access::Allow),
            (&authed, None, Access::LoginRequired),
            (&authed, who(plain, false), Access::Allow),
            (&grouped, None, Access::LoginRequired),
            (&grouped, who(plain, true), Access::Forbidden),
            (&grouped, who(admins, false), Access::Allow),
            (&strong, None, Access::LoginRequired),
            (&strong, who(plain, false), Access::Forbidden),
            (&strong, who(admins, false), Access::SecondFactorRequired),
            (&strong, who(admins, true), Access::Allow),
        ];
        for (i, (route, caller, want)) in cases.into_iter().enumerate() {
            assert_eq!(decide(route, caller), want, "case {i}");
        }
    }
}
