//! The hostile-input corpus: table-driven requests against the API, the proxy path and the
//! forward-auth endpoints. Oracle: a clear 4xx (or the one correct answer), never a 5xx, a hang,
//! or a 200 that should not be.

use serde_json::json;

use crate::support::{raw_request, Echo, TestServer};

fn server(echo: &Echo) -> TestServer {
    let up = echo.upstream();
    TestServer::start(&format!(
        r#"
[[routes]]
path = "/admin"
policy = "deny"

[[routes]]
path = "/ops"
upstream = "{up}"
policy = "authenticated"
groups = ["ops"]

[[routes]]
path = "/pub"
upstream = "{up}"
policy = "public"

[[routes]]
path = "/"
upstream = "{up}"
policy = "authenticated"
"#
    ))
}

/// Status of a raw exchange; panics on a hang (the read times out) or a 5xx.
fn status_of(port: u16, request: &[u8]) -> (u16, String) {
    let resp = raw_request(port, request);
    let status: u16 = resp
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no response to {:?}: {resp:?}",
                String::from_utf8_lossy(request)
            )
        });
    assert!(
        status < 500,
        "5xx for {:?}: {resp}",
        String::from_utf8_lossy(request)
    );
    (status, resp)
}

fn get(port: u16, path: &str, extra: &str) -> (u16, String) {
    status_of(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: app.example.com\r\n{extra}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

#[test]
fn path_tricks_never_reach_denied_or_grouped_routes() {
    let echo = Echo::start();
    let s = server(&echo);
    let c = s.setup_owner();
    let cookie = format!("Cookie: {}\r\n", c.cookie.clone().expect("cookie"));
    let deny_spellings = [
        "/admin",
        "/admin/",
        "/ADMIN/../admin",
        "//admin",
        "///admin//x",
        "/./admin",
        "/x/../admin",
        "/x/./../admin",
        "/%61dmin",
        "/%2561dmin",
        "/admin%2f",
        "/admin%2Fx",
        "/admin;x=1",
        "/admin;/x",
        "/x/..;/admin",
        "/%2e%2e/%2e%2e/admin",
        "/x/%2e%2e/admin",
        "/x/%252e%252e/admin",
        "/x/.%2e/admin",
        "/x%2f..%2fadmin",
        "/x%5c..%5cadmin",
        "/x\\..\\admin",
        "/admin?x=1",
        "/admin#frag",
        "/admin%3Bx",
    ];
    for path in deny_spellings {
        let (status, resp) = get(s.port, path, &cookie);
        assert!(status == 403 || status == 400, "{path}: {status}");
        assert!(
            !resp.contains("\"x-upstream\"") && !resp.contains("x-upstream: echo"),
            "{path} reached the app"
        );
    }
    let group_spellings = ["/ops", "/%6fps", "/x/../ops/y", "/ops;a", "//ops"];
    for path in group_spellings {
        let (status, _) = get(s.port, path, &cookie);
        assert_eq!(status, 403, "{path}: the owner is not in ops");
    }
    let bad = [
        "/%",
        "/%zz",
        "/%2",
        "/a%00",
        "/a%2500",
        "/..",
        "/a/../..",
        "/%2e%2e",
        "/%C0%AE%C0%AE/%2e%2e/x",
        "/x/%C0%AE%C0%AE/admin",
        "/%ff",
    ];
    for path in bad {
        let (status, _) = get(s.port, path, &cookie);
        assert!(status == 400 || status == 403, "{path}: {status}");
    }
}

#[test]
fn garbage_cookies_are_no_session() {
    let echo = Echo::start();
    let s = server(&echo);
    let owner = s.setup_owner();
    let good = owner.cookie.clone().expect("cookie");
    let big = "A".repeat(8000);
    let cookies = [
        "authgate_session=".to_string(),
        "authgate_session=%%%".to_string(),
        format!("authgate_session={big}"),
        "authgate_session=\"\"".to_string(),
        "authgate_session; authgate_session=;".to_string(),
        ";;;;;===;;;".to_string(),
        "authgate_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
        "Authgate_Session=whatever".to_string(),
        "authgate_session=a".repeat(50),
    ];
    for c in &cookies {
        for path in ["/private", "/auth/me"] {
            let (status, _) = get(s.port, path, &format!("Cookie: {c}\r\n"));
            assert_eq!(status, 401, "{path} with {c:.60}");
        }
        let (status, _) = get(
            s.port,
            "/auth/verify",
            &format!("Cookie: {c}\r\nX-Original-URL: http://app.example.com/private\r\nX-Original-Method: GET\r\n"),
        );
        assert_eq!(status, 401, "verify with {c:.60}");
    }
    // Non-UTF-8 bytes in the cookie header.
    let (status, _) = status_of(s.port, b"GET /private HTTP/1.1\r\nHost: x\r\nCookie: authgate_session=\xff\xfe\x80\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 401);
    // A garbage duplicate next to the good cookie still finds the good one; nothing else does.
    let (status, _) = get(
        s.port,
        "/private",
        &format!("Cookie: authgate_session=junk; {good}\r\n"),
    );
    assert_eq!(status, 200);
}

#[test]
fn hostile_json_gets_a_clear_4xx() {
    let echo = Echo::start();
    let s = server(&echo);
    s.setup_owner();
    let deep = format!("{}{}", "{\"a\":".repeat(3000), "}".repeat(3000));
    let bodies: Vec<(&str, String)> = vec![
        (
            "/auth/login",
            json!({"identifier": 5, "password": true}).to_string(),
        ),
        (
            "/auth/login",
            json!({"identifier": ["a"], "password": {"x": 1}}).to_string(),
        ),
        (
            "/auth/login",
            json!({"identifier": "a\u{0}b", "password": "p\u{0}"}).to_string(),
        ),
        (
            "/auth/login",
            json!({"identifier": "x".repeat(60_000), "password": "y"}).to_string(),
        ),
        ("/auth/login", deep.clone()),
        (
            "/auth/register",
            json!({"email": "a@b.co\u{0}", "password": "long enough pw"}).to_string(),
        ),
        (
            "/auth/register",
            json!({"email": "é@x.io", "password": "x".repeat(5000)}).to_string(),
        ),
        (
            "/auth/register",
            json!({"email": null, "password": null}).to_string(),
        ),
        (
            "/auth/register",
            "{\"email\": \"a@b.co\", \"email\": \"c@d.co\", \"password\": 1}".to_string(),
        ),
        ("/auth/setup", "\u{feff}{}".to_string()),
        ("/auth/login", "\"just a string\"".to_string()),
        (
            "/auth/login",
            "{\"identifier\": \"\\ud800\", \"password\": \"x\"}".to_string(),
        ),
        ("/auth/login", "nul\0byte".to_string()),
    ];
    for (path, body) in &bodies {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, resp) = status_of(s.port, req.as_bytes());
        assert!(
            (400..500).contains(&status),
            "{path} {:.80}: {status}",
            body
        );
        assert!(resp.contains("\"success\":false"), "{resp}");
    }
    // Non-UTF-8 JSON.
    let (status, _) = status_of(
        s.port,
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 6\r\nConnection: close\r\n\r\n{\"\xff\":1",
    );
    assert_eq!(status, 400);
}

#[test]
fn spoofed_identity_and_forwarding_headers_do_nothing() {
    let echo = Echo::start();
    let s = server(&echo);
    s.setup_owner();
    let spoofs = [
        "Remote-User: owner",
        "remote_user: owner",
        "REMOTE-USER: owner",
        "Remote-Groups: ops",
        "remote_groups: ops",
        "Remote-Email: owner@example.com",
        "Remote-User-Id: 1",
        "X-Forwarded-User: owner",
        "X-Remote-User: owner",
    ];
    for spoof in spoofs {
        let (status, _) = get(s.port, "/private", &format!("{spoof}\r\n"));
        assert_eq!(status, 401, "{spoof}");
        let (status, _) = get(s.port, "/ops", &format!("{spoof}\r\n"));
        assert_eq!(status, 401, "{spoof}");
        let (status, resp) = get(s.port, "/pub/x", &format!("{spoof}\r\n"));
        assert_eq!(status, 200);
        let lower = resp.to_ascii_lowercase();
        assert!(
            !lower.contains("\"remote-user\"") && !lower.contains("\"remote_user\""),
            "{spoof}: {resp}"
        );
    }
    // Forwarding headers never grant anything, in any spelling.
    for fwd in [
        "X-Forwarded-For: 127.0.0.1",
        "X-Real-IP: 127.0.0.1",
        "X-Original-URL: /pub/x",
        "X-Rewrite-URL: /pub/x",
        "X-Forwarded-Uri: /pub/x",
        "X-Forwarded-Prefix: /pub",
    ] {
        let (status, _) = get(s.port, "/private", &format!("{fwd}\r\n"));
        assert_eq!(status, 401, "{fwd}");
        let (status, _) = get(s.port, "/admin", &format!("{fwd}\r\n"));
        assert_eq!(status, 403, "{fwd}");
    }
}

#[test]
fn malformed_forward_auth_requests_never_get_200() {
    let echo = Echo::start();
    let s = server(&echo);
    s.setup_owner();
    let cases = [
        "X-Original-URL: \r\n",
        "X-Original-URL: not a url\r\n",
        "X-Original-URL: //app.example.com/x\r\n",
        "X-Original-URL: http://\r\n",
        "X-Original-URL: http://app.example.com/%zz\r\n",
        "X-Original-URL: http://app.example.com/../..\r\n",
        "X-Original-URL: http://app example.com/\r\n",
        "X-Original-URL: http://app.example.com/pub\r\nX-Original-Method: G\x01T\r\n",
        "X-Forwarded-Host: app.example.com\r\n",
        "X-Forwarded-Uri: /pub\r\n",
        "X-Forwarded-Host: app.example.com\r\nX-Forwarded-Uri: pub\r\n",
        "X-Forwarded-Host: app.example.com\r\nX-Forwarded-Uri: /pub\r\nX-Forwarded-Proto: javascript\r\n",
        "X-Forwarded-Host: a/b\r\nX-Forwarded-Uri: /pub\r\n",
        "X-Original-URL: http://app.example.com/admin\r\n",
        "X-Original-URL: http://app.example.com/%2e%2e/admin\r\n",
        "X-Forwarded-Host: app.example.com\r\nX-Forwarded-Uri: /x/../admin\r\n",
    ];
    for extra in cases {
        for endpoint in ["/auth/verify", "/auth/forward"] {
            let (status, _) = status_of(
                s.port,
                format!("GET {endpoint} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n")
                    .as_bytes(),
            );
            assert!(
                status == 401 || status == 403 || status == 400 || status == 302,
                "{endpoint} {extra:?}: {status}"
            );
        }
    }
}

#[test]
fn smuggling_shapes_are_refused_or_answered_once() {
    let echo = Echo::start();
    let s = server(&echo);
    s.setup_owner();
    let shapes: [&[u8]; 5] = [
        b"POST /pub/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /pub/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello!",
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 30\r\nConnection: close\r\n\r\n{}x",
        b"POST /pub/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\nConnection: close\r\n\r\n0\r\n\r\n",
        b"POST /pub/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 0\r\nConnection: close\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for shape in shapes {
        let resp = raw_request(s.port, shape);
        let answers = resp.matches("HTTP/1.1 ").count();
        assert!(answers <= 1, "smuggled a second request: {resp}");
        if answers == 1 {
            let status: u16 = resp[9..12].parse().expect("status");
            assert!(status < 500, "{resp}");
        }
    }
}

#[test]
fn oversized_headers_get_431() {
    let echo = Echo::start();
    let s = server(&echo);
    let big = format!("X-Big: {}\r\n", "a".repeat(40_000));
    let (status, resp) = get(s.port, "/pub/x", &big);
    assert_eq!(status, 431, "{resp}");
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (status, _) = get(s.port, "/auth/status", &many);
    assert_eq!(status, 431);
    let (status, _) = get(s.port, "/pub/x", "X-Fine: yes\r\n");
    assert_eq!(status, 200);
}

#[test]
fn forward_auth_refuses_urls_and_headers_a_parser_would_not_accept() {
    let echo = Echo::start();
    let s = server(&echo);
    s.setup_owner();
    // Each would name the public /pub if read leniently; none may get 200.
    let cases = [
        "X-Original-URL: http://[::1/pub\r\n",
        "X-Original-URL: http://:80/pub\r\n",
        "X-Original-URL: http://127.0.0.1:80:80/pub\r\n",
        "X-Original-URL: http://app.example.com:abc/pub\r\n",
        "X-Original-URL: http://app.example.com/pub\r\nX-Original-URL: http://app.example.com/private\r\n",
        "X-Original-URL: http://app.example.com/pub\r\nX-Original-Method: GET, POST\r\n",
        "X-Original-URL: http://app.example.com/admin/x#/../../pub\r\n",
        "X-Original-URL: http://app.example.com/admin/%2e%2e/pub\r\n",
        "X-Original-URL: http://app.example.com/admin/..;/pub\r\n",
    ];
    for extra in cases {
        let (status, _) = status_of(
            s.port,
            format!("GET /auth/verify HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(status, 403, "/auth/verify {extra:?}");
    }
    let forwarded = [
        "X-Forwarded-Host: app.example.com, other.example.com\r\nX-Forwarded-Uri: /pub\r\n",
        "X-Forwarded-Host: other.example.com\r\nX-Forwarded-Host: app.example.com\r\nX-Forwarded-Uri: /pub\r\n",
        "X-Forwarded-Host: app.example.com\r\nX-Forwarded-Uri: /pub\r\nX-Forwarded-Uri: /private\r\n",
        "X-Forwarded-Host: app.example.com:80:80\r\nX-Forwarded-Uri: /pub\r\n",
        "X-Forwarded-Host: app.example.com\r\nX-Forwarded-Uri: /pub\r\nX-Forwarded-Proto: https, http\r\n",
        "X-Forwarded-Host: app.example.com\r\nX-Forwarded-Uri: /admin%2f..%2fpub\r\n",
    ];
    for extra in forwarded {
        let (status, _) = status_of(
            s.port,
            format!("GET /auth/forward HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(status, 403, "/auth/forward {extra:?}");
    }
    // The plain spellings are still decided.
    let (status, _) = status_of(
        s.port,
        b"GET /auth/verify HTTP/1.1\r\nHost: x\r\nX-Original-URL: http://app.example.com/pub\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
}
