//! Escalation and takeover: role names as groups, owner invites, the first run, cross-site
//! logout, the session cap, control characters in passwords, retired usernames.

use std::process::Command;

use serde_json::json;

use crate::support::{refuses_to_start, Client, Reply, TestServer};

/// A user promoted to admin by the owner; returns their client and id.
fn admin(s: &TestServer, owner: &mut Client) -> (Client, String) {
    let mut admin = s.register("admin@example.com", "admin password 1");
    let id = admin.get("/auth/me").json()["data"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = owner.send(
        "PATCH",
        &format!("/auth/admin/users/{id}"),
        Some(&json!({"role": "admin"})),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    (admin, id)
}

fn patch_groups(c: &mut Client, id: &str, groups: serde_json::Value) -> Reply {
    c.send(
        "PATCH",
        &format!("/auth/admin/users/{id}"),
        Some(&json!({ "groups": groups })),
        &[],
    )
}

#[test]
fn role_names_are_never_accepted_as_groups() {
    let s = TestServer::start(
        "[[routes]]\npath = \"/owners\"\npolicy = \"authenticated\"\ngroups = [\"owner\"]\nupstream = \"whoami\"\n\n[[routes]]\npath = \"/\"\npolicy = \"authenticated\"\nupstream = \"whoami\"\n",
    );
    let mut owner = s.setup_owner();
    let (mut admin, admin_id) = admin(&s, &mut owner);
    for groups in [
        json!(["owner"]),
        json!(["Owner"]),
        json!(["staff", "admin"]),
        json!(["service"]),
    ] {
        // An admin on themselves, and the owner on anyone.
        let r = patch_groups(&mut admin, &admin_id, groups.clone());
        assert_eq!(
            (r.status, r.code()),
            (400, "VALIDATION_ERROR".into()),
            "{groups}"
        );
        assert!(
            r.json()["error"]["fields"]["groups"].is_string(),
            "{}",
            r.body
        );
        let r = patch_groups(&mut owner, &admin_id, groups.clone());
        assert_eq!(r.status, 400, "{groups}");
        let r = admin.post_json("/auth/admin/invites", &json!({ "groups": groups }));
        assert_eq!(r.status, 400, "invite with {groups}");
    }
    // The admin still cannot pass an owner-only route, and upstreams are told the truth.
    let r = admin.get_with("/owners/x", &[("accept", "application/json")]);
    assert_eq!(r.status, 403);
    let r = admin.get_with("/x", &[("accept", "application/json")]);
    assert_eq!(r.json()["headers"]["remote-groups"], "admin", "{}", r.body);
    // Ordinary groups still work.
    assert_eq!(
        patch_groups(&mut owner, &admin_id, json!(["staff"])).status,
        200
    );
    // A provider's default groups are checked by the same rule.
    let err = refuses_to_start(
        "[[oidc]]\nname = \"corp\"\nissuer = \"https://id.example.com\"\nclient_id = \"a\"\nclient_secret = \"b\"\ndefault_groups = [\"owner\"]\n",
    );
    assert!(err.contains("oidc[0].default_groups[0]"), "{err}");
}

#[test]
fn owner_invites_are_for_owners_only_and_codes_are_shown_once() {
    let s = TestServer::start("[auth]\nregistration = \"invite\"\n");
    let mut owner = s.setup_owner();
    let (mut admin, _) = admin_with_invite(&s, &mut owner);
    let r = owner.post_json("/auth/admin/invites", &json!({"role": "owner"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let code = r.json()["data"]["code"].as_str().expect("code").to_string();
    let id = r.json()["data"]["id"].as_str().expect("id").to_string();
    assert_ne!(code, id);
    // Admins neither see, nor create, nor delete owner invites.
    let listed = admin.get("/auth/admin/invites");
    let invites = listed.json()["data"]["invites"].clone();
    assert!(
        invites
            .as_array()
            .expect("list")
            .iter()
            .all(|i| i["role"] != "owner"),
        "{invites}"
    );
    assert!(!listed.body.contains(&code));
    let r = admin.post_json("/auth/admin/invites", &json!({"role": "owner"}));
    assert_eq!(r.status, 403);
    let r = admin.send("DELETE", &format!("/auth/admin/invites/{id}"), None, &[]);
    assert_eq!(r.status, 404);
    let r = admin.send("DELETE", &format!("/auth/admin/invites/{code}"), None, &[]);
    assert_eq!(r.status, 404);
    // The owner sees it by id, never by code, and the code is not in the database file.
    let listed = owner.get("/auth/admin/invites");
    assert!(
        listed.body.contains(&id) && !listed.body.contains(&code),
        "{}",
        listed.body
    );
    let db = std::fs::read(s.db_path()).expect("database file");
    assert!(
        !db.windows(code.len()).any(|w| w == code.as_bytes()),
        "the invite code is stored in clear"
    );
    // The code still works for whom the owner gives it to, and deleting by id works.
    let mut new_owner = s.client();
    let r = new_owner.post_json(
        &format!("/auth/register?invite={code}"),
        &json!({"email": "second@example.com", "password": "second owner pw"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["data"]["user"]["role"], "owner");
    let r = owner.send("DELETE", &format!("/auth/admin/invites/{id}"), None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
}

/// An admin who registered with an admin invite.
fn admin_with_invite(s: &TestServer, owner: &mut Client) -> (Client, String) {
    let r = owner.post_json("/auth/admin/invites", &json!({"role": "admin"}));
    let code = r.json()["data"]["code"].as_str().expect("code").to_string();
    let mut admin = s.client();
    let r = admin.post_json(
        &format!("/auth/register?invite={code}"),
        &json!({"email": "admin@example.com", "password": "admin password 1"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["data"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    (admin, id)
}

#[test]
fn registration_waits_for_the_owner() {
    let s = TestServer::start("");
    let mut c = s.client();
    let r = c.post_json(
        "/auth/register",
        &json!({"email": "early@example.com", "password": "early password"}),
    );
    assert_eq!(
        (r.status, r.code()),
        (403, "SETUP_REQUIRED".into()),
        "{}",
        r.body
    );
    assert_eq!(c.get("/auth/status").json()["data"]["needsSetup"], true);
    let page = c.get_with("/auth/register", &[("accept", "text/html")]);
    assert!(page.body.contains("/auth/setup"), "{}", page.body);
    s.setup_owner();
    let r = c.post_json(
        "/auth/register",
        &json!({"email": "later@example.com", "password": "later password"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

fn setup_code_command(s: &TestServer) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["setup-code", "--config"])
        .arg(&s.config_path)
        .output()
        .expect("authgate setup-code")
}

#[test]
fn setup_from_the_network_needs_the_setup_code() {
    let mut s = TestServer::start("");
    // Through a trusted proxy, for a client elsewhere on the network.
    let remote = [("x-forwarded-for", "203.0.113.7")];
    let body = json!({"email": "owner@example.com", "password": "owner-password-1"});
    let mut c = s.client();
    let r = c.send("POST", "/auth/setup", Some(&body), &remote);
    assert_eq!(
        (r.status, r.code()),
        (403, "SETUP_CODE_REQUIRED".into()),
        "{}",
        r.body
    );
    assert!(r.body.contains("authgate setup-code"), "{}", r.body);
    let mut wrong = body.clone();
    wrong["setupCode"] = json!("AAAAA-AAAAA-AAAAA");
    let r = c.send("POST", "/auth/setup", Some(&wrong), &remote);
    assert_eq!(r.status, 403);
    assert!(c.cookie.is_none());
    // The page asks for it too.
    let mut headers = remote.to_vec();
    headers.push(("accept", "text/html"));
    let page = c.get_with("/auth/setup", &headers);
    assert!(page.body.contains("name=\"setupCode\""), "{}", page.body);
    let local_page = s
        .client()
        .get_with("/auth/setup", &[("accept", "text/html")]);
    assert!(!local_page.body.contains("name=\"setupCode\""));
    // The command prints the code while the server runs; the code sets the gateway up.
    let out = setup_code_command(&s);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut right = body.clone();
    right["setupCode"] = json!(code.to_lowercase());
    let r = c.send("POST", "/auth/setup", Some(&right), &remote);
    assert_eq!(r.status, 201, "{}", r.body);
    // It was one-time: gone from disk, and the command says setup is done.
    let out = setup_code_command(&s);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("setup is complete"));
    // The log named the code at start.
    let (_, stderr) = s.stop();
    assert!(
        stderr.contains(&code),
        "the start-up log did not show the code: {stderr}"
    );
}

#[test]
fn a_cross_site_logout_link_asks_before_signing_out() {
    let s = TestServer::start("");
    let mut owner = s.setup_owner();
    let r = owner.get_with(
        "/auth/logout?rd=http%3A%2F%2F127.0.0.1%2F",
        &[("sec-fetch-site", "cross-site"), ("accept", "text/html")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("method=\"post\"") && r.body.contains("/auth/logout"));
    assert_eq!(owner.get("/auth/me").status, 200, "still signed in");
    // The button posts from the gateway's own page.
    let mut button = owner.clone();
    let r = button.send_form("/auth/logout", &[]);
    assert_eq!(r.status, 303);
    assert_eq!(button.get("/auth/me").status, 401);
    // Same-site links (an app's "Log out") and typed addresses sign out at once.
    for site in ["same-site", "same-origin", "none"] {
        let mut c = s.client();
        assert_eq!(c.login("owner", "owner-password-1").status, 200);
        let r = c.get_with("/auth/logout", &[("sec-fetch-site", site)]);
        assert_eq!(r.status, 200, "{site}");
        assert_eq!(c.get("/auth/me").status, 401, "{site}");
    }
}

#[test]
fn a_user_has_at_most_max_per_user_sessions_and_the_oldest_go() {
    let s = TestServer::start("[session]\nmax_per_user = 3\n");
    let mut clients = vec![s.setup_owner()];
    for _ in 0..5 {
        let mut c = s.client();
        assert_eq!(c.login("owner", "owner-password-1").status, 200);
        clients.push(c);
    }
    let alive: Vec<u16> = clients
        .iter_mut()
        .map(|c| c.get("/auth/me").status)
        .collect();
    // Six sessions were opened: three remain, the newest among them (sessions opened within
    // one second count as equally old).
    assert_eq!(alive.iter().filter(|s| **s == 200).count(), 3, "{alive:?}");
    assert_eq!(alive[5], 200, "{alive:?}");
    let listed = clients[5].get("/auth/sessions").json()["data"]["sessions"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
}

#[test]
fn passwords_with_control_characters_are_refused() {
    let s = TestServer::start("");
    let mut owner = s.setup_owner();
    for pw in [
        "tab\there password",
        "line\nbreak password",
        "nul\u{0} password",
    ] {
        let r = s.client().post_json(
            "/auth/register",
            &json!({"email": "c@example.com", "password": pw}),
        );
        assert_eq!(r.status, 400, "{pw:?}");
        let problem = r.json()["error"]["fields"]["password"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(problem.contains("control characters"), "{problem}");
        let r = owner.post_json(
            "/auth/change-password",
            &json!({"currentPassword": "owner-password-1", "newPassword": pw}),
        );
        assert_eq!(r.status, 400, "{pw:?}");
    }
}

#[test]
fn usernames_of_renamed_and_deleted_users_stay_theirs() {
    let s = TestServer::start("");
    let mut owner = s.setup_owner();
    let register = |email: &str, username: &str| {
        s.client().post_json(
            "/auth/register",
            &json!({"email": email, "password": "some password 1", "username": username}),
        )
    };
    let r = register("alice@example.com", "alice");
    assert_eq!(r.status, 201);
    let mut alice = s.client();
    assert_eq!(alice.login("alice", "some password 1").status, 200);
    let r = alice.send(
        "PATCH",
        "/auth/me",
        Some(&json!({"username": "alice2"})),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Someone else now asking for "alice" would inherit Remote-User: alice.
    let r = register("mallory@example.com", "alice");
    assert_eq!(r.status, 409, "{}", r.body);
    // Alice may take her name back.
    let r = alice.send(
        "PATCH",
        "/auth/me",
        Some(&json!({"username": "alice"})),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = register("bob@example.com", "bob");
    let bob_id = r.json()["data"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        owner
            .send("DELETE", &format!("/auth/admin/users/{bob_id}"), None, &[])
            .status,
        200
    );
    let r = register("bob2@example.com", "bob");
    assert_eq!(r.status, 409, "{}", r.body);
}
