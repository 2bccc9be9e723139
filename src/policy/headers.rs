//! What the upstream receives: the configured identity header names, those headers stripped
//! in every spelling and set from the session's values, the gateway's cookie removed,
//! `X-Forwarded-*` set. Plain functions over `http` types; the Pingora glue applies the plan.

use std::io::Write as _;
use std::net::IpAddr;

use http::header::COOKIE;
use http::{HeaderMap, HeaderName, HeaderValue};

/// `[headers]`: the names of the identity headers sent upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub user: HeaderName,
    pub email: HeaderName,
    pub name: HeaderName,
    pub groups: HeaderName,
    pub user_id: HeaderName,
    /// How the session was authenticated (`pwd,otp`, ...).
    pub auth_methods: HeaderName,
}

impl IdentityHeaders {
    /// All configured names, for stripping.
    pub fn all(&self) -> [&HeaderName; 6] {
        [
            &self.user,
            &self.email,
            &self.name,
            &self.groups,
            &self.user_id,
            &self.auth_methods,
        ]
    }
}

/// One identity's values for the identity headers, in the order of [`IdentityHeaders::all`]
/// (user, email, name, groups, user id, authentication methods); empty where unset.
pub type IdentityValues = [HeaderValue; 6];

/// A header name as spoofing comparisons see it: lower-case, `_` folded to `-`.
pub fn fold_header_name(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'_' => '-',
            b => b.to_ascii_lowercase() as char,
        })
        .collect()
}

/// Whether two header names are equal once lower-cased with `_` folded to `-`.
fn same_folded(a: &str, b: &str) -> bool {
    let fold = |c: u8| match c {
        b'_' => b'-',
        c => c.to_ascii_lowercase(),
    };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// Header changes to apply to a request before it goes upstream (or is shown by `whoami`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HeaderPlan {
    /// Removed entirely (every value).
    pub remove: Vec<HeaderName>,
    /// Set, replacing any value.
    pub set: Vec<(HeaderName, HeaderValue)>,
}

/// How the request reached the gateway, for `X-Forwarded-*`.
pub struct ForwardedFor<'a> {
    /// The direct peer's address, appended to (or replacing) `X-Forwarded-For`.
    pub peer_ip: IpAddr,
    /// `X-Forwarded-For` to extend, when the direct peer is a trusted proxy.
    pub prior_xff: Option<&'a str>,
    /// The scheme the client used, as told upstream in `X-Forwarded-Proto`: `https` or `http`.
    pub https: bool,
    pub host: Option<&'a str>,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Build the plan for one request: strip spoofable identity headers, strip the gateway's cookie
/// (the names in `cookie_names`) from `Cookie`, then set identity and forwarding headers.
pub fn plan_upstream_headers(
    headers: &HeaderMap,
    names: &IdentityHeaders,
    identity: Option<&IdentityValues>,
    cookie_names: &[impl AsRef<str>],
    fwd: &ForwardedFor<'_>,
) -> HeaderPlan {
    // Room for everything set below without growing: the identity headers, `Cookie`, the
    // three `X-Forwarded-*` and the request id added by the caller.
    let mut plan = HeaderPlan {
        remove: Vec::with_capacity(4),
        set: Vec::with_capacity(12),
    };
    let protected = names.all();
    for name in headers.keys() {
        if protected
            .iter()
            .any(|p| same_folded(p.as_str(), name.as_str()))
            && !plan.remove.contains(name)
        {
            plan.remove.push(name.clone());
        }
    }

    if headers.contains_key(COOKIE) {
        match cookie_without(headers, cookie_names) {
            CookieRewrite::Unchanged => {}
            CookieRewrite::Remove => plan.remove.push(COOKIE),
            CookieRewrite::Set(v) => plan.set.push((COOKIE, v)),
        }
    }

    if let Some(id) = identity {
        for (name, value) in identity_values(names, Some(id)) {
            if !value.is_empty() {
                plan.set.push((name.clone(), value));
            }
        }
    }

    if let Some(v) = forwarded_for(fwd.prior_xff, fwd.peer_ip) {
        plan.set.push((X_FORWARDED_FOR, v));
    }
    plan.set.push((
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if fwd.https { "https" } else { "http" }),
    ));
    match fwd.host.and_then(|h| HeaderValue::from_str(h).ok()) {
        Some(v) => plan.set.push((X_FORWARDED_HOST, v)),
        None => plan.remove.push(X_FORWARDED_HOST),
    }
    plan
}

