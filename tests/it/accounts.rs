//! The accounts API: setup, register, login, logout, profile, password, sessions, settings.

use serde_json::json;

use crate::support::{race, Client, TestServer};

#[test]
fn status_reports_setup_needed_then_done() {
    let s = TestServer::start("");
    let mut c = s.client();
    let r = c.get("/auth/status");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["success"], true);
    assert_eq!(v["data"]["needsSetup"], true);
    assert_eq!(v["data"]["registration"], "open");
    assert_eq!(v["data"]["nativeSignin"], true);
    assert_eq!(v["data"]["providers"], json!([]));
    assert_eq!(c.get("/auth/setup/exists").json()["data"]["exists"], false);

    s.setup_owner();
    assert_eq!(c.get("/auth/status").json()["data"]["needsSetup"], false);
    assert_eq!(c.get("/auth/setup/exists").json()["data"]["exists"], true);
    let health = c.get("/auth/health");
    assert_eq!(
        (health.status, health.json()["data"]["status"].clone()),
        (200, json!("ok"))
    );
}

#[test]
fn setup_creates_the_owner_once_even_when_racing() {
    let s = TestServer::start("");
    let port = s.port;
    let replies = race(8, move |i| {
        Client::new(port).post_json(
            "/auth/setup",
            &json!({"email": format!("owner{i}@example.com"), "password": "long enough pw"}),
        )
    });
    let won: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(won.len(), 1, "{replies:?}");
    assert_eq!(won[0].json()["data"]["user"]["role"], "owner");
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(
            (r.status, r.code()),
            (409, "ALREADY_SETUP".to_string()),
            "{}",
            r.body
        );
    }
    let mut c = s.client();
    let r = c.post_json(
        "/auth/setup",
        &json!({"email": "late@example.com", "password": "long enough pw"}),
    );
    assert_eq!((r.status, r.code()), (409, "ALREADY_SETUP".to_string()));
}

