//! API tokens on the request path, against the real binary and the echo upstream: each way of
//! presenting one, the credential kept from the app while the app's own `Authorization`
//! passes, groups that narrow and follow the owner, routes that refuse tokens, expiry and every
//! way a token ends (each effective on the next request), forward auth, and the
//! `WWW-Authenticate` challenges. Service accounts, the CLI, limits and load are in
//! [`crate::tokens_ops`].

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::operations::eventually;
use crate::support::smtp::{link_in, SmtpSink};
use crate::support::{Client, Echo, Reply, TestServer};

/// Routes to the echo upstream: `/public` open to all, `/git` and `/media` for their groups,
/// `/browser` refusing tokens, everything else for anyone signed in.
pub(crate) fn routes(up: &str) -> String {
    format!(
        r#"
[[routes]]
path = "/public"
upstream = "{up}"
policy = "public"

[[routes]]
path = "/git"
upstream = "{up}"
policy = "authenticated"
groups = ["git"]

[[routes]]
path = "/media"
upstream = "{up}"
policy = "authenticated"
groups = ["media"]

[[routes]]
path = "/browser"
upstream = "{up}"
policy = "authenticated"
tokens = false

[[routes]]
path = "/"
upstream = "{up}"
policy = "authenticated"
"#
    )
}

/// A gateway whose config is `extra` (sections) and then [`routes`] to a new echo upstream,
/// with its owner set up and signed in. The echo lives as long as it is held.
pub(crate) fn gateway(extra: &str) -> (Echo, TestServer, Client) {
    let echo = Echo::start();
    let s = TestServer::start(&format!("{extra}\n{}", routes(&echo.upstream())));
    let owner = s.setup_owner();
    (echo, s, owner)
}