/// `X-Forwarded-For`: the trusted prior value (if any), then the peer, built with one
/// allocation (the value's own).
fn forwarded_for(prior: Option<&str>, peer: IpAddr) -> Option<HeaderValue> {
    // The longest address text (IPv6 with an embedded IPv4) is 45 bytes.
    const ROOM: usize = 64;
    let mut ip = [0u8; ROOM];
    let len = {
        let mut out = &mut ip[..];
        write!(out, "{peer}").ok()?;
        ROOM - out.len()
    };
    let ip = &ip[..len];
    match prior.map(str::trim).filter(|p| !p.is_empty()) {
        None => HeaderValue::from_bytes(ip).ok(),
        Some(prior) => {
            // Exactly sized, so the value takes the buffer over without copying it.
            let mut v = Vec::with_capacity(prior.len() + 2 + ip.len());
            v.extend_from_slice(prior.as_bytes());
            v.extend_from_slice(b", ");
            v.extend_from_slice(ip);
            HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).ok()
        }
    }
}

/// Each identity header with its value for `identity` (empty values when there is none).
pub fn identity_values<'a>(
    names: &'a IdentityHeaders,
    identity: Option<&IdentityValues>,
) -> [(&'a HeaderName, HeaderValue); 6] {
    let value = |i: usize| match identity {
        Some(values) => values[i].clone(),
        None => HeaderValue::from_static(""),
    };
    [
        (&names.user, value(0)),
        (&names.email, value(1)),
        (&names.name, value(2)),
        (&names.groups, value(3)),
        (&names.user_id, value(4)),
        (&names.auth_methods, value(5)),
    ]
}

/// What Envoy's `ext_authz` is told to do to the request it forwards after an allowed check:
/// set each identity header that has a value; remove the others, the all-underscore spelling
/// of every identity header and any other spelling of one that the request carried (Envoy
/// sets only the exact names), and the gateway's `credentials`. No name is both set and
/// removed, so the order in which Envoy applies the two does not matter.
pub fn envoy_plan(
    headers: &HeaderMap,
    names: &IdentityHeaders,
    identity: Option<&IdentityValues>,
    credentials: &[HeaderName],
) -> HeaderPlan {
    let mut plan = HeaderPlan::default();
    let remove = |name: HeaderName, plan: &mut HeaderPlan| {
        if !plan.remove.contains(&name) {
            plan.remove.push(name);
        }
    };
    for (name, value) in identity_values(names, identity) {
        if value.is_empty() {
            remove(name.clone(), &mut plan);
        } else {
            plan.set.push((name.clone(), value));
        }
        if let Ok(underscored) = HeaderName::from_bytes(name.as_str().replace('-', "_").as_bytes())
        {
            if underscored != name {
                remove(underscored, &mut plan);
            }
        }
    }
    let protected = names.all();
    for name in headers.keys() {
        if protected
            .iter()
            .any(|p| same_folded(p.as_str(), name.as_str()) && *p != name)
        {
            remove(name.clone(), &mut plan);
        }
    }
    for name in credentials {
        remove(name.clone(), &mut plan);
    }
    plan
}

enum CookieRewrite {
    Unchanged,
    Remove,
    Set(HeaderValue),
}

/// The `Cookie` header without the gateway's own cookie(s); other cookies pass verbatim.
fn cookie_without(headers: &HeaderMap, names: &[impl AsRef<str>]) -> CookieRewrite {
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut dropped = false;
    for value in headers.get_all(COOKIE) {
        for pair in value.as_bytes().split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() {
                continue;
            }
            let name = match pair.iter().position(|b| *b == b'=') {
                Some(i) => pair[..i].trim_ascii(),
                None => pair,
            };
            if names.iter().any(|n| n.as_ref().as_bytes() == name) {
                dropped = true;
            } else {
                kept.push(pair);
            }
        }
    }
    let several = headers.get_all(COOKIE).iter().count() > 1;
    if !dropped && !several {
        return CookieRewrite::Unchanged;
    }
    if kept.is_empty() {
        return CookieRewrite::Remove;
    }
    match HeaderValue::from_bytes(&kept.join(&b"; "[..])) {
        Ok(v) => CookieRewrite::Set(v),
        Err(_) => CookieRewrite::Remove,
    }
}

