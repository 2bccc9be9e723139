//! Second factors against the real binary: an authenticator app enrolled over the API with
//! codes computed here, the half-open session a right password opens refused by the proxy,
//! forward auth and the API, completed by a code; and once in a real browser, from the
//! account page to signing in with a code and with a recovery code.

use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::support::browser::{Browser, Viewport};
use crate::support::{Echo, TestServer};

/// The code an app with `secret` (base32) shows `steps` steps from now.
fn code(secret: &str, steps: i64) -> String {
    let bytes = Secret::Encoded(secret.to_string())
        .to_bytes()
        .expect("a base32 secret");
    let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, bytes, None, String::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    totp.generate(now.saturating_add_signed(steps * 30))
}

#[test]
fn a_half_open_session_is_no_session_until_the_code() {
    let echo = Echo::start();
    let mut s = TestServer::with_upstream(&echo.upstream(), "authenticated");
    let mut owner = s.setup_owner();
    let r = owner.post_json("/auth/2fa/totp/setup", &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = r.json()["data"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = owner.post_json("/auth/2fa/totp/confirm", &json!({"code": code(&secret, 0)}));
    assert_eq!(r.status, 200, "{}", r.body);

    let mut c = s.client();
    let r = c.login("owner", "owner-password-1");
    assert_eq!(r.json()["data"]["secondFactorRequired"], true, "{}", r.body);
    // Everything but the second step treats it as no session.
    assert_eq!(c.get("/auth/me").status, 401);
    assert_eq!(c.get("/app/x").status, 401);
    let verify = c.get_with(
        "/auth/verify",
        &[
            ("x-original-url", &s.url("/app/x")),
            ("x-original-method", "GET"),
        ],
    );
    assert_eq!(verify.status, 401);
    // Wrong codes count towards the lockout like wrong passwords (5 by default).
    let mut other = s.client();
    assert_eq!(other.login("owner", "owner-password-1").status, 200);
    for _ in 0..4 {
        assert_eq!(
            other
                .post_json("/auth/2fa/verify", &json!({"code": "000000"}))
                .status,
            401
        );
    }
    let r = other.post_json("/auth/2fa/verify", &json!({"code": "000001"}));
    assert_eq!(
        (r.status, r.code().as_str()),
        (423, "ACCOUNT_LOCKED"),
        "{}",
        r.body
    );
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        c.post_json("/auth/2fa/verify", &json!({"code": code(&secret, 1)}))
            .status,
        423
    );
    s.stop();
    s.respawn();
    let mut c = s.client();
    if crate::support::Storage::suite_is_postgres() {
        // Counters are stored with the shared backend: the lock outlives a restart.
        let r = c.login("owner", "owner-password-1");
        assert_eq!(
            (r.status, r.code().as_str()),
            (423, "ACCOUNT_LOCKED"),
            "{}",
            r.body
        );
        return;
    }
    // (With redb, counters live in memory: a restart is a fresh start for the limits.)
    assert_eq!(
        c.login("owner", "owner-password-1").json()["data"]["secondFactorRequired"],
        true
    );
    // A replayed code is refused; the next one completes the session.
    assert_eq!(
        c.post_json("/auth/2fa/verify", &json!({"code": code(&secret, 0)}))
            .status,
        401
    );
    let r = c.post_json("/auth/2fa/verify", &json!({"code": code(&secret, 1)}));
    assert_eq!(r.status, 200, "{}", r.body);
    // The app learns how the session was authenticated; a client's own claim never arrives.
    let app = c.get_with(
        "/app/x",
        &[
            ("remote-auth-methods", "pwd,otp,passkey"),
            ("remote_auth_methods", "x"),
        ],
    );
    assert_eq!(app.status, 200);
    assert_eq!(app.echoed_headers()["remote-user"], json!(["owner"]));
    assert_eq!(
        app.echoed_headers()["remote-auth-methods"],
        json!(["pwd,otp"]),
        "{}",
        app.body
    );
    assert!(app.echoed_headers().get("remote_auth_methods").is_none());
    let me = c.get("/auth/me").json();
    assert_eq!(me["data"]["session"]["authMethods"], json!(["pwd", "otp"]));
    assert_eq!(me["data"]["secondFactor"]["recoveryCodesLeft"], 10);
}

#[test]
fn enrol_from_the_account_page_then_sign_in_with_a_code_and_a_recovery_code() {
    let s = TestServer::start("[ui]\ntitle = \"Example Corp\"\n");
    s.setup_owner();
    let b = Browser::new(Viewport::PHONE);
    let sign_in = |b: &Browser| {
        b.goto(&s.url("/auth/login"));
        b.fill("Email or username", "owner");
        b.fill("Password", "owner-password-1");
        b.click("Sign in");
    };
    sign_in(&b);
    b.click("Set up an authenticator app");
    assert!(
        b.title().starts_with("Set up two-step verification"),
        "{}",
        b.title()
    );
    assert!(!b.has_horizontal_scroll());
    let text = b.text();
    let secret = text
        .split("Enter this key in the app by hand:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no key shown: {text}"))
        .to_string();
    b.fill("Code from the app", "000000");
    b.click("Turn on two-step verification");
    let a = b.aria("Code from the app");
    assert!(
        a.invalid,
        "a wrong first code is refused at the field: {a:?}"
    );
    b.fill("Code from the app", &code(&secret, 0));
    b.click("Turn on two-step verification");
    assert!(b.title().starts_with("Your recovery codes"), "{}", b.text());
    let text = b.text();
    let codes: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.len() == 11 && w.as_bytes()[5] == b'-')
        .collect();
    assert_eq!(codes.len(), 10, "{text}");
    let recovery = codes[0].to_string();
    b.click_link("Continue");
    assert!(
        b.text()
            .contains("On: an authenticator app · 10 recovery codes left"),
        "{}",
        b.text()
    );

    // Signing in now asks for the code.
    b.goto(&s.url("/auth/"));
    b.click("Sign out");
    sign_in(&b);
    assert!(
        b.title().starts_with("Two-step verification"),
        "{}",
        b.title()
    );
    b.fill("Code", "123456");
    b.click("Verify");
    let a = b.aria("Code");
    assert!(a.invalid && a.description.contains("not right"), "{a:?}");
    b.fill("Code", &code(&secret, 1));
    b.click("Verify");
    assert!(b.title().starts_with("Your account"), "{}", b.title());

    // And with a recovery code, once.
    b.click("Sign out");
    sign_in(&b);
    b.fill("Code", &recovery);
    b.click("Verify");
    assert!(b.text().contains("9 recovery codes left"), "{}", b.text());
    let mut api = s.client();
    let r = api.login("owner", "owner-password-1");
    assert_eq!(r.json()["data"]["secondFactorRequired"], Value::Bool(true));
    assert_eq!(
        api.post_json("/auth/2fa/verify", &json!({"code": recovery}))
            .status,
        401
    );
}

