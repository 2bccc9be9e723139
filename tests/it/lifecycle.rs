//! Account lifecycle: mail-based recovery and verification against a real SMTP sink, approval
//! and invite registration, the admin API, last-owner protection, the audit log, account
//! expiry and the CLI.

use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::support::smtp::{link_in, SmtpSink};
use crate::support::{race, Client, Echo, Reply, TestServer};

fn code(r: &Reply) -> (u16, String) {
    (r.status, r.code())
}

fn user_id(c: &mut Client) -> String {
    c.get("/auth/me").json()["data"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[test]
fn password_reset_by_mail_end_to_end() {
    let smtp = SmtpSink::start();
    let s = TestServer::start(&smtp.config());
    let mut owner = s.setup_owner();
    let mut user = s.register("reset@example.com", "old password 1");
    let id = user_id(&mut user);
    let mut other_device = s.client();
    other_device.login("reset@example.com", "old password 1");

    let mut anon = s.client();
    let known = anon.post_json(
        "/auth/forgot-password",
        &json!({"email": "RESET@example.com"}),
    );
    let unknown = anon.post_json(
        "/auth/forgot-password",
        &json!({"email": "nobody@example.com"}),
    );
    assert_eq!((known.status, unknown.status), (200, 200));
    assert_eq!(
        known.json()["message"],
        unknown.json()["message"],
        "no account enumeration"
    );

    let mail = smtp.wait_for("reset@example.com", 1);
    let (link, token) = link_in(&mail, "/auth/reset-password");
    assert!(
        link.starts_with(&s.url("/auth/reset-password?token=")),
        "built from public_url: {link}"
    );
    // The page behind the link carries the token in the form.
    let path = link.trim_start_matches(&s.url(""));
    let page = anon.get_with(path, &[("accept", "text/html")]);
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains(&format!("name=\"token\" value=\"{token}\"")));

    let r = anon.post_json(
        "/auth/reset-password",
        &json!({"token": token, "password": "short"}),
    );
    assert_eq!(code(&r), (400, "VALIDATION_ERROR".into()));
    let r = anon.post_json(
        "/auth/reset-password",
        &json!({"token": token, "newPassword": "brand new password"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(user.get("/auth/me").status, 401, "every session is revoked");
    assert_eq!(other_device.get("/auth/me").status, 401);
    let r = anon.post_json(
        "/auth/reset-password",
        &json!({"token": token, "password": "another password"}),
    );
    assert_eq!(code(&r), (400, "INVALID_TOKEN".into()), "single use");
    assert_eq!(
        anon.login("reset@example.com", "old password 1").status,
        401
    );
    assert_eq!(
        anon.login("reset@example.com", "brand new password").status,
        200
    );
    let r = anon.post_json(
        "/auth/reset-password",
        &json!({"token": "garbage", "password": "another password"}),
    );
    assert_eq!(code(&r), (400, "INVALID_TOKEN".into()));
    // A mail is asked for (and audited) while the request is answered, and audit entries are
    // written in order: once the later reset's entry is there, so is every mail asked for
    // before it, and only the account's was.
    let entries = owner.audit_until(|e| e["event"] == "password_reset");
    let mailed: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == "password_reset_requested")
        .map(|e| &e["target"])
        .collect();
    assert_eq!(mailed, [&json!(id)], "{entries:?}");
    assert!(smtp.mails_to("nobody@example.com").is_empty());
    assert_eq!(smtp.mails_to("reset@example.com").len(), 1);
}

#[test]
fn password_reset_through_the_pages() {
    let smtp = SmtpSink::start();
    let s = TestServer::start(&smtp.config());
    s.setup_owner();
    s.register("pages@example.com", "old password 1");
    let mut browser = s.client();
    let page = browser.get_with("/auth/forgot-password", &[("accept", "text/html")]);
    assert!(page.body.contains("action=\"/auth/forgot-password\""));
    let r = browser.send_form("/auth/forgot-password", &[("email", "pages@example.com")]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Check your email"), "{}", r.body);
    let (_, token) = link_in(
        &smtp.wait_for("pages@example.com", 1),
        "/auth/reset-password",
    );
    let r = browser.send_form(
        "/auth/reset-password",
        &[("token", &token), ("password", "new page password")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(s.url("/auth/login?done=password-reset"))
    );
    assert_eq!(
        browser
            .login("pages@example.com", "new page password")
            .status,
        200
    );
}

#[test]
fn mail_endpoints_without_smtp_answer_503() {
    let s = TestServer::start("");
    let mut c = s.client();
    let r = c.post_json("/auth/forgot-password", &json!({"email": "a@example.com"}));
    assert_eq!(code(&r), (503, "SMTP_NOT_CONFIGURED".into()));
    let r = c.post_json(
        "/auth/resend-verification",
        &json!({"email": "a@example.com"}),
    );
    assert_eq!(code(&r), (503, "SMTP_NOT_CONFIGURED".into()));
}

#[test]
fn email_verification_gates_login() {
    let smtp = SmtpSink::start();
    let s = TestServer::start(&format!(
        "[auth]\nrequire_email_verification = true\n\n{}",
        smtp.config()
    ));
    s.setup_owner();
    let mut c = s.client();
    let r = c.post_json(
        "/auth/register",
        &json!({"email": "v@example.com", "password": "verify password"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.header("set-cookie").is_none(),
        "no session before verification"
    );
    let r = c.login("v@example.com", "verify password");
    assert_eq!(code(&r), (403, "EMAIL_NOT_VERIFIED".into()));
    let r = c.login("v@example.com", "wrong password");
    assert_eq!(
        code(&r),
        (401, "INVALID_CREDENTIALS".into()),
        "only after a correct password"
    );

    let (link, token) = link_in(&smtp.wait_for("v@example.com", 1), "/auth/verify-email");
    // Opening the link shows a button; it does not verify by itself.
    let page = c.get_with(
        link.trim_start_matches(&s.url("")),
        &[("accept", "text/html")],
    );
    assert!(page.body.contains("action=\"/auth/verify-email\""));
    assert_eq!(
        c.login("v@example.com", "verify password").code(),
        "EMAIL_NOT_VERIFIED"
    );
    // (A resend now would be throttled: the registration mail counts. See mail_limits.)
    let r = c.send_form("/auth/verify-email", &[("token", &token)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(s.url("/auth/login?done=email-confirmed"))
    );
    assert_eq!(c.login("v@example.com", "verify password").status, 200);
    let r = c.post_json("/auth/verify-email", &json!({"token": token}));
    assert_eq!(code(&r), (400, "INVALID_TOKEN".into()));
}

#[test]
fn approval_flow_end_to_end() {
    let s = TestServer::start("[auth]\nregistration = \"approval\"\n");
    let mut owner = s.setup_owner();
    let mut c = s.client();
    let r = c.post_json(
        "/auth/register",
        &json!({"email": "wait@example.com", "password": "pending password"}),
    );
    assert_eq!(r.json()["data"]["user"]["status"], "pending");
    assert_eq!(
        c.login("wait@example.com", "pending password").code(),
        "ACCOUNT_PENDING"
    );
    let pending = owner.get("/auth/admin/users?status=pending");
    let users = pending.json()["data"]["users"]
        .as_array()
        .cloned()
        .expect("users");
    assert_eq!(users.len(), 1);
    let id = users[0]["id"].as_str().expect("id").to_string();
    let r = owner.send(
        "PATCH",
        &format!("/auth/admin/users/{id}"),
        Some(&json!({"status": "active"})),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.login("wait@example.com", "pending password").status, 200);
    let found = owner.get("/auth/admin/users?q=WAIT");
    assert_eq!(
        found.json()["data"]["users"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn invite_flow_end_to_end() {
    let s = TestServer::start("[auth]\nregistration = \"invite\"\n");
    let mut owner = s.setup_owner();
    let mut c = s.client();
    let r = c.post_json(
        "/auth/register",
        &json!({"email": "i@example.com", "password": "invite password"}),
    );
    assert_eq!(code(&r), (403, "INVITE_REQUIRED".into()));
    let r = owner.post_json(
        "/auth/admin/invites",
        &json!({"role": "admin", "groups": ["ops"], "uses": 1, "expiresIn": "7d"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let invite = r.json()["data"]["code"].as_str().expect("code").to_string();
    assert!(r.json()["data"]["link"]
        .as_str()
        .expect("link")
        .ends_with(&format!("/auth/register?invite={invite}")));
    let path = format!("/auth/register?invite={invite}");
    let r = c.post_json(
        &path,
        &json!({"email": "i@example.com", "password": "invite password"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["data"]["user"]["role"], "admin");
    assert_eq!(r.json()["data"]["user"]["groups"], json!(["ops"]));
    assert!(c.cookie.is_some());
    let r = s.client().post_json(
        &path,
        &json!({"email": "j@example.com", "password": "invite password"}),
    );
    assert_eq!(code(&r), (403, "INVITE_REQUIRED".into()), "used up");
    let listed = owner.get("/auth/admin/invites");
    assert_eq!(listed.json()["data"]["invites"][0]["used"], 1);
    assert_eq!(
        owner
            .send(
                "DELETE",
                &format!("/auth/admin/invites/{invite}"),
                None,
                &[]
            )
            .status,
        200
    );
    assert_eq!(
        owner
            .send(
                "DELETE",
                &format!("/auth/admin/invites/{invite}"),
                None,
                &[]
            )
            .status,
        404
    );
    // The invite's group counts for routes and headers.
    let me = c.get("/auth/me");
    assert_eq!(me.json()["data"]["user"]["groups"], json!(["ops"]));
}

#[test]
fn invites_in_other_modes() {
    let s = TestServer::start("");
    let mut owner = s.setup_owner();
    let r = s.client().post_json(
        "/auth/register?invite=nonsense",
        &json!({"email": "x@example.com", "password": "some password"}),
    );
    assert_eq!(code(&r), (400, "INVALID_TOKEN".into()));
    let code_ = owner.post_json("/auth/admin/invites", &json!({})).json()["data"]["code"]
        .as_str()
        .expect("code")
        .to_string();
    owner.post_json("/auth/config/update", &json!({"registration": "closed"}));
    let r = s.client().post_json(
        &format!("/auth/register?invite={code_}"),
        &json!({"email": "x@example.com", "password": "some password"}),
    );
    assert_eq!(code(&r), (403, "REGISTRATION_DISABLED".into()));
}

#[test]
fn concurrent_registrations_never_exceed_an_invites_uses() {
    let s = TestServer::start("[auth]\nregistration = \"invite\"\n");
    let mut owner = s.setup_owner();
    let invite = owner
        .post_json("/auth/admin/invites", &json!({"uses": 3}))
        .json()["data"]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let port = s.port;
    let replies = race(10, move |i| {
        Client::new(port).post_json(
            &format!("/auth/register?invite={invite}"),
            &json!({"email": format!("r{i}@example.com"), "password": "race password"}),
        )
    });
    assert_eq!(
        replies.iter().filter(|r| r.status == 201).count(),
        3,
        "{replies:?}"
    );
    assert!(replies
        .iter()
        .filter(|r| r.status != 201)
        .all(|r| r.code() == "INVITE_REQUIRED"));
    let invites = owner.get("/auth/admin/invites").json()["data"]["invites"].clone();
    assert_eq!(invites[0]["used"], 3);
    assert_eq!(
        owner.get("/auth/admin/users").json()["data"]["users"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
}

#[test]
fn nobody_can_remove_the_last_owner_and_admins_cannot_make_owners() {
    let s = TestServer::start("");
    let mut owner = s.setup_owner();
    let owner_id = user_id(&mut owner);
    let path = format!("/auth/admin/users/{owner_id}");
    for change in [
        json!({"role": "admin"}),
        json!({"status": "disabled"}),
        json!({"role": "user"}),
    ] {
        let r = owner.send("PATCH", &path, Some(&change), &[]);
        assert_eq!(code(&r), (403, "FORBIDDEN".into()), "{change}");
    }
    assert_eq!(owner.send("DELETE", &path, None, &[]).status, 403);
    assert_eq!(
        owner.get("/auth/me").json()["data"]["user"]["role"],
        "owner"
    );

    let mut admin = s.register("admin@example.com", "admin password");
    let admin_id = user_id(&mut admin);
    owner.send(
        "PATCH",
        &format!("/auth/admin/users/{admin_id}"),
        Some(&json!({"role": "admin"})),
        &[],
    );
    let mut user = s.register("user@example.com", "user password 1");
    let uid = user_id(&mut user);
    assert_eq!(
        user.get("/auth/admin/users").status,
        403,
        "users are not admins"
    );
    let r = admin.send(
        "PATCH",
        &format!("/auth/admin/users/{uid}"),
        Some(&json!({"role": "owner"})),
        &[],
    );
    assert_eq!(
        code(&r),
        (403, "FORBIDDEN".into()),
        "an admin cannot make an owner"
    );
    assert_eq!(
        admin
            .send("PATCH", &path, Some(&json!({"role": "user"})), &[])
            .status,
        403,
        "nor touch one"
    );
    assert_eq!(
        admin
            .post_json("/auth/admin/invites", &json!({"role": "owner"}))
            .status,
        403
    );
    // A second owner makes the first one demotable.
    assert_eq!(
        owner
            .send(
                "PATCH",
                &format!("/auth/admin/users/{uid}"),
                Some(&json!({"role": "owner"})),
                &[]
            )
            .status,
        200
    );
    assert_eq!(
        owner
            .send("PATCH", &path, Some(&json!({"role": "admin"})), &[])
            .status,
        200
    );
}

#[test]
fn disabling_or_deleting_kills_live_sessions_and_groups_apply_at_once() {
    let echo = Echo::start();
    let s = TestServer::with_upstream(&echo.upstream(), "authenticated");
    let mut owner = s.setup_owner();
    let mut user = s.register("live@example.com", "live password");
    let uid = user_id(&mut user);
    assert_eq!(user.get("/app").status, 200);
    let r = owner.send(
        "PATCH",
        &format!("/auth/admin/users/{uid}"),
        Some(&json!({"groups": ["ops", "dev"]})),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        user.get("/app").echoed_headers()["remote-groups"],
        json!(["user,ops,dev"])
    );
    let r = owner.send(
        "PATCH",
        &format!("/auth/admin/users/{uid}"),
        Some(&json!({"status": "disabled"})),
        &[],
    );
    assert_eq!(r.json()["data"]["revokedSessions"], 1);
    assert_eq!(
        user.get("/app").status,
        401,
        "the live session died at once"
    );
    assert_eq!(
        user.login("live@example.com", "live password").code(),
        "ACCOUNT_DISABLED"
    );
    owner.send(
        "PATCH",
        &format!("/auth/admin/users/{uid}"),
        Some(&json!({"status": "active"})),
        &[],
    );
    assert_eq!(user.login("live@example.com", "live password").status, 200);
    assert_eq!(
        owner
            .send(
                "DELETE",
                &format!("/auth/admin/users/{uid}/sessions"),
                None,
                &[]
            )
            .status,
        200
    );
    assert_eq!(user.get("/app").status, 401);
    user.login("live@example.com", "live password");
    assert_eq!(
        owner
            .send("DELETE", &format!("/auth/admin/users/{uid}"), None, &[])
            .status,
        200
    );
    assert_eq!(user.get("/app").status, 401);
    assert_eq!(owner.get(&format!("/auth/admin/users/{uid}")).status, 404);
    // The email is free again.
    s.register("live@example.com", "live password");
}

#[test]
fn the_audit_log_records_actions_newest_first_with_pages() {
    let s = TestServer::start("");
    let mut owner = s.setup_owner();
    let mut c = s.client();
    c.login("owner", "wrong password");
    c.login("owner", "owner-password-1");
    owner.post_json("/auth/admin/invites", &json!({}));
    let entries = owner.audit_until(|e| e["event"] == "invite_create");
    let events: Vec<&str> = entries.iter().filter_map(|e| e["event"].as_str()).collect();
    let pos = |name: &str| {
        events
            .iter()
            .position(|e| *e == name)
            .unwrap_or_else(|| panic!("{name} missing in {events:?}"))
    };
    assert!(
        pos("invite_create") < pos("login") && pos("login") < pos("login_failed"),
        "{events:?}"
    );
    assert!(events.contains(&"account_created"));
    assert!(
        !serde_json::to_string(&entries)
            .expect("json")
            .contains("owner-password-1"),
        "no secrets"
    );
    let first = owner.get("/auth/admin/audit?limit=2");
    let next = first.json()["data"]["next"].as_u64().expect("next page");
    let page2 = owner.get(&format!("/auth/admin/audit?limit=2&before={next}"));
    let ids: Vec<u64> = page2.json()["data"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert!(ids.iter().all(|id| *id < next) && ids.len() == 2, "{ids:?}");
    let mut user = s.register("u@example.com", "user password 1");
    assert_eq!(user.get("/auth/admin/audit").status, 403);
}

#[test]
fn expired_accounts_are_disabled_by_validate() {
    let s = TestServer::start("[security]\nvalidate_token = \"cron-secret-token\"\n");
    let mut owner = s.setup_owner();
    let mut user = s.register("exp@example.com", "expiring password");
    let uid = user_id(&mut user);
    let r = owner.send(
        "PATCH",
        &format!("/auth/admin/users/{uid}"),
        Some(&json!({"expiresAt": "2001-01-01T00:00:00Z"})),
        &[],
    );
    assert_eq!(
        r.json()["data"]["user"]["expiresAt"],
        "2001-01-01T00:00:00Z"
    );
    assert_eq!(
        user.get("/auth/me").status,
        401,
        "an expired account has no live session"
    );
    let mut cron = s.client();
    let r = cron.get_with("/auth/validate", &[("authorization", "Bearer wrong")]);
    assert_eq!(r.status, 401);
    let r = cron.send(
        "POST",
        "/auth/validate",
        None,
        &[("authorization", "Bearer cron-secret-token")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["updatedIds"], json!([uid]));
    assert!(r.json()["data"]["removedSessions"].as_u64().expect("count") >= 1);
    let r = owner.get(&format!("/auth/admin/users/{uid}"));
    assert_eq!(r.json()["data"]["user"]["status"], "disabled");
    assert_eq!(
        owner.get("/auth/validate").json()["data"]["updatedIds"],
        json!([])
    );
}

pub(crate) fn cli(s: &TestServer, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authgate"));
    cmd.args(args);
    if args[0] != "hash-password" {
        cmd.arg("--config").arg(&s.config_path);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cli");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("cli");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_manages_users_and_invites_on_the_same_database() {
    let mut s = TestServer::start("");
    s.setup_owner();
    let (ok, out, err) = cli(&s, &["user", "list"], None);
    if crate::support::Storage::suite_is_postgres() {
        // A shared database has no single-process lock: the CLI works beside the server.
        assert!(ok && out.contains("owner@example.com"), "{out}{err}");
    } else {
        assert!(!ok && err.contains("in use by another process"), "{err}");
    }
    s.stop();

    let (ok, out, err) = cli(
        &s,
        &[
            "user",
            "add",
            "--email",
            "cli@example.com",
            "--username",
            "cli",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("cli password 1\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("cli@example.com"));
    let (ok, out, _) = cli(&s, &["user", "add", "--email", "gen@example.com"], None);
    assert!(ok);
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("generated password")
        .to_string();
    let (ok, _, err) = cli(&s, &["user", "add", "--email", "cli@example.com"], None);
    assert!(!ok && err.contains("already registered"), "{err}");
    let (ok, out, _) = cli(&s, &["user", "list"], None);
    assert!(
        ok && out.contains("cli@example.com")
            && out.contains("admin")
            && out.contains("owner@example.com"),
        "{out}"
    );
    let (ok, _, err) = cli(
        &s,
        &["user", "passwd", "CLI", "--password-stdin"],
        Some("changed password\n"),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&s, &["user", "role", "gen@example.com", "admin"], None);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&s, &["user", "role", "owner", "user"], None);
    assert!(!ok && err.contains("last owner"), "{err}");
    let (ok, _, err) = cli(&s, &["user", "disable", "owner@example.com"], None);
    assert!(!ok && err.contains("last owner"), "{err}");
    let (ok, out, err) = cli(
        &s,
        &[
            "invite",
            "create",
            "--role",
            "user",
            "--groups",
            "a,b",
            "--uses",
            "2",
            "--expires",
            "7d",
        ],
        None,
    );
    assert!(ok, "{err}");
    let invite = out.lines().next().expect("code").to_string();
    assert!(out.contains(&format!("/auth/register?invite={invite}")));
    let (ok, out, _) = cli(&s, &["hash-password", "--password-stdin"], Some("x\n"));
    assert!(ok && out.starts_with("$argon2id$"));

    s.restart();
    let mut c = s.client();
    assert_eq!(c.login("cli", "changed password").status, 200);
    assert_eq!(c.get("/auth/me").json()["data"]["user"]["role"], "admin");
    assert_eq!(s.client().login("gen@example.com", &generated).status, 200);
    let r = s.client().post_json(
        &format!("/auth/register?invite={invite}"),
        &json!({"email": "inv@example.com", "password": "some password"}),
    );
    assert_eq!(r.json()["data"]["user"]["groups"], json!(["a", "b"]));
    let _: Value = r.json();
}
