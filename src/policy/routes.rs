//! Route matching and the access decision: which route a request belongs to (never decided by
//! the path's letter case) and what its policy allows the caller.

use http::Method;

use crate::config::{Policy, Route};

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
    use crate::policy::host::HostPattern;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(path_has_prefix("/api", "/api"));
        assert!(path_has_prefix("/api/x", "/api"));
        assert!(!path_has_prefix("/apix", "/api"));
        assert!(!path_has_prefix("/ap", "/api"));
        assert!(path_has_prefix("/anything", "/"));
    }

    fn route(path: &str, policy: Policy, methods: &[Method], groups: &[&str]) -> Route {
        Route {
            host: HostPattern::Any,
            path: path.into(),
            methods: methods.to_vec(),
            upstream: Upstream::Whoami,
            policy,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            raw_path: false,
        }
    }

    #[test]
    fn first_matching_route_wins_and_methods_filter() {
        let routes = vec![
            route("/admin", Policy::Deny, &[], &[]),
            route("/api", Policy::Public, &[Method::GET], &[]),
            route("/", Policy::Authenticated, &[], &[]),
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
        let none: Vec<Route> = vec![route("/only", Policy::Public, &[], &[])];
        assert_eq!(
            find_route(&none, "h", "/other", &Method::GET).map(|r| r.is_none()),
            Ok(true)
        );
    }

    #[test]
    fn letter_case_never_decides_the_rule() {
        let routes = vec![
            route("/admin", Policy::Deny, &[], &[]),
            route("/Pub", Policy::Public, &[], &[]),
            route("/", Policy::Authenticated, &[], &[]),
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
