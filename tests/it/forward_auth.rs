//! Forward-auth decisions: trust, header parsing, fail-closed answers, single sign-on.

use serde_json::json;

use crate::support::{Client, TestServer};

const ROUTES: &str = r#"
[[routes]]
path = "/admin"
policy = "deny"

[[routes]]
path = "/ops"
policy = "authenticated"
groups = ["ops"]

[[routes]]
path = "/public"
policy = "public"

[[routes]]
host = "*.example.com"
path = "/"
policy = "authenticated"

[[routes]]
path = "/"
policy = "authenticated"
"#;

fn verify(c: &mut Client, url: &str, extra: &[(&str, &str)]) -> crate::support::Reply {
    let mut headers = vec![("x-original-url", url), ("x-original-method", "GET")];
    headers.extend_from_slice(extra);
    c.get_with("/auth/verify", &headers)
}

#[test]
fn verify_answers_200_401_403_with_identity_headers() {
    let s = TestServer::start(ROUTES);
    let mut owner = s.setup_owner();
    let r = verify(&mut owner, "https://app.example.com/x?y=1", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.is_empty());
    assert_eq!(r.header("remote-user").as_deref(), Some("owner"));
    assert_eq!(
        r.header("remote-email").as_deref(),
        Some("owner@example.com")
    );
    assert_eq!(r.header("remote-groups").as_deref(), Some("owner"));
    assert_eq!(r.header("remote-name").as_deref(), Some(""));
    assert_eq!(
        verify(&mut owner, "https://app.example.com/admin", &[]).status,
        403
    );
    assert_eq!(
        verify(&mut owner, "https://app.example.com/ops/x", &[]).status,
        403,
        "groups"
    );
    // The path is normalised before matching, as on the proxy path.
    for sneaky in [
        "/x/../admin",
        "/%61dmin",
        "/admin;x",
        "//admin/",
        "/a/%2e%2e/admin",
        "/admin%2Fx",
    ] {
        let r = verify(&mut owner, &format!("https://app.example.com{sneaky}"), &[]);
        assert_eq!(r.status, 403, "{sneaky}");
    }

    let mut anon = s.client();
    let r = verify(&mut anon, "https://app.example.com/x", &[]);
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED".to_string()));
    let r = verify(
        &mut anon,
        "https://app.example.com/x",
        &[("accept", "text/html")],
    );
    assert_eq!(r.status, 401, "/verify never redirects: nginx decides");
    let r = verify(&mut anon, "https://app.example.com/public/x", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("remote-user").as_deref(),
        Some(""),
        "anonymous: empty identity"
    );
}

#[test]
fn never_200_on_garbage() {
    let s = TestServer::start(ROUTES);
    let mut c = s.client();
    let garbage_cookies = [
        "authgate_session=",
        "authgate_session=x",
        "authgate_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "authgate_session=\"quoted\"",
        "authgate_session",
        "=authgate_session",
        "authgate_session=a; authgate_session=b; authgate_session=c; authgate_session=d; authgate_session=e",
    ];
    for cookie in garbage_cookies {
        let r = verify(&mut c, "https://app.example.com/x", &[("cookie", cookie)]);
        assert_eq!(r.status, 401, "{cookie}");
    }
    let bad_urls = [
        "",
        "/relative",
        "app.example.com/x",
        "https:///x",
        "ftp://app.example.com/",
        "https://a b/",
        "https://u@app.example.com/",
        "https://app.example.com/%zz",
        "https://app.example.com/..",
        "https://app.example.com/a%00",
    ];
    for url in bad_urls {
        let r = c.get_with(
            "/auth/verify",
            &[("x-original-url", url), ("x-original-method", "GET")],
        );
        assert!(r.status == 401 || r.status == 403, "{url}: {}", r.status);
    }
    let r = c.get("/auth/forward");
    assert_eq!(r.status, 403);
    assert!(
        r.json()["message"]
            .as_str()
            .expect("message")
            .contains("X-Forwarded-Host"),
        "{}",
        r.body
    );
    let r = c.get_with("/auth/forward", &[("x-forwarded-host", "app.example.com")]);
    assert!(
        r.json()["message"]
            .as_str()
            .expect("message")
            .contains("X-Forwarded-Uri"),
        "{}",
        r.body
    );
}

#[test]
fn only_trusted_proxies_may_ask() {
    let s = TestServer::start_full("trusted_proxies = [\"10.0.0.0/8\"]", ROUTES);
    let mut owner = s.setup_owner();
    let r = verify(&mut owner, "https://app.example.com/x", &[]);
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN".to_string()));
    assert!(r.header("remote-user").is_none());
    let r = owner.get_with(
        "/auth/forward",
        &[
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/"),
            ("x-forwarded-method", "GET"),
        ],
    );
    assert_eq!(r.status, 403);
}

#[test]
fn forward_auth_is_asked_with_any_method_and_no_csrf_refusal() {
    let s = TestServer::start(ROUTES);
    let mut owner = s.setup_owner();
    let r = owner.send(
        "POST",
        "/auth/verify",
        None,
        &[
            ("x-original-url", "https://app.example.com/form"),
            ("x-original-method", "POST"),
            ("sec-fetch-site", "cross-site"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn one_login_works_across_subdomains_with_cookie_domain() {
    let s = TestServer::start_full(
        "public_url = \"https://auth.example.com\"",
        &format!("[session]\ncookie_domain = \"example.com\"\n{ROUTES}"),
    );
    let mut c = s.client();
    let r = c.post_json(
        "/auth/setup",
        &json!({"email": "owner@example.com", "password": "owner-password-1"}),
    );
    assert_eq!(r.status, 201);
    let set_cookie = r.header("set-cookie").expect("cookie");
    assert!(
        set_cookie.starts_with("__Secure-authgate_session="),
        "{set_cookie}"
    );
    assert!(
        set_cookie.contains("Domain=example.com") && set_cookie.contains("Secure"),
        "{set_cookie}"
    );
    // The browser sends the same cookie to app.example.com; Caddy/Traefik ask about it.
    let r = c.get_with(
        "/auth/forward",
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/"),
            ("x-forwarded-method", "GET"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("remote-email").as_deref(),
        Some("owner@example.com")
    );
    // And a login redirect for another subdomain points at the auth host with that rd.
    let mut anon = s.client();
    let r = anon.get_with(
        "/auth/forward",
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "wiki.example.com"),
            ("x-forwarded-uri", "/page"),
            ("accept", "text/html"),
        ],
    );
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location").as_deref(),
        Some("https://auth.example.com/auth/login?rd=https%3A%2F%2Fwiki.example.com%2Fpage")
    );
}