#[test]
fn a_route_can_require_a_second_factor_and_a_session_steps_up() {
    let echo = Echo::start();
    let s = TestServer::start(&format!(
        "[[routes]]\npath = \"/admin\"\nupstream = \"{up}\"\npolicy = \"authenticated\"\nsecond_factor = true\n\n\
         [[routes]]\npath = \"/\"\nupstream = \"{up}\"\npolicy = \"authenticated\"\n",
        up = echo.upstream()
    ));
    let mut owner = s.setup_owner();
    // A password alone reaches the app, not the route that needs more.
    assert_eq!(owner.get("/app").status, 200);
    let r = owner.get("/admin/panel");
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "SECOND_FACTOR_REQUIRED"),
        "{}",
        r.body
    );
    let r = owner.get_with("/admin/panel", &[("accept", "text/html")]);
    assert_eq!(r.status, 302);
    let to = r.header("location").unwrap_or_default();
    assert!(
        to.starts_with(&s.url("/auth/2fa?rd=")) && to.contains("%2Fadmin%2Fpanel"),
        "{to}"
    );
    let forward = owner.get_with(
        "/auth/forward",
        &[
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", &format!("127.0.0.1:{}", s.port)),
            ("x-forwarded-uri", "/admin/panel"),
            ("x-forwarded-method", "GET"),
        ],
    );
    assert_eq!(forward.status, 403, "{}", forward.body);

    // Another device signed in before the app was set up...
    let mut laptop = s.client();
    assert_eq!(laptop.login("owner", "owner-password-1").status, 200);
    // ...enrolling proves the factor for this session...
    let r = owner.post_json("/auth/2fa/totp/setup", &json!({}));
    let secret = r.json()["data"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = owner.post_json("/auth/2fa/totp/confirm", &json!({"code": code(&secret, 0)}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = owner.get("/admin/panel");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.echoed_headers()["remote-auth-methods"],
        json!(["pwd,otp"])
    );
    // ...and the other steps up with a code.
    assert_eq!(laptop.get("/admin/panel").status, 403);
    let r = laptop.post_json("/auth/2fa/verify", &json!({"code": code(&secret, 1)}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(laptop.get("/admin/panel").status, 200);
}

#[test]
fn the_cli_resets_a_lost_second_factor() {
    let mut s = TestServer::start("");
    let mut owner = s.setup_owner();
    let r = owner.post_json("/auth/2fa/totp/setup", &json!({}));
    let secret = r.json()["data"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        owner
            .post_json("/auth/2fa/totp/confirm", &json!({"code": code(&secret, 0)}))
            .status,
        200
    );
    assert_eq!(
        s.client().login("owner", "owner-password-1").json()["data"]["secondFactorRequired"],
        true
    );
    s.stop();
    let (ok, out, err) = crate::lifecycle::cli(&s, &["user", "reset-2fa", "owner"], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("second factors of owner@example.com removed"),
        "{out}"
    );
    s.respawn();
    let mut c = s.client();
    let r = c.login("owner", "owner-password-1");
    assert!(
        r.json()["data"]["user"].is_object(),
        "a password alone signs in again: {}",
        r.body
    );
    assert_eq!(
        c.get("/auth/me").json()["data"]["secondFactor"]["totp"],
        false
    );
    let audit = c.audit_until(|e| e["event"] == "second_factor_reset");
    assert!(!audit.is_empty());
}

#[test]
fn a_passkey_is_added_on_the_account_page_and_signs_in_without_a_password() {
    // Passkeys need a secure context and a domain name: http://localhost is both.
    let s = TestServer::start_with(|port| {
        (
            format!("public_url = \"http://localhost:{port}\""),
            String::new(),
        )
    });
    s.setup_owner();
    let at = |path: &str| format!("http://localhost:{}{path}", s.port);
    let b = Browser::with_scripts(Viewport::DESKTOP);
    b.add_passkey_authenticator();
    b.goto(&at("/auth/login"));
    b.fill("Email or username", "owner");
    b.fill("Password", "owner-password-1");
    b.click("Sign in");
    assert!(b.title().starts_with("Your account"), "{}", b.title());
    b.fill("Name of the new passkey", "This laptop");
    b.click("Add a passkey");
    b.wait_for_text("Passkey added: you can sign in with it now.");
    assert!(b.text().contains("This laptop"), "{}", b.text());

    b.click("Sign out");
    assert!(b.title().starts_with("Sign in"), "{}", b.title());
    b.click("Sign in with a passkey");
    b.wait_for_text("Signed in as owner");
    let mut api = s.client();
    let r = api.login("owner", "owner-password-1");
    assert_eq!(
        r.json()["data"]["methods"],
        json!(["passkey"]),
        "{}",
        r.body
    );
}