/// Apply a plan to a plain header map (used by `whoami` and tests).
pub fn apply_plan(headers: &mut HeaderMap, plan: &HeaderPlan) {
    for name in &plan.remove {
        headers.remove(name);
    }
    for (name, value) in &plan.set {
        headers.insert(name.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of a user "alice" in group "staff" (the role "user" first).
    fn identity() -> IdentityValues {
        [
            "alice",
            "alice@example.com",
            "Alice A",
            "user,staff",
            "u1",
            "pwd",
        ]
        .map(HeaderValue::from_static)
    }

    /// The default `[headers]` names.
    fn names() -> IdentityHeaders {
        IdentityHeaders {
            user: HeaderName::from_static("remote-user"),
            email: HeaderName::from_static("remote-email"),
            name: HeaderName::from_static("remote-name"),
            groups: HeaderName::from_static("remote-groups"),
            user_id: HeaderName::from_static("remote-user-id"),
            auth_methods: HeaderName::from_static("remote-auth-methods"),
        }
    }

    #[test]
    fn envoy_is_told_to_set_the_identity_and_remove_every_other_spelling() {
        let n = |s: &'static str| HeaderName::from_static(s);
        let all_removed = [
            "remote-user",
            "remote_user",
            "remote-email",
            "remote_email",
            "remote-name",
            "remote_name",
            "remote-groups",
            "remote_groups",
            "remote-user-id",
            "remote_user_id",
            "remote-auth-methods",
            "remote_auth_methods",
        ];
        let mut partial = identity();
        partial[2] = HeaderValue::from_static("");
        type Case<'a> = (
            &'a str,
            Option<IdentityValues>,
            Vec<(&'static str, &'static str)>,
            Vec<&'static str>,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "anonymous",
                None,
                vec![],
                vec![],
                vec![],
                all_removed.to_vec(),
            ),
            (
                "anonymous spoofing a mixed spelling",
                None,
                vec![("remote-user_id", "u0"), ("x-app", "1")],
                vec![],
                vec![],
                [&all_removed[..], &["remote-user_id"]].concat(),
            ),
            (
                "a user; the request's own spellings are replaced or removed",
                Some(identity()),
                vec![("remote-user", "evil"), ("remote-user_id", "u0")],
                vec!["x-authgate-token", "authorization"],
                vec![
                    "remote-user",
                    "remote-email",
                    "remote-name",
                    "remote-groups",
                    "remote-user-id",
                    "remote-auth-methods",
                ],
                vec![
                    "remote_user",
                    "remote_email",
                    "remote_name",
                    "remote_groups",
                    "remote_user_id",
                    "remote_auth_methods",
                    "remote-user_id",
                    "x-authgate-token",
                    "authorization",
                ],
            ),
            (
                "a user without a name",
                Some(partial),
                vec![],
                vec![],
                vec![
                    "remote-user",
                    "remote-email",
                    "remote-groups",
                    "remote-user-id",
                    "remote-auth-methods",
                ],
                vec![
                    "remote_user",
                    "remote_email",
                    "remote-name",
                    "remote_name",
                    "remote_groups",
                    "remote_user_id",
                    "remote_auth_methods",
                ],
            ),
        ];
        for (what, id, sent, credentials, set, removed) in cases {
            let mut headers = HeaderMap::new();
            for (k, v) in sent {
                headers.append(n(k), HeaderValue::from_static(v));
            }
            let credentials: Vec<HeaderName> = credentials.into_iter().map(n).collect();
            let plan = envoy_plan(&headers, &names(), id.as_ref(), &credentials);
            let got_set: Vec<&str> = plan.set.iter().map(|(k, _)| k.as_str()).collect();
            let got_removed: Vec<&str> = plan.remove.iter().map(HeaderName::as_str).collect();
            assert_eq!(got_set, set, "{what}");
            assert_eq!(got_removed, removed, "{what}");
            assert!(
                plan.set.iter().all(|(k, _)| !plan.remove.contains(k)),
                "{what}: a name both set and removed"
            );
            if let Some(id) = &id {
                for (name, value) in &plan.set {
                    let i = names()
                        .all()
                        .iter()
                        .position(|p| *p == name)
                        .expect("known");
                    assert_eq!(value, &id[i], "{what}");
                }
            }
        }
    }

    fn fwd() -> ForwardedFor<'static> {
        ForwardedFor {
            peer_ip: "127.0.0.9".parse().expect("ip"),
            prior_xff: None,
            https: false,
            host: Some("app.example.com"),
        }
    }

    fn run(pairs: &[(&str, &str)], identity: Option<&IdentityValues>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        let plan =
            plan_upstream_headers(&headers, &names(), identity, &["authgate_session"], &fwd());
        apply_plan(&mut headers, &plan);
        headers
    }

    #[test]
    fn spoofed_identity_headers_are_stripped_in_every_spelling() {
        let spoofs = [
            "Remote-User",
            "remote-user",
            "REMOTE-USER",
            "Remote_User",
            "remote_user",
            "REMOTE_user",
            "Remote-Email",
            "remote_email",
            "Remote-Groups",
            "remote_groups",
            "Remote-Name",
            "Remote-User-Id",
            "remote_user_id",
            "Remote_User-Id",
        ];
        for spoof in spoofs {
            let out = run(&[(spoof, "admin"), ("x-other", "kept")], None);
            assert!(
                out.keys()
                    .all(|k| !fold_header_name(k.as_str()).starts_with("remote-")),
                "{spoof} survived: {out:?}"
            );
            assert_eq!(out.get("x-other").map(|v| v.as_bytes()), Some(&b"kept"[..]));
        }
    }

    #[test]
    fn identity_replaces_spoofed_values() {
        let id = identity();
        let out = run(
            &[("remote_user", "root"), ("Remote-User", "root")],
            Some(&id),
        );
        assert_eq!(out.get_all("remote-user").iter().count(), 1);
        assert_eq!(
            out.get("remote-user").map(|v| v.as_bytes()),
            Some(&b"alice"[..])
        );
        assert!(out.get("remote_user").is_none());
        assert_eq!(
            out.get("remote-email").map(|v| v.as_bytes()),
            Some(&b"alice@example.com"[..])
        );
        assert_eq!(
            out.get("remote-groups").map(|v| v.as_bytes()),
            Some(&b"user,staff"[..])
        );
        assert_eq!(
            out.get("remote-name").map(|v| v.as_bytes()),
            Some(&b"Alice A"[..])
        );
        assert_eq!(
            out.get("remote-user-id").map(|v| v.as_bytes()),
            Some(&b"u1"[..])
        );
    }

    #[test]
    fn gateway_cookie_is_removed_and_app_cookies_pass() {
        let cases: [(&[&str], Option<&str>); 6] = [
            (&["authgate_session=abc"], None),
            (&["a=1; authgate_session=abc; b=2"], Some("a=1; b=2")),
            (&["authgate_session=abc;app=x"], Some("app=x")),
            (&["app=x"], Some("app=x")),
            (&["a=1", "authgate_session=abc", "b=2"], Some("a=1; b=2")),
            (
                &["authgate_session_other=1; authgate_session"],
                Some("authgate_session_other=1"),
            ),
        ];
        for (cookies, want) in cases {
            let pairs: Vec<(&str, &str)> = cookies.iter().map(|c| ("cookie", *c)).collect();
            let out = run(&pairs, None);
            let got: Vec<_> = out
                .get_all(COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap_or("?").to_string())
                .collect();
            match want {
                None => assert!(got.is_empty(), "{cookies:?} -> {got:?}"),
                Some(w) => assert_eq!(got, vec![w.to_string()], "{cookies:?}"),
            }
        }
    }

    #[test]
    fn forwarding_headers_are_set_not_trusted() {
        let out = run(
            &[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-host", "evil")],
            None,
        );
        assert_eq!(
            out.get("x-forwarded-for").map(|v| v.as_bytes()),
            Some(&b"127.0.0.9"[..])
        );
        assert_eq!(
            out.get("x-forwarded-host").map(|v| v.as_bytes()),
            Some(&b"app.example.com"[..])
        );
        assert_eq!(
            out.get("x-forwarded-proto").map(|v| v.as_bytes()),
            Some(&b"http"[..])
        );
    }

    #[test]
    fn forwarded_for_appends_the_peer_to_a_trusted_prior_value() {
        let v4: IpAddr = "10.0.0.7".parse().expect("ip");
        let v6: IpAddr = "2001:db8::ffff:1.2.3.4".parse().expect("ip");
        let longest: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
            .parse()
            .expect("ip");
        for (prior, peer, want) in [
            (None, v4, "10.0.0.7"),
            (Some(""), v4, "10.0.0.7"),
            (Some("  "), v4, "10.0.0.7"),
            (Some("1.1.1.1"), v4, "1.1.1.1, 10.0.0.7"),
            (Some(" 1.1.1.1, 2.2.2.2 "), v4, "1.1.1.1, 2.2.2.2, 10.0.0.7"),
            (None, v6, "2001:db8::ffff:102:304"),
            (Some("1.1.1.1"), v6, "1.1.1.1, 2001:db8::ffff:102:304"),
            (None, longest, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ] {
            let got = forwarded_for(prior, peer).expect("a value");
            assert_eq!(got, want, "{prior:?} + {peer}");
        }
    }
}