#[test]
fn setup_sets_a_cookie_and_returns_the_user_shape() {
    let s = TestServer::start("");
    let mut c = s.client();
    let r = c.post_json(
        "/auth/setup",
        &json!({"email": "  Owner@Example.COM ", "password": "owner-password-1", "name": "Olive Owner", "extra": 1}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let cookie = r.header("set-cookie").expect("cookie");
    assert!(
        cookie.starts_with("authgate_session=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
    );
    let user = &r.json()["data"]["user"];
    for key in [
        "id",
        "email",
        "username",
        "fullName",
        "firstName",
        "lastName",
        "role",
        "groups",
        "status",
        "emailVerified",
        "createdAt",
        "updatedAt",
        "lastLoginAt",
    ] {
        assert!(user.get(key).is_some(), "{key} missing in {user}");
    }
    assert_eq!(user["email"], "owner@example.com");
    assert_eq!(user["fullName"], "Olive Owner");
    assert_eq!(user["username"], json!(null));
    assert_eq!(user["status"], "active");
    assert!(
        !r.body.contains("argon2") && !r.body.contains("password"),
        "{}",
        r.body
    );
    let me = c.get("/auth/me");
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["data"]["user"]["role"], "owner");
    assert!(me.json()["data"]["session"]["id"].is_string());
}

#[test]
fn register_validates_every_field() {
    let s = TestServer::start("");
    s.setup_owner();
    let mut c = s.client();
    let r = c.post_json(
        "/auth/register",
        &json!({"email": "not-an-email", "password": "short", "username": "x"}),
    );
    assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR".to_string()));
    let fields = &r.json()["error"]["fields"];
    assert!(
        fields["email"].is_string()
            && fields["password"].is_string()
            && fields["username"].is_string(),
        "{fields}"
    );
    let r = c.post_json("/auth/register", &json!({"email": 5, "password": ["x"]}));
    assert_eq!(r.json()["error"]["fields"]["email"], "must be a string");
    let r = c.send(
        "POST",
        "/auth/register",
        None,
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status, 400);
    let r = c.send("POST", "/auth/register", None, &[]);
    assert_eq!(r.status, 400);
    let mut bad = s.client();
    let r = bad.send(
        "POST",
        "/auth/login",
        Some(&json!({})),
        &[("content-type", "text/plain")],
    );
    assert!(r.status == 400 || r.status == 415, "{}", r.body);
}

#[test]
fn malformed_and_oversized_bodies_are_clear_4xx() {
    let s = TestServer::start("");
    let mut c = s.client();
    let raw = |body: &str, ct: &str| {
        crate::support::raw_request(
            s.port,
            format!("POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes(),
        )
    };
    assert!(raw("{", "application/json").starts_with("HTTP/1.1 400"));
    assert!(raw("[]", "application/json").starts_with("HTTP/1.1 400"));
    assert!(raw("x=1", "text/plain").starts_with("HTTP/1.1 415"));
    assert!(raw("<x/>", "application/xml").starts_with("HTTP/1.1 415"));
    let nested = "[".repeat(5000);
    assert!(raw(&nested, "application/json").starts_with("HTTP/1.1 400"));
    let big = format!("{{\"identifier\":\"{}\"}}", "a".repeat(70 * 1024));
    let r = raw(&big, "application/json");
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    assert!(r.contains("PAYLOAD_TOO_LARGE"));
    let r = c.get("/auth/nope");
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND".to_string()));
    let r = c.send("PUT", "/auth/login", None, &[]);
    assert_eq!(
        (r.status, r.code()),
        (405, "METHOD_NOT_ALLOWED".to_string())
    );
    assert_eq!(r.header("allow").as_deref(), Some("GET, POST"));
}

#[test]
fn one_email_registered_in_parallel_creates_one_user() {
    let s = TestServer::start("");
    s.setup_owner();
    let port = s.port;
    let replies = race(12, move |i| {
        // Same email in different spellings, different usernames.
        let email = if i % 2 == 0 {
            "Race@Example.com"
        } else {
            "race@example.com "
        };
        Client::new(port).post_json(
            "/auth/register",
            &json!({"email": email, "password": "race password", "username": format!("racer{i}")}),
        )
    });
    assert_eq!(
        replies.iter().filter(|r| r.status == 201).count(),
        1,
        "{replies:?}"
    );
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(
            (r.status, r.code()),
            (409, "CONFLICT".to_string()),
            "{}",
            r.body
        );
    }
    // The same username for different emails: also exactly one.
    let replies = race(6, move |i| {
        Client::new(port).post_json(
            "/auth/register",
            &json!({"email": format!("u{i}@example.com"), "password": "race password", "username": "Samename"}),
        )
    });
    assert_eq!(
        replies.iter().filter(|r| r.status == 201).count(),
        1,
        "{replies:?}"
    );
}

#[test]
fn login_by_email_or_username_issues_a_fresh_session() {
    let s = TestServer::start("");
    let mut owner = s.setup_owner();
    let first = owner.cookie.clone().expect("setup cookie");
    let mut c = s.client();
    let r = c.login("OWNER@example.com", "owner-password-1");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["data"]["session"]["expiresAt"].is_string());
    assert!(r.json()["data"]["user"]["lastLoginAt"].is_string());
    let by_name = c.login("owner", "owner-password-1");
    assert_eq!(by_name.status, 200);
    assert_ne!(c.cookie.as_deref(), Some(first.as_str()));

    // A session id presented at login is never reused, and the old one is replaced.
    let mut fixed = s.client();
    fixed.cookie = Some(first.clone());
    let r = fixed.post_json(
        "/auth/login",
        &json!({"email": "owner@example.com", "password": "owner-password-1"}),
    );
    assert_eq!(r.status, 200);
    assert_ne!(fixed.cookie.as_deref(), Some(first.as_str()));
    owner.cookie = Some(first);
    assert_eq!(
        owner.get("/auth/me").status,
        401,
        "the replaced session is gone"
    );
    assert_eq!(fixed.get("/auth/me").status, 200);
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_answer() {
    let s = TestServer::start("");
    s.setup_owner();
    let mut c = s.client();
    let wrong = c.login("owner@example.com", "not the password");
    let unknown = c.login("nobody@example.com", "not the password");
    assert_eq!(
        (wrong.status, wrong.code()),
        (401, "INVALID_CREDENTIALS".to_string())
    );
    assert_eq!(
        (unknown.status, unknown.code()),
        (401, "INVALID_CREDENTIALS".to_string())
    );
    assert_eq!(wrong.json()["message"], unknown.json()["message"]);
    assert!(c.cookie.is_none());
    let r = c.post_json("/auth/login", &json!({"password": "x"}));
    assert_eq!(r.json()["error"]["fields"]["identifier"], "is required");
}

#[test]
fn remember_me_sets_a_persistent_cookie() {
    let s = TestServer::start("");
    s.setup_owner();
    let mut c = s.client();
    let r = c.post_json(
        "/auth/login",
        &json!({"identifier": "owner", "password": "owner-password-1", "remember": true}),
    );
    let cookie = r.header("set-cookie").expect("cookie");
    assert!(
        cookie.contains(&format!("Max-Age={}", 30 * 86400)),
        "{cookie}"
    );
    let r = c.login("owner", "owner-password-1");
    assert!(!r.header("set-cookie").expect("cookie").contains("Max-Age"));
}

#[test]
fn lockout_after_max_failures_with_retry_after() {
    let s = TestServer::start("[security]\nmax_failed_logins = 3\nlockout = \"1m\"\n");
    s.setup_owner();
    let mut c = s.client();
    for _ in 0..2 {
        assert_eq!(c.login("owner", "wrong password").status, 401);
    }
    let third = c.login("OWNER@EXAMPLE.COM", "wrong password");
    assert_eq!(
        (third.status, third.code()),
        (423, "ACCOUNT_LOCKED".to_string()),
        "{}",
        third.body
    );
    // Locked even with the right password, by either identifier.
    let r = c.login("owner@example.com", "owner-password-1");
    assert_eq!(r.status, 423);
    let retry: u64 = r
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .expect("number");
    assert!((1..=60).contains(&retry), "{retry}");
}

#[test]
fn logout_kills_the_session_server_side() {
    let s = TestServer::start("");
    let mut c = s.setup_owner();
    let token = c.cookie.clone().expect("cookie");
    let r = c.send("POST", "/auth/logout", None, &[]);
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").expect("clear").contains("Max-Age=0"));
    // Replaying the old cookie does not work: the session is gone server-side.
    let mut replay = s.client();
    replay.cookie = Some(token);
    assert_eq!(replay.get("/auth/me").status, 401);
    // GET logout works too, and is harmless without a session.
    assert_eq!(s.client().get("/auth/logout").status, 200);
}

#[test]
fn logout_all_revokes_every_session_of_the_user() {
    let s = TestServer::start("");
    let mut a = s.setup_owner();
    let mut b = s.client();
    assert_eq!(b.login("owner", "owner-password-1").status, 200);
    let r = a.send("POST", "/auth/logout-all", None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["revokedSessions"], 2);
    b.cookie = b.cookie.clone();
    assert_eq!(b.get("/auth/me").status, 401);
    assert_eq!(
        s.client()
            .send("POST", "/auth/logout-all", None, &[])
            .status,
        401
    );
}

#[test]
fn password_change_keeps_this_session_and_revokes_the_others() {
    let s = TestServer::start("");
    let mut a = s.setup_owner();
    let mut b = s.client();
    b.login("owner", "owner-password-1");
    let r = a.post_json(
        "/auth/change-password",
        &json!({"currentPassword": "owner-password-1", "newPassword": "owner-password-1"}),
    );
    assert_eq!(r.status, 400, "must differ");
    let r = a.post_json(
        "/auth/change-password",
        &json!({"currentPassword": "nope nope", "newPassword": "brand new password"}),
    );
    assert_eq!(
        (r.status, r.code()),
        (401, "INVALID_CREDENTIALS".to_string())
    );
    let r = a.post_json(
        "/auth/password",
        &json!({"currentPassword": "owner-password-1", "newPassword": "brand new password"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["revokedSessions"], 1);
    assert_eq!(a.get("/auth/me").status, 200, "this session survives");
    assert_eq!(
        b.get("/auth/me").status,
        401,
        "the other session is revoked"
    );
    let mut c = s.client();
    assert_eq!(c.login("owner", "owner-password-1").status, 401);
    assert_eq!(c.login("owner", "brand new password").status, 200);
}

#[test]
fn profile_updates_respect_enabled_fields_and_unique_usernames() {
    let s = TestServer::start("");
    let mut owner = s.setup_owner();
    let mut u = s.register("user@example.com", "user password 1");
    let r = u.send(
        "PATCH",
        "/auth/me",
        Some(&json!({"username": "Owner"})),
        &[],
    );
    assert_eq!((r.status, r.code()), (409, "CONFLICT".to_string()));
    let r = u.send(
        "PATCH",
        "/auth/me",
        Some(&json!({"username": "newbie", "name": "New Bie"})),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["user"]["username"], "newbie");
    assert_eq!(r.json()["data"]["user"]["fullName"], "New Bie");
    let r = u.send("PATCH", "/auth/me", Some(&json!({"firstName": "X"})), &[]);
    assert_eq!(r.status, 400, "first_name is off by default");
    assert_eq!(u.login("newbie", "user password 1").status, 200);
    assert_eq!(
        owner.get("/auth/me").json()["data"]["user"]["username"],
        "owner"
    );
}

#[test]
fn sessions_can_be_listed_and_revoked_one_by_one() {
    let s = TestServer::start("");
    let mut a = s.setup_owner();
    let mut b = s.client();
    b.send(
        "POST",
        "/auth/login",
        Some(&json!({"identifier": "owner", "password": "owner-password-1"})),
        &[("user-agent", "second-device")],
    );
    let list = a.get("/auth/sessions");
    assert_eq!(list.status, 200);
    let sessions = list.json()["data"]["sessions"]
        .as_array()
        .cloned()
        .expect("array");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let other = sessions
        .iter()
        .find(|s| s["current"] == false)
        .expect("other");
    assert_eq!(other["userAgent"], "second-device");
    assert_eq!(other["ip"], "127.0.0.1");
    let id = other["id"].as_str().expect("id");
    assert_eq!(
        a.send("DELETE", &format!("/auth/sessions/{id}"), None, &[])
            .status,
        200
    );
    assert_eq!(b.get("/auth/me").status, 401);
    assert_eq!(
        a.send("DELETE", &format!("/auth/sessions/{id}"), None, &[])
            .status,
        404
    );
    // Another user cannot revoke someone else's session.
    let mut other_user = s.register("x@example.com", "x password 1");
    let mine = a.get("/auth/me").json()["data"]["session"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        other_user
            .send("DELETE", &format!("/auth/sessions/{mine}"), None, &[])
            .status,
        404
    );
    assert_eq!(a.get("/auth/me").status, 200);
}

#[test]
fn registration_modes_closed_and_approval() {
    let s = TestServer::start("[auth]\nregistration = \"closed\"\n");
    s.setup_owner();
    let mut c = s.client();
    let r = c.post_json(
        "/auth/register",
        &json!({"email": "a@example.com", "password": "some password"}),
    );
    assert_eq!(
        (r.status, r.code()),
        (403, "REGISTRATION_DISABLED".to_string())
    );

    let s = TestServer::start("[auth]\nregistration = \"approval\"\n");
    s.setup_owner();
    let mut c = s.client();
    let r = c.post_json(
        "/auth/register",
        &json!({"email": "p@example.com", "password": "some password"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["data"]["user"]["status"], "pending");
    assert!(r.header("set-cookie").is_none());
    let r = c.login("p@example.com", "some password");
    assert_eq!((r.status, r.code()), (403, "ACCOUNT_PENDING".to_string()));
    let r = c.login("p@example.com", "wrong password");
    assert_eq!(
        r.code(),
        "INVALID_CREDENTIALS",
        "status only shown after a correct password"
    );
}

#[test]
fn config_update_is_admin_only_and_persists() {
    let mut s = TestServer::start("");
    let mut owner = s.setup_owner();
    let mut user = s.register("user@example.com", "user password 1");
    let r = user.post_json("/auth/config/update", &json!({"register": false}));
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN".to_string()));
    assert_eq!(
        s.client()
            .post_json("/auth/config/update", &json!({"register": false}))
            .status,
        401
    );
    let r = owner.post_json("/auth/config/update", &json!({"nativeSignin": false}));
    assert_eq!(r.status, 400, "no provider configured");
    let r = owner.post_json("/auth/config/update", &json!({"register": false}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["data"],
        json!({"nativeSignin": true, "register": false, "registration": "closed"})
    );
    let r = s.client().post_json(
        "/auth/register",
        &json!({"email": "n@example.com", "password": "some password"}),
    );
    assert_eq!(r.code(), "REGISTRATION_DISABLED");
    s.restart();
    let r = Client::new(s.port).get("/auth/config");
    assert_eq!(
        r.json()["data"]["registration"],
        "closed",
        "override survives a restart"
    );
    let mut owner = s.client();
    owner.login("owner", "owner-password-1");
    let r = owner.post_json("/auth/config/update", &json!({"registration": "approval"}));
    assert_eq!(r.json()["data"]["register"], true);
    let r = owner.post_json("/auth/config/update", &json!({"registration": "sometimes"}));
    assert_eq!(r.status, 400);
    // `null` drops the override: the file's value (open by default) is in force again, also
    // after a restart.
    let r = owner.post_json("/auth/config/update", &json!({"registration": null}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["registration"], "open");
    s.restart();
    let r = Client::new(s.port).get("/auth/config");
    assert_eq!(r.json()["data"]["registration"], "open");
    let r = s.client().post_json(
        "/auth/register",
        &json!({"email": "m@example.com", "password": "some password"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn cross_site_state_changes_are_refused() {
    let s = TestServer::start("");
    let mut c = s.setup_owner();
    let r = c.send(
        "POST",
        "/auth/logout-all",
        None,
        &[("sec-fetch-site", "cross-site")],
    );
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN".to_string()));
    let r = c.send(
        "POST",
        "/auth/logout-all",
        None,
        &[("origin", "https://evil.example")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(c.get("/auth/me").status, 200, "nothing was changed");
    let own = s.url("");
    let r = c.send(
        "POST",
        "/auth/logout",
        None,
        &[("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
    );
    assert_eq!(r.status, 200);
}
