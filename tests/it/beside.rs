//! authgate beside real nginx (auth_request) and real Caddy (forward_auth), configured with the
//! examples in docs/; and Traefik's ForwardAuth protocol, spoken directly.

use serde_json::json;

use crate::support::proxies::{caddy, nginx, Proxy};
use crate::support::{Client, Echo, TestServer};

const ROUTES: &str = "[[routes]]\npath = \"/public\"\npolicy = \"public\"\n\n[[routes]]\npath = \"/\"\npolicy = \"authenticated\"\n";

/// A gateway with `routes` and, in front of it, `proxy` (nginx or Caddy) to `echo`; the
/// gateway's public URL is the proxy's. Each needs the other's port, so a gateway that has to
/// start again on another port gets a new proxy too.
fn behind(proxy: fn(u16, u16) -> Proxy, routes: &str, echo: &Echo) -> (TestServer, Proxy) {
    let mut front = None;
    let gateway = TestServer::start_with(|port| {
        let p = proxy(port, echo.addr.port());
        let public_url = format!("public_url = \"http://127.0.0.1:{}\"", p.port);
        front = Some(p);
        (public_url, routes.to_string())
    });
    (gateway, front.expect("the proxy started with the gateway"))
}

/// Identity headers with a non-empty value.
fn remote_headers(h: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    h.as_object()
        .expect("headers")
        .iter()
        .filter(|(k, _)| {
            k.to_ascii_lowercase()
                .replace('_', "-")
                .starts_with("remote-")
        })
        .filter(|(_, v)| v.as_array().is_some_and(|a| a.iter().any(|x| x != "")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Owner created through the proxy (exercising its /auth pass-through); returns the client.
fn owner_through(proxy_port: u16) -> Client {
    let mut c = Client::new(proxy_port);
    let r = c.post_json(
        "/auth/setup",
        &json!({"email": "owner@example.com", "password": "owner-password-1", "username": "owner"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    c
}

fn check_identity_and_spoofing(proxy_port: u16) {
    let mut c = owner_through(proxy_port);
    let spoofs = [
        ("Remote-User", "evil"),
        ("Remote-Groups", "admin"),
        ("Remote-Email", "evil@x.io"),
    ];
    let r = c.get_with("/app/page?x=1", &spoofs);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["uri"], "/app/page?x=1");
    let h = r.echoed_headers();
    assert_eq!(h["remote-user"], json!(["owner"]));
    assert_eq!(h["remote-email"], json!(["owner@example.com"]));
    assert_eq!(h["remote-groups"], json!(["owner"]));
    assert!(h["remote-user-id"][0].is_string());
    assert!(!r.body.contains("evil"), "{}", r.body);
    // Underscore spellings never arrive either.
    let r = c.get_with(
        "/app",
        &[("Remote_User", "evil"), ("remote_groups", "admin")],
    );
    let leaked: Vec<_> = remote_headers(&r.echoed_headers())
        .into_iter()
        .filter(|(_, v)| v.to_string().contains("evil") || v.to_string().contains("admin"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    // Anonymous on a public route: the spoof is removed, nothing is set.
    let mut anon = Client::new(proxy_port);
    let r = anon.get_with(
        "/public/x",
        &[("Remote-User", "evil"), ("Remote_User", "evil")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(remote_headers(&r.echoed_headers()).is_empty(), "{}", r.body);
    // A garbage cookie is no session.
    let r = anon.get_with(
        "/app",
        &[
            ("cookie", "authgate_session=garbage"),
            ("Remote-User", "evil"),
        ],
    );
    assert!(
        r.status == 401 || r.status == 302,
        "{} {}",
        r.status,
        r.body
    );
}

/// An API token through the proxy reaches the app as the owner, while the token itself never
/// does: in `Authorization` (Bearer or Basic) it is removed, in `X-Authgate-Token` too, and an
/// app's own `Authorization` sent beside the token header arrives unchanged.
fn check_tokens(proxy_port: u16) {
    use base64::Engine as _;
    let mut c = Client::new(proxy_port);
    assert_eq!(c.login("owner", "owner-password-1").status, 200);
    let r = c.post_json("/auth/tokens", &json!({"name": "ci"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.json()["data"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("git:{token}"))
    );
    let bearer = format!("Bearer {token}");
    let ways: [&[(&str, &str)]; 3] = [
        &[("authorization", &bearer)],
        &[("authorization", &basic)],
        &[
            ("x-authgate-token", &token),
            ("authorization", "Bearer app-jwt"),
        ],
    ];
    for headers in ways {
        let mut anon = Client::new(proxy_port);
        let r = anon.get_with("/app/repo.git/info/refs", headers);
        assert_eq!(r.status, 200, "{headers:?}: {}", r.body);
        let h = r.echoed_headers();
        assert_eq!(h["remote-user"], json!(["owner"]), "{headers:?}");
        assert_eq!(h["remote-auth-methods"], json!(["token"]), "{headers:?}");
        assert!(h.get("x-authgate-strip-authorization").is_none(), "{h}");
        assert!(
            !r.body.contains(&token[4..]),
            "the token reached the app: {}",
            r.body
        );
        let app_auth: Vec<&str> = h["authorization"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .filter(|v| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let want: Vec<&str> = headers
            .iter()
            .filter(|(k, v)| {
                *k == "authorization" && !v.contains(&token) && !v.starts_with("Basic")
            })
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(app_auth, want, "{headers:?}");
    }
    let mut anon = Client::new(proxy_port);
    let r = anon.get_with("/app", &[("authorization", "Bearer agt_not-a-token")]);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("x-upstream").is_none());
    // The proxy passes the challenge on, Basic included, so git and curl know to send one.
    let r = anon.get("/app");
    assert_eq!(r.status, 401, "{}", r.body);
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=") && challenge.contains(", Basic realm="),
        "{challenge:?}"
    );
}

#[test]
fn nginx_auth_request_passes_the_session_identity_and_never_a_spoofed_one() {
    let echo = Echo::start();
    let (_gateway, proxy) = behind(nginx, ROUTES, &echo);
    let nginx_port = proxy.port;
    check_identity_and_spoofing(nginx_port);
    check_tokens(nginx_port);
    // No session: nginx answers 401, and nothing reaches the app.
    let mut anon = Client::new(nginx_port);
    let r = anon.get_with("/app", &[("Remote-User", "owner")]);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("x-upstream").is_none());
    let r = anon.send("POST", "/app", Some(&json!({"a": 1})), &[]);
    assert_eq!(r.status, 401);
}

#[test]
fn caddy_forward_auth_passes_the_session_identity_and_redirects_browsers() {
    let echo = Echo::start();
    let (_gateway, proxy) = behind(caddy, ROUTES, &echo);
    let caddy_port = proxy.port;
    check_identity_and_spoofing(caddy_port);
    check_tokens(caddy_port);
    let mut anon = Client::new(caddy_port);
    let r = anon.get_with(
        "/app/x?y=1",
        &[("accept", "text/html"), ("Remote-User", "owner")],
    );
    assert_eq!(r.status, 302, "{}", r.body);
    let location = r.header("location").expect("location");
    let want = format!("http://127.0.0.1:{caddy_port}/auth/login?rd=http%3A%2F%2F127.0.0.1%3A{caddy_port}%2Fapp%2Fx%3Fy%3D1");
    assert_eq!(location, want);
    let r = anon.get("/app");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("x-upstream").is_none());
    // The login page itself is reachable through Caddy, and a form login sends the browser back.
    let page = anon.get_with(
        &format!("/auth/login?rd=http%3A%2F%2F127.0.0.1%3A{caddy_port}%2Fapp%2Fx"),
        &[("accept", "text/html")],
    );
    assert_eq!(page.status, 200);
    let r = anon.send_form(
        "/auth/login",
        &[
            ("identifier", "owner"),
            ("password", "owner-password-1"),
            ("rd", &format!("http://127.0.0.1:{caddy_port}/app/x")),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location").as_deref(),
        Some(format!("http://127.0.0.1:{caddy_port}/app/x").as_str())
    );
    assert_eq!(
        anon.get("/app/x").echoed_headers()["remote-user"],
        json!(["owner"])
    );
}

/// The headers Traefik's ForwardAuth sends for a request (trustForwardHeader: false).
fn traefik_headers<'a>(
    method: &'a str,
    host: &'a str,
    uri: &'a str,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("x-forwarded-method", method),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", host),
        ("x-forwarded-uri", uri),
        ("x-forwarded-for", "203.0.113.9"),
    ]
}

#[test]
fn traefik_forward_auth_protocol() {
    let s = TestServer::start(&format!(
        "[[routes]]\npath = \"/admin\"\npolicy = \"deny\"\n\n{ROUTES}"
    ));
    let mut owner = s.setup_owner();
    let cookie = owner.cookie.clone().expect("cookie");
    let mut with_cookie = traefik_headers("GET", "app.example.com", "/dashboard?tab=1");
    with_cookie.push(("cookie", cookie.as_str()));
    let r = owner.get_with("/auth/forward", &with_cookie);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("remote-user").as_deref(), Some("owner"));
    assert_eq!(r.header("remote-groups").as_deref(), Some("owner"));
    assert!(r.body.is_empty());

    let mut anon = s.client();
    let mut browser = traefik_headers("GET", "app.example.com", "/dashboard?tab=1");
    browser.push(("accept", "text/html"));
    let r = anon.get_with("/auth/forward", &browser);
    assert_eq!(r.status, 302);
    assert!(r
        .header("location")
        .expect("location")
        .ends_with("/auth/login?rd=https%3A%2F%2Fapp.example.com%2Fdashboard%3Ftab%3D1"));
    let mut post = traefik_headers("POST", "app.example.com", "/form");
    post.push(("accept", "text/html"));
    assert_eq!(
        anon.get_with("/auth/forward", &post).status,
        303,
        "a browser's POST is redirected with 303"
    );
    assert_eq!(
        anon.get_with(
            "/auth/forward",
            &traefik_headers("GET", "app.example.com", "/x")
        )
        .status,
        401
    );
    let mut denied = traefik_headers("GET", "app.example.com", "/admin/x");
    denied.push(("cookie", cookie.as_str()));
    assert_eq!(owner.get_with("/auth/forward", &denied).status, 403);
    // X-Forwarded-Prefix and -Port never influence the decision.
    let mut tricky = traefik_headers("GET", "app.example.com", "/admin");
    tricky.extend([
        ("cookie", cookie.as_str()),
        ("x-forwarded-prefix", "/public"),
        ("x-forwarded-port", "1"),
    ]);
    assert_eq!(owner.get_with("/auth/forward", &tricky).status, 403);

    // The shipped Traefik example asks this endpoint and copies exactly these headers.
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/traefik-dynamic.yml"
    ))
    .expect("example");
    assert!(example.contains("address: \"http://127.0.0.1:8080/auth/forward\""));
    for h in [
        "Remote-User",
        "Remote-Email",
        "Remote-Name",
        "Remote-Groups",
        "Remote-User-Id",
    ] {
        assert!(example.contains(&format!("- {h}\n")), "{h} missing");
    }
}

#[test]
fn the_readme_shows_exactly_the_tested_examples() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README");
    for file in ["nginx.conf", "Caddyfile", "traefik-dynamic.yml"] {
        let example = std::fs::read_to_string(format!("{root}/docs/{file}")).expect("example");
        assert!(
            readme.contains(&example),
            "README's copy of docs/{file} differs"
        );
    }
}

const DECISION_ROUTES: &str = "[[routes]]\npath = \"/admin\"\npolicy = \"deny\"\n\n[[routes]]\npath = \"/owner\"\npolicy = \"authenticated\"\ngroups = [\"owner\"]\n\n[[routes]]\npath = \"/pub\"\npolicy = \"public\"\n\n[[routes]]\npath = \"/\"\npolicy = \"authenticated\"\n";

/// Every header a forward-auth endpoint might decide on, as a client would spoof them to make
/// `/owner/x` look like the public `/pub/x`.
fn spoofed_decision_headers(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("X-Original-URL", format!("http://127.0.0.1:{port}/pub/x")),
        ("X-Original-Method", "GET".into()),
        ("X-Forwarded-Uri", "/pub/x".into()),
        ("X-Forwarded-Host", "elsewhere.example.com".into()),
        ("X-Forwarded-Method", "GET".into()),
        ("X-Forwarded-Proto", "https".into()),
    ]
}

/// Behind `proxy_port`: the owner, a plain user and an anonymous client try to reach what
/// they may not, with every decision header spoofed one at a time and all together.
fn spoofing_never_changes_the_decision(proxy_port: u16) {
    let owner = owner_through(proxy_port);
    let mut user = Client::new(proxy_port);
    let r = user.post_json(
        "/auth/register",
        &json!({"email": "user@example.com", "password": "user password 1"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let spoofs = spoofed_decision_headers(proxy_port);
    let mut sets: Vec<Vec<(&str, &str)>> =
        spoofs.iter().map(|(k, v)| vec![(*k, v.as_str())]).collect();
    sets.push(spoofs.iter().map(|(k, v)| (*k, v.as_str())).collect());
    for headers in &sets {
        // A plain user on an owner-only path.
        let r = user.clone().get_with("/owner/x", headers);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
        assert!(
            r.header("x-upstream").is_none(),
            "{headers:?} reached the app"
        );
        // Anyone on a denied path.
        let r = owner.clone().get_with("/admin/x", headers);
        assert_eq!(r.status, 403, "{headers:?}");
        assert!(r.header("x-upstream").is_none());
        // Nobody without a session on a protected path.
        let r = Client::new(proxy_port).get_with("/owner/x", headers);
        assert_eq!(r.status, 401, "{headers:?}");
        assert!(r.header("x-upstream").is_none());
    }
    // The spoofs change nothing for what is allowed either.
    let all: Vec<(&str, &str)> = spoofs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = owner.clone().get_with("/owner/x", &all);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.echoed_headers()["remote-user"], json!(["owner"]));
    assert_eq!(r.json()["uri"], "/owner/x");
}

/// Raw requests through the proxy that an app could route to a protected path, though the
/// gateway, on the normalised path, would see a public one: refused, never forwarded.
fn confused_paths_never_reach_the_app(proxy_port: u16) {
    for path in [
        "/admin/../pub",
        "/admin/..;/pub",
        "/admin/%2e%2e/pub",
        "/admin%2f..%2fpub",
        "/owner/%2e%2e/pub",
        "/admin/x#/../../pub",
        "/pub/..;/admin",
        "/%70ub",
    ] {
        let resp = crate::support::raw_request(
            proxy_port,
            format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{proxy_port}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        let lower = resp.to_ascii_lowercase();
        assert!(
            !lower.contains("x-upstream: echo"),
            "{path} reached the app: {resp}"
        );
        assert!(
            resp.starts_with("HTTP/1.1 4"),
            "{path}: {}",
            resp.lines().next().unwrap_or("")
        );
    }
    // A host spelling the proxy reads one way and a parser another is refused too.
    let resp = crate::support::raw_request(
        proxy_port,
        format!(
            "GET /pub/x HTTP/1.1\r\nHost: 127.0.0.1:{proxy_port}:80\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(
        !resp.to_ascii_lowercase().contains("x-upstream: echo"),
        "{resp}"
    );
    // The plain spelling still works.
    let resp = crate::support::raw_request(
        proxy_port,
        format!("GET /pub/x HTTP/1.1\r\nHost: 127.0.0.1:{proxy_port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert!(
        resp.to_ascii_lowercase().contains("x-upstream: echo"),
        "{resp}"
    );
}

#[test]
fn nginx_spoofed_decision_headers_and_confused_paths_change_nothing() {
    let echo = Echo::start();
    let (_gateway, proxy) = behind(nginx, DECISION_ROUTES, &echo);
    let nginx_port = proxy.port;
    spoofing_never_changes_the_decision(nginx_port);
    confused_paths_never_reach_the_app(nginx_port);
}

#[test]
fn caddy_spoofed_decision_headers_and_confused_paths_change_nothing() {
    let echo = Echo::start();
    let (_gateway, proxy) = behind(caddy, DECISION_ROUTES, &echo);
    let caddy_port = proxy.port;
    spoofing_never_changes_the_decision(caddy_port);
    confused_paths_never_reach_the_app(caddy_port);
}