/// Register `username` (open registration) and return its signed-in client and user id.
pub(crate) fn register(s: &TestServer, username: &str) -> (Client, String) {
    let mut c = s.client();
    let r = c.post_json(
        "/auth/register",
        &json!({
            "email": format!("{username}@example.com"),
            "password": format!("{username} password 1"),
            "username": username,
        }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["data"]["user"]["id"]
        .as_str()
        .expect("user id")
        .to_string();
    (c, id)
}

/// Create a token at `path` (`/auth/tokens` or a service account's) and return its id and
/// secret.
pub(crate) fn create_at(c: &mut Client, path: &str, body: Value) -> (String, String) {
    let r = c.post_json(path, &body);
    assert_eq!(r.status, 201, "{}", r.body);
    let data = &r.json()["data"];
    let token = data["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("agt_") && token.len() == 47, "{token}");
    (data["id"].as_str().expect("id").to_string(), token)
}

/// Create one of the signed-in user's own tokens.
pub(crate) fn create_token(c: &mut Client, body: Value) -> (String, String) {
    create_at(c, "/auth/tokens", body)
}

/// GET `path` with `token` as a bearer token (and no cookie).
pub(crate) fn with_bearer(s: &TestServer, path: &str, token: &str) -> Reply {
    s.client()
        .get_with(path, &[("authorization", &format!("Bearer {token}"))])
}

/// `Authorization: Basic` for `user:password`.
pub(crate) fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// Every challenge of a reply's `WWW-Authenticate`, in order (the gateway sends them as one
/// list, Bearer then Basic, since nginx passes only the first header of a check on).
pub(crate) fn challenges(r: &Reply) -> Vec<String> {
    let values: Vec<&str> = r
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert!(values.len() <= 1, "one WWW-Authenticate header: {values:?}");
    values
        .iter()
        .flat_map(|v| match v.split_once(", Basic ") {
            Some((bearer, basic)) => vec![bearer.to_string(), format!("Basic {basic}")],
            None => vec![v.to_string()],
        })
        .collect()
}

/// Assert no header the upstream received holds `secret`.
pub(crate) fn never_forwarded(echoed: &Value, secret: &str) {
    for (name, values) in echoed.as_object().expect("headers") {
        for v in values.as_array().expect("values") {
            assert!(
                !v.as_str().unwrap_or_default().contains(secret),
                "the upstream received the credential in {name}: {v}"
            );
        }
    }
}

/// As an admin, PATCH the user `id` with `change`.
pub(crate) fn admin_patch(admin: &mut Client, id: &str, change: Value) {
    let r = admin.send(
        "PATCH",
        &format!("/auth/admin/users/{id}"),
        Some(&change),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn each_way_of_presenting_a_token_reaches_the_app_as_its_owner() {
    let (_echo, s, _) = gateway("");
    let (mut alice, alice_id) = register(&s, "alice");
    let (_, token) = create_token(&mut alice, json!({"name": "laptop"}));
    let basic_token = basic("git", &token);
    let presented: [(&str, String); 4] = [
        ("authorization", format!("Bearer {token}")),
        ("authorization", basic_token.clone()),
        ("authorization", basic("", &token)),
        ("x-authgate-token", token.clone()),
    ];
    for (name, value) in &presented {
        let r = s.client().get_with("/app/x", &[(name, value)]);
        assert_eq!(r.status, 200, "{name}: {value}: {}", r.body);
        let echoed = r.echoed_headers();
        assert_eq!(echoed["remote-user"], json!(["alice"]), "{value}");
        assert_eq!(echoed["remote-email"], json!(["alice@example.com"]));
        assert_eq!(echoed["remote-user-id"], json!([alice_id]));
        assert_eq!(echoed["remote-groups"], json!(["user"]));
        assert_eq!(echoed["remote-auth-methods"], json!(["token"]));
        assert!(echoed.get("authorization").is_none(), "{echoed}");
        assert!(echoed.get("x-authgate-token").is_none(), "{echoed}");
        never_forwarded(&echoed, &token[4..]);
        never_forwarded(&echoed, basic_token.trim_start_matches("Basic "));
    }

    // The app's own Authorization passes unchanged while the token rides in the gateway's
    // header.
    let r = s.client().get_with(
        "/app/x",
        &[
            ("authorization", "Bearer app-jwt"),
            ("x-authgate-token", &token),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let echoed = r.echoed_headers();
    assert_eq!(echoed["authorization"], json!(["Bearer app-jwt"]));
    assert_eq!(echoed["remote-user"], json!(["alice"]));
    assert!(echoed.get("x-authgate-token").is_none(), "{echoed}");
    never_forwarded(&echoed, &token[4..]);

    // The gateway's own API takes sessions only.
    let r = with_bearer(&s, "/auth/me", &token);
    assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
    let r = s
        .client()
        .get_with("/auth/tokens", &[("x-authgate-token", &token)]);
    assert_eq!(r.status, 401);
}

#[test]
fn a_configured_token_header_carries_the_token() {
    let (_echo, s, mut owner) = gateway("[session]\ntoken_header = \"X-Api-Key\"");
    let (_, token) = create_token(&mut owner, json!({"name": "monitor"}));
    let r = s.client().get_with(
        "/app",
        &[
            ("x-api-key", &token),
            ("authorization", "Basic YXBwOmFwcA=="),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let echoed = r.echoed_headers();
    assert_eq!(echoed["remote-user"], json!(["owner"]));
    assert_eq!(echoed["remote-auth-methods"], json!(["token"]));
    assert!(echoed.get("x-api-key").is_none(), "{echoed}");
    assert_eq!(echoed["authorization"], json!(["Basic YXBwOmFwcA=="]));
    never_forwarded(&echoed, &token[4..]);
    // Bearer still counts; the default header name is no longer the gateway's.
    assert_eq!(with_bearer(&s, "/app", &token).status, 200);
    let r = s.client().get_with("/app", &[("x-authgate-token", &token)]);
    assert_eq!(r.status, 401, "{}", r.body);
}

#[test]
fn credentials_that_are_not_a_token_pass_through_untouched() {
    let (_echo, s, mut owner) = gateway("");
    let app_basic = basic("alice", "hunter2");
    let r = s
        .client()
        .get_with("/public/x", &[("authorization", &app_basic)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.echoed_headers()["authorization"], json!([app_basic]));
    assert!(r.echoed_headers().get("remote-user").is_none(), "nobody");

    // On a protected route they prove nothing: no session, no token.
    let r = s
        .client()
        .get_with("/app", &[("authorization", &app_basic)]);
    assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
    assert!(
        challenges(&r).iter().all(|c| !c.contains("invalid_token")),
        "an app's Basic is not a bad token: {:?}",
        challenges(&r)
    );
    // With a session they reach the app as sent.
    let r = owner.get_with("/app", &[("authorization", &app_basic)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.echoed_headers()["authorization"], json!([app_basic]));
    assert_eq!(r.echoed_headers()["remote-user"], json!(["owner"]));
    assert_eq!(r.echoed_headers()["remote-auth-methods"], json!(["pwd"]));
}

#[test]
fn a_token_narrows_its_owner_and_follows_the_owners_groups() {
    let (_echo, s, mut owner) = gateway("");
    let (mut bob, bob_id) = register(&s, "bob");
    admin_patch(&mut owner, &bob_id, json!({"groups": ["git", "media"]}));
    let (_, git_only) = create_token(&mut bob, json!({"name": "git", "groups": ["git"]}));
    let (_, everything) = create_token(&mut bob, json!({"name": "all"}));

    let r = with_bearer(&s, "/git/repo.git/info/refs", &git_only);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.echoed_headers()["remote-groups"], json!(["git"]));
    let r = with_bearer(&s, "/media/film", &git_only);
    assert_eq!((r.status, r.code().as_str()), (403, "FORBIDDEN"));
    let r = with_bearer(&s, "/media/film", &everything);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.echoed_headers()["remote-groups"],
        json!(["user,git,media"])
    );

    // A token never holds more than its owner.
    for groups in [json!(["ops"]), json!(["git", "admin"]), json!(["owner"])] {
        let r = bob.post_json("/auth/tokens", &json!({"name": "wide", "groups": groups}));
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "VALIDATION_ERROR"),
            "{groups}: {}",
            r.body
        );
        assert!(
            r.json()["error"]["fields"]["groups"].is_string(),
            "{}",
            r.body
        );
    }

    // The owner loses git: so does the token, on its next request.
    admin_patch(&mut owner, &bob_id, json!({"groups": ["media"]}));
    let r = with_bearer(&s, "/git/repo.git/info/refs", &git_only);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = with_bearer(&s, "/app", &git_only);
    assert_eq!(r.status, 200);
    assert!(
        r.echoed_headers().get("remote-groups").is_none(),
        "no groups left"
    );
    let r = with_bearer(&s, "/app", &everything);
    assert_eq!(r.echoed_headers()["remote-groups"], json!(["user,media"]));
}

#[test]
fn a_route_that_refuses_tokens_still_takes_the_session() {
    let (_echo, s, mut owner) = gateway("");
    let (_, token) = create_token(&mut owner, json!({"name": "script"}));
    let r = with_bearer(&s, "/browser/page", &token);
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "FORBIDDEN"),
        "{}",
        r.body
    );
    assert!(r.header("www-authenticate").is_none());
    let r = owner.get("/browser/page");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.echoed_headers()["remote-auth-methods"], json!(["pwd"]));
    // Both at once: the session decides, and the token still never reaches the app.
    let r = owner.get_with("/browser/page", &[("x-authgate-token", &token)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.echoed_headers().get("x-authgate-token").is_none());
    never_forwarded(&r.echoed_headers(), &token[4..]);
}

#[test]
fn a_short_lived_token_works_then_is_refused() {
    let (_echo, s, mut owner) = gateway("");
    let (_, token) = create_token(&mut owner, json!({"name": "one-off", "expiresIn": "2s"}));
    assert_eq!(with_bearer(&s, "/app", &token).status, 200);
    let started = Instant::now();
    let mut last = None;
    eventually("the 2s token to be refused", || {
        let r = with_bearer(&s, "/app", &token);
        let refused = r.status == 401;
        last = Some(r);
        refused
    });
    let r = last.expect("a reply");
    assert!(
        challenges(&r)[0].contains("error=\"invalid_token\""),
        "{:?}",
        challenges(&r)
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let list = owner.get("/auth/tokens").json();
    assert_eq!(list["data"][0]["expired"], true, "{list}");
}

#[test]
fn revoking_resetting_the_password_and_disabling_each_end_a_token_at_once() {
    let smtp = SmtpSink::start();
    let (_echo, s, mut owner) = gateway(&smtp.config());
    let (mut carol, carol_id) = register(&s, "carol");
    let (first_id, first) = create_token(&mut carol, json!({"name": "first"}));
    let (_, second) = create_token(&mut carol, json!({"name": "second"}));
    // Both used once, so both are remembered by the gateway.
    assert_eq!(with_bearer(&s, "/app", &first).status, 200);
    assert_eq!(with_bearer(&s, "/app", &second).status, 200);

    let r = carol.send("DELETE", &format!("/auth/tokens/{first_id}"), None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(with_bearer(&s, "/app", &first).status, 401);
    assert_eq!(with_bearer(&s, "/app", &second).status, 200);
    let r = carol.send("DELETE", &format!("/auth/tokens/{first_id}"), None, &[]);
    assert_eq!(r.status, 404);

    // A password reset ends every token of the account.
    let r = s.client().post_json(
        "/auth/forgot-password",
        &json!({"email": "carol@example.com"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, reset) = link_in(
        &smtp.wait_for("carol@example.com", 1),
        "/auth/reset-password",
    );
    let r = s.client().post_json(
        "/auth/reset-password",
        &json!({"token": reset, "password": "carol password 2"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(with_bearer(&s, "/app", &second).status, 401);

    // Disabling the account ends the tokens made since.
    let mut carol = s.client();
    assert_eq!(carol.login("carol", "carol password 2").status, 200);
    let (_, third) = create_token(&mut carol, json!({"name": "third"}));
    assert_eq!(with_bearer(&s, "/app", &third).status, 200);
    admin_patch(&mut owner, &carol_id, json!({"status": "disabled"}));
    let r = with_bearer(&s, "/app", &third);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(challenges(&r)[0].contains("invalid_token"));
    // And they stay ended when the account comes back.
    admin_patch(&mut owner, &carol_id, json!({"status": "active"}));
    assert_eq!(with_bearer(&s, "/app", &third).status, 401);
}

#[test]
fn forward_auth_answers_for_tokens() {
    let (_echo, s, mut owner) = gateway("");
    let (_, token) = create_token(&mut owner, json!({"name": "proxy"}));
    let bad = format!("agt_{}", "A".repeat(43));
    let verify = |auth: &str| {
        s.client().get_with(
            "/auth/verify",
            &[
                ("x-original-url", "https://app.example.com/x?y=1"),
                ("x-original-method", "GET"),
                ("authorization", auth),
            ],
        )
    };
    let forward = |auth: &str| {
        s.client().get_with(
            "/auth/forward",
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "app.example.com"),
                ("x-forwarded-uri", "/x?y=1"),
                ("x-forwarded-method", "GET"),
                ("authorization", auth),
            ],
        )
    };
    for (endpoint, ask) in [
        ("verify", &verify as &dyn Fn(&str) -> Reply),
        ("forward", &forward),
    ] {
        let r = ask(&format!("Bearer {token}"));
        assert_eq!(r.status, 200, "{endpoint}: {}", r.body);
        assert_eq!(
            r.header("remote-user").as_deref(),
            Some("owner"),
            "{endpoint}"
        );
        assert_eq!(
            r.header("remote-email").as_deref(),
            Some("owner@example.com")
        );
        assert_eq!(r.header("remote-groups").as_deref(), Some("owner"));
        assert_eq!(r.header("remote-auth-methods").as_deref(), Some("token"));
        let r = ask(&basic("git", &token));
        assert_eq!(r.status, 200, "{endpoint} basic: {}", r.body);
        let r = ask(&format!("Bearer {bad}"));
        assert_eq!(r.status, 401, "{endpoint}: {}", r.body);
        assert!(r.header("remote-user").is_none());
        let shown = challenges(&r);
        assert!(
            shown[0].starts_with("Bearer realm=\"authgate\"")
                && shown[0].contains("error=\"invalid_token\""),
            "{endpoint}: {shown:?}"
        );
    }
}

#[test]
fn refusals_say_how_to_authenticate() {
    let (_echo, s, _) = gateway("[ui]\ntitle = \"Example Corp\"");
    let bearer = "Bearer realm=\"Example Corp\"";
    let basic_challenge = "Basic realm=\"Example Corp\", charset=\"UTF-8\"";

    // curl, git, a media client: both ways.
    let r = s.client().get_with("/app", &[("user-agent", "curl/8.5.0")]);
    assert_eq!(r.status, 401);
    assert_eq!(challenges(&r), [bearer, basic_challenge]);
    // A page's script would get the browser's password dialog over the app: Bearer only.
    for from_a_page in [
        ("sec-fetch-mode", "cors"),
        ("x-requested-with", "XMLHttpRequest"),
    ] {
        let r = s.client().get_with("/app", &[from_a_page]);
        assert_eq!(r.status, 401);
        assert_eq!(challenges(&r), [bearer], "{from_a_page:?}");
    }
    // A bad token says so.
    let r = with_bearer(&s, "/app", &format!("agt_{}", "B".repeat(43)));
    assert_eq!(r.status, 401);
    let shown = challenges(&r);
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(
        shown[0].starts_with(bearer) && shown[0].contains("error=\"invalid_token\""),
        "{shown:?}"
    );
    assert_eq!(shown[1], basic_challenge);
    // Anything in the gateway's header that is no token is a bad token too.
    let r = s
        .client()
        .get_with("/app", &[("x-authgate-token", "hello")]);
    assert_eq!(r.status, 401);
    assert!(challenges(&r)[0].contains("invalid_token"));
    // A client that takes pages gets one, and the 401 still says how to authenticate.
    let revoked = basic("me", &format!("agt_{}", "B".repeat(43)));
    let r = s.client().get_with(
        "/app",
        &[("accept", "text/html"), ("authorization", &revoked)],
    );
    assert_eq!(r.status, 401);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        r.header("content-type")
    );
    let shown = challenges(&r);
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(shown[0].contains("invalid_token"), "{shown:?}");
    // A browser navigating is sent to sign in, not challenged.
    let r = s.client().get_with("/app/page", &[("accept", "text/html")]);
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.header("www-authenticate").is_none());
    assert!(
        r.header("location")
            .unwrap_or_default()
            .starts_with(&s.url("/auth/login?rd=")),
        "{:?}",
        r.header("location")
    );
}
