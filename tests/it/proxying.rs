//! Proxying: routes, policies, identity headers, header and cookie stripping, upstream errors.

use std::time::Duration;

use serde_json::json;

use crate::support::{closed_port, raw_request, Client, Echo, TestServer};

#[test]
fn a_logged_in_user_reaches_the_upstream_with_identity_headers() {
    let echo = Echo::start();
    let s = TestServer::with_upstream(&echo.upstream(), "authenticated");
    let mut c = s.setup_owner();
    let r = c.get_with(
        "/app/page?q=1%2F2",
        &[("cookie", "theme=dark"), ("x-app", "kept")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        v["uri"], "/app/page?q=1%2F2",
        "the upstream gets the request as sent"
    );
    let h = r.echoed_headers();
    assert_eq!(h["remote-user"], json!(["owner"]));
    assert_eq!(h["remote-email"], json!(["owner@example.com"]));
    assert_eq!(h["remote-groups"], json!(["owner"]));
    assert!(h["remote-user-id"][0]
        .as_str()
        .is_some_and(|id| id.len() == 32));
    assert!(h.get("remote-name").is_none(), "no name set");
    assert_eq!(h["x-forwarded-for"], json!(["127.0.0.1"]));
    assert_eq!(h["x-forwarded-proto"], json!(["http"]));
    assert_eq!(h["x-app"], json!(["kept"]));
}

#[test]
fn the_gateway_cookie_never_reaches_the_upstream_but_app_cookies_do() {
    let echo = Echo::start();
    let s = TestServer::with_upstream(&echo.upstream(), "authenticated");
    let mut c = s.setup_owner();
    let session = c.cookie.clone().expect("cookie");
    c.cookie = Some(format!("theme=dark; {session}; lang=en"));
    let r = c.get("/");
    assert_eq!(r.status, 200);
    let cookies = r.echoed_headers()["cookie"].clone();
    assert_eq!(cookies, json!(["theme=dark; lang=en"]));
    assert!(!r.body.contains(session.split('=').nth(1).expect("value")));
}

#[test]
fn spoofed_identity_headers_are_stripped_in_every_spelling() {
    let echo = Echo::start();
    let s = TestServer::with_upstream(&echo.upstream(), "public");
    let spoofs = [
        "Remote-User",
        "remote-user",
        "REMOTE-USER",
        "Remote_User",
        "remote_user",
        "Remote-Email",
        "remote_email",
        "Remote-Groups",
        "REMOTE_GROUPS",
        "Remote-Name",
        "Remote-User-Id",
        "remote_user_id",
    ];
    // Anonymous on a public route: every spoof is removed and nothing is set.
    let mut anon = s.client();
    for spoof in spoofs {
        let r = anon.get_with("/", &[(spoof, "admin")]);
        let h = r.echoed_headers();
        let leaked: Vec<_> = h
            .as_object()
            .expect("obj")
            .keys()
            .filter(|k| k.replace('_', "-").starts_with("remote-"))
            .collect();
        assert!(leaked.is_empty(), "{spoof} leaked as {leaked:?}");
    }
    // Logged in: the real identity replaces the spoof, once.
    let mut c = s.setup_owner();
    let r = c.get_with(
        "/",
        &[
            ("Remote-User", "root"),
            ("remote_user", "root"),
            ("Remote-Groups", "admin"),
        ],
    );
    let h = r.echoed_headers();
    assert_eq!(h["remote-user"], json!(["owner"]));
    assert_eq!(h["remote-groups"], json!(["owner"]));
    assert!(h.get("remote_user").is_none());
    // Also through a raw request with odd spacing and duplicate headers.
    let raw = raw_request(
        s.port,
        b"GET / HTTP/1.1\r\nHost: x\r\nREMOTE_USER: a\r\nRemote-User: b\r\nremote-user:c\r\nConnection: close\r\n\r\n",
    );
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(!raw.to_ascii_lowercase().contains("remote"), "{raw}");
}

#[test]
fn no_session_means_302_for_browsers_and_401_for_apis() {
    let echo = Echo::start();
    let s = TestServer::with_upstream(&echo.upstream(), "authenticated");
    s.setup_owner();
    let mut c = s.client();
    let r = c.get_with(
        "/private/x?y=1",
        &[("accept", "text/html,application/xhtml+xml")],
    );
    assert_eq!(r.status, 302);
    let location = r.header("location").expect("location");
    let want = format!("{}/auth/login?rd=", s.url(""));
    assert!(location.starts_with(&want), "{location}");
    assert!(location.contains("%2Fprivate%2Fx%3Fy%3D1"), "{location}");
    let r = c.get("/private/x");
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED".to_string()));
    let r = c.send("POST", "/private/x", None, &[("accept", "text/html")]);
    assert_eq!(r.status, 401, "only GET/HEAD navigations are redirected");
    // A garbage cookie is just no session.
    for garbage in [
        "authgate_session=",
        "authgate_session=AAAA",
        "authgate_session=%%%",
        &format!("authgate_session={}", "A".repeat(43)),
    ] {
        let r = c.get_with("/x", &[("cookie", garbage)]);
        assert_eq!(r.status, 401, "{garbage}");
    }
}

#[test]
fn routes_match_in_order_by_host_and_segment_prefix() {
    let echo = Echo::start();
    let up = echo.upstream();
    let s = TestServer::start(&format!(
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
path = "/owners"
upstream = "{up}"
policy = "authenticated"
groups = ["owner"]

[[routes]]
host = "public.example.com"
path = "/"
upstream = "{up}"
policy = "public"

[[routes]]
path = "/open"
methods = ["GET"]
upstream = "{up}"
policy = "public"

[[routes]]
path = "/"
upstream = "{up}"
policy = "authenticated"
"#
    ));
    let mut owner = s.setup_owner();
    let mut user = s.register("user@example.com", "user password 1");
    let mut anon = s.client();
    // deny wins for everyone, whatever the path spelling.
    for p in [
        "/admin",
        "/admin/",
        "/admin/x",
        "//admin",
        "/x/../admin",
        "/%61dmin",
        "/admin;x=1",
        "/a/%2e%2e/admin",
        "/admin%2fx",
    ] {
        assert_eq!(owner.get(p).status, 403, "{p}");
    }
    assert_eq!(
        owner.get("/administrator").status,
        200,
        "segment-wise prefix"
    );
    // groups: the role counts as a group.
    assert_eq!(user.get("/ops").status, 403);
    assert_eq!(owner.get("/ops").status, 403);
    assert_eq!(owner.get("/owners/x").status, 200);
    assert_eq!(user.get("/owners").status, 403);
    assert_eq!(anon.get("/owners").status, 401);
    // Host routing, port and case ignored.
    let r = anon.get_with("/anything", &[("host", "PUBLIC.example.com:8443")]);
    assert_eq!(r.status, 200, "{}", r.body);
    // methods: POST falls through to the authenticated catch-all.
    assert_eq!(anon.get("/open/x").status, 200);
    assert_eq!(anon.send("POST", "/open/x", None, &[]).status, 401);
    // Bad paths are 400.
    for bad in ["/%zz", "/..", "/a/%2e%2e/%2e%2e/etc", "/a%00b"] {
        let r = raw_request(
            s.port,
            format!("GET {bad} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert!(r.starts_with("HTTP/1.1 400"), "{bad}: {r}");
    }
}

#[test]
fn no_matching_route_is_404() {
    let s = TestServer::start(
        "[[routes]]\npath = \"/only\"\nupstream = \"whoami\"\npolicy = \"public\"\n",
    );
    let mut c = s.client();
    let r = c.get("/elsewhere");
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND".to_string()));
    assert_eq!(c.get("/only/x").status, 200);
}

#[test]
fn whoami_shows_the_identity_an_upstream_would_get() {
    let s = TestServer::with_upstream("whoami", "authenticated");
    let mut c = s.setup_owner();
    let r = c.get_with("/hello", &[("remote_user", "evil")]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("remote-user: owner"), "{}", r.body);
    assert!(!r.body.contains("evil"));
    assert!(!r.body.contains("authgate_session"));
    let r = c.get_with("/hello", &[("accept", "application/json")]);
    assert_eq!(r.json()["headers"]["remote-email"], "owner@example.com");
}

#[test]
fn upstream_down_is_502_and_timeout_is_504() {
    let dead = closed_port();
    let echo = Echo::start();
    let s = TestServer::start_full(
        "upstream_timeout = \"1s\"",
        &format!(
            "[[routes]]\npath = \"/dead\"\nupstream = \"127.0.0.1:{dead}\"\npolicy = \"public\"\n\
         [[routes]]\npath = \"/\"\nupstream = \"{}\"\npolicy = \"public\"\n",
            echo.upstream(),
            dead = dead.port
        ),
    );
    let mut c = s.client();
    let r = c.get("/dead");
    assert_eq!(
        (r.status, r.code()),
        (502, "BAD_GATEWAY".to_string()),
        "{}",
        r.body
    );
    let r = c.get_with("/dead", &[("accept", "text/html")]);
    assert_eq!(r.status, 502);
    assert!(r
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("text/html")));
    assert_eq!(c.get("/fine").status, 200);
    let r = c.get("/slow");
    assert_eq!(
        (r.status, r.code()),
        (504, "GATEWAY_TIMEOUT".to_string()),
        "{}",
        r.body
    );
    assert_eq!(Client::new(s.port).get("/fine").status, 200);
}

#[test]
fn upstream_names_are_looked_up_when_connecting() {
    let echo = Echo::start();
    // The echo listens on 127.0.0.1 only: if `localhost` also names ::1, that address is
    // refused and the next one is tried.
    let by_name = echo.upstream().replace("127.0.0.1", "localhost");
    let s = TestServer::start_full(
        "",
        &format!(
            "[[routes]]\npath = \"/nowhere\"\nupstream = \"http://never-resolves.invalid:8080\"\npolicy = \"public\"\n\
         [[routes]]\npath = \"/\"\nupstream = \"{by_name}\"\npolicy = \"public\"\n"
        ),
    );
    // A name that does not resolve does not stop the gateway: it says so and answers 502.
    s.wait_for_log("upstream does not resolve now", Duration::from_secs(10));
    let mut c = s.client();
    for _ in 0..3 {
        let r = c.get("/by-name");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["uri"], "/by-name");
    }
    let r = c.get("/nowhere/x");
    assert_eq!(
        (r.status, r.code()),
        (502, "BAD_GATEWAY".to_string()),
        "{}",
        r.body
    );
    s.wait_for_log("upstream lookup failed", Duration::from_secs(10));
    assert_eq!(c.get("/by-name").status, 200, "other routes are unaffected");
}

#[test]
fn session_check_follows_user_changes_immediately() {
    let echo = Echo::start();
    let s = TestServer::with_upstream(&echo.upstream(), "authenticated");
    let mut c = s.setup_owner();
    c.send(
        "PATCH",
        "/auth/me",
        Some(&json!({"username": "renamed", "fullName": "Olive O"})),
        &[],
    );
    let h = c.get("/").echoed_headers();
    assert_eq!(h["remote-user"], json!(["renamed"]));
    assert_eq!(h["remote-name"], json!(["Olive O"]));
}

/// Sessions checked once are served from memory afterwards; every change that ends a session or
/// alters the identity must still show on the very next request.
#[test]
fn remembered_sessions_follow_every_change_on_the_next_request() {
    let echo = Echo::start();
    let s = TestServer::start(&format!(
        "[[routes]]\npath = \"/staff\"\nupstream = \"{up}\"\npolicy = \"authenticated\"\ngroups = [\"staff\"]\n\
         [[routes]]\npath = \"/\"\nupstream = \"{up}\"\npolicy = \"authenticated\"\n",
        up = echo.upstream()
    ));
    let mut owner = s.setup_owner();
    let mut u = s.register("user@example.com", "user password 1");
    let mut u2 = s.client();
    assert_eq!(u2.login("user@example.com", "user password 1").status, 200);
    let id = u.get("/auth/me").json()["data"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let warm = |c: &mut crate::support::Client| {
        for _ in 0..3 {
            assert_eq!(c.get("/app").status, 200);
        }
    };
    warm(&mut u);
    warm(&mut u2);
    assert_eq!(u.get("/staff").status, 403);

    // Groups granted by an admin: the next request passes and carries them.
    let path = format!("/auth/admin/users/{id}");
    let r = owner.send("PATCH", &path, Some(&json!({"groups": ["staff"]})), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(u.get("/staff").status, 200);
    assert_eq!(
        u.get("/app").echoed_headers()["remote-groups"],
        json!(["user,staff"])
    );

    // Logout of one device ends that session only.
    warm(&mut u);
    let saved = u2.cookie.clone();
    assert!(saved.is_some());
    let r = u2.send("POST", "/auth/logout", None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let mut stale = s.client();
    stale.cookie = saved;
    assert_eq!(stale.get("/app").status, 401);
    assert_eq!(u.get("/app").status, 200);

    // Disabled by an admin: 401 at once.
    let r = owner.send("PATCH", &path, Some(&json!({"status": "disabled"})), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(u.get("/app").status, 401);
    warm(&mut owner);
}

#[test]
fn a_request_id_reaches_the_upstream_and_every_log_line_of_the_request() {
    let echo = Echo::start();
    let up = echo.upstream();
    let s = TestServer::start(&format!(
        "[log]\nlevel = \"info\"\n[[routes]]\npath = \"/\"\nupstream = \"{up}\"\npolicy = \"authenticated\"\n"
    ));
    let mut c = s.setup_owner();
    let generated = c.get("/x").echoed_headers()["x-request-id"][0]
        .as_str()
        .expect("id")
        .to_string();
    assert!(
        generated.len() == 16 && generated.bytes().all(|b| b.is_ascii_hexdigit()),
        "{generated}"
    );
    let other = c.get("/x").echoed_headers()["x-request-id"][0]
        .as_str()
        .expect("id")
        .to_string();
    assert_ne!(generated, other, "one id per request");
    // A trusted proxy's id is kept (127.0.0.1 is trusted by default).
    let r = c.get_with("/x", &[("x-request-id", "trace-abc-123")]);
    assert_eq!(r.echoed_headers()["x-request-id"], json!(["trace-abc-123"]));
    let r = c.get_with("/x", &[("x-request-id", "bad id with spaces")]);
    assert_ne!(
        r.echoed_headers()["x-request-id"],
        json!(["bad id with spaces"])
    );
    // The id is on the request's log lines (here the audit line of a login).
    let mut again = s.client();
    again.send(
        "POST",
        "/auth/login",
        Some(&json!({"identifier": "owner", "password": "owner-password-1"})),
        &[("x-request-id", "login-req-42")],
    );
    let line = s.wait_for_log("event=\"login\"", std::time::Duration::from_secs(10));
    assert!(
        line.contains("login-req-42"),
        "login audit line without the request id: {line:?}\n{}",
        s.log()
    );
}

#[test]
fn an_untrusted_clients_request_id_is_replaced() {
    let echo = Echo::start();
    let s = TestServer::start_full(
        "trusted_proxies = [\"10.0.0.0/8\"]",
        &format!(
            "[[routes]]\npath = \"/\"\nupstream = \"{}\"\npolicy = \"public\"\n",
            echo.upstream()
        ),
    );
    let r = s.client().get_with("/x", &[("x-request-id", "forged-id")]);
    let id = r.echoed_headers()["x-request-id"].clone();
    assert_eq!(id.as_array().map(Vec::len), Some(1));
    assert_ne!(id, json!(["forged-id"]));
}

/// Each server thread listens on a socket of its own on the address (the kernel spreads new
/// connections across them), and every new connection is answered, whichever thread takes it.
#[test]
fn every_new_connection_is_answered_whichever_server_thread_accepts_it() {
    use std::io::{Read as _, Write as _};
    let echo = Echo::start();
    // The suite's config has `threads = 2`: two services, each with its listening socket.
    let s = TestServer::with_upstream(&echo.upstream(), "public");
    assert_eq!(crate::support::ports::listening_sockets(s.pid(), s.port), 2);
    for i in 0..64 {
        let mut conn =
            std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect to the gateway");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            conn,
            "GET /app/{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut answer = String::new();
        conn.read_to_string(&mut answer)
            .unwrap_or_else(|e| panic!("connection {i} was not answered: {e}"));
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "connection {i}: {answer}"
        );
    }
}
