//! API tokens around the request path: service accounts, tokens made with the CLI while the
//! server is stopped, bad tokens under the client failure limit, the token list and last use,
//! and token checks under load while password hashing is saturated.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::lifecycle::cli;
use crate::operations::eventually;
use crate::support::smtp::SmtpSink;
use crate::support::{race, Client};
use crate::tokens::{create_at, create_token, gateway, with_bearer};

#[test]
fn service_accounts_have_tokens_and_no_way_to_sign_in() {
    let smtp = SmtpSink::start();
    let (_echo, s, mut owner) = gateway(&smtp.config());
    let r = owner.post_json(
        "/auth/admin/service-accounts",
        &json!({"name": "backup-bot", "groups": ["backups"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let account = r.json()["data"].clone();
    assert_eq!(account["role"], "service");
    assert_eq!(account["email"], "backup-bot@service.invalid");
    let id = account["id"].as_str().expect("id").to_string();
    let tokens = format!("/auth/admin/service-accounts/{id}/tokens");
    let (_, token) = create_at(&mut owner, &tokens, json!({"name": "nightly"}));

    let r = with_bearer(&s, "/app/backup", &token);
    assert_eq!(r.status, 200, "{}", r.body);
    let echoed = r.echoed_headers();
    assert_eq!(echoed["remote-user"], json!(["backup-bot"]));
    assert_eq!(echoed["remote-groups"], json!(["service,backups"]));
    assert_eq!(echoed["remote-auth-methods"], json!(["token"]));

    // No password opens it (four tries: below the account's lockout).
    for identifier in ["backup-bot", "backup-bot@service.invalid"] {
        for password in ["backup-bot", "owner-password-1"] {
            let r = s.client().login(identifier, password);
            assert_eq!(
                (r.status, r.code().as_str()),
                (401, "INVALID_CREDENTIALS"),
                "{identifier} {password:?}: {}",
                r.body
            );
            assert!(r.header("set-cookie").is_none(), "{identifier}");
        }
    }
    // Nor a reset link: none is sent (a user asking next gets theirs, so mail works).
    let r = s.client().post_json(
        "/auth/forgot-password",
        &json!({"email": "backup-bot@service.invalid"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.client().post_json(
        "/auth/forgot-password",
        &json!({"email": "owner@example.com"}),
    );
    assert_eq!(r.status, 200);
    smtp.wait_for("owner@example.com", 1);
    assert!(smtp.mails_to("backup-bot@service.invalid").is_empty());

    // Listed, and its token revoked by an admin.
    let r = owner.get("/auth/admin/service-accounts");
    assert_eq!(r.json()["data"][0]["tokens"], 1, "{}", r.body);
    let list = owner.get(&tokens);
    assert!(!list.body.contains(&token[4..]), "{}", list.body);
    let token_id = list.json()["data"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = owner.send("DELETE", &format!("{tokens}/{token_id}"), None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(with_bearer(&s, "/app/backup", &token).status, 401);
}

#[test]
fn the_cli_makes_a_service_account_and_its_token_offline() {
    let (_echo, mut s, _) = gateway("");
    s.stop();
    let (ok, out, err) = cli(
        &s,
        &["service-account", "add", "ci-bot", "--groups", "deploy"],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("ci-bot"), "{out}");
    let (ok, out, err) = cli(
        &s,
        &[
            "token",
            "create",
            "--user",
            "ci-bot",
            "--name",
            "deploy",
            "--expires",
            "90d",
        ],
        None,
    );
    assert!(ok, "{err}");
    let token = out.trim().to_string();
    assert!(token.starts_with("agt_") && token.len() == 47, "{out}");
    let (ok, out, err) = cli(&s, &["token", "list", "--user", "ci-bot"], None);
    assert!(ok, "{err}");
    assert!(
        out.contains(&token[..10]) && out.contains("deploy"),
        "{out}"
    );
    assert!(!out.contains(&token[4..]), "{out}");

    s.respawn();
    let r = with_bearer(&s, "/app/deploy", &token);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.echoed_headers()["remote-user"], json!(["ci-bot"]));
    assert_eq!(
        r.echoed_headers()["remote-groups"],
        json!(["service,deploy"])
    );
}

#[test]
fn bad_tokens_count_towards_the_client_limit() {
    let (_echo, s, mut owner) =
        gateway("[security]\nip_rate_limit = \"5/min\"\nmax_failed_logins = 100");
    let (_, good) = create_token(&mut owner, json!({"name": "good"}));
    let from = ("x-forwarded-for", "203.0.113.9");
    let bad = format!("agt_{}", "C".repeat(43));
    for i in 0..5 {
        let r = s
            .client()
            .get_with("/app", &[from, ("authorization", &format!("Bearer {bad}"))]);
        assert_eq!(r.status, 401, "bad token #{}: {}", i + 1, r.body);
    }
    let r = s
        .client()
        .get_with("/app", &[from, ("authorization", &format!("Bearer {bad}"))]);
    assert_eq!(
        (r.status, r.code().as_str()),
        (429, "RATE_LIMITED"),
        "{}",
        r.body
    );
    let retry: u64 = r
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // The same client's password is refused too, before it is checked.
    let r = s.client().send(
        "POST",
        "/auth/login",
        Some(&json!({"identifier": "owner", "password": "owner-password-1"})),
        &[from],
    );
    assert_eq!((r.status, r.code().as_str()), (429, "RATE_LIMITED"));
    assert!(r.header("retry-after").is_some());
    // Another client is not affected.
    let r = s.client().get_with(
        "/app",
        &[
            ("x-forwarded-for", "203.0.113.10"),
            ("authorization", &format!("Bearer {good}")),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn the_token_list_never_shows_the_secret_and_records_last_use() {
    let (_echo, s, mut owner) = gateway("");
    let r = owner.post_json(
        "/auth/tokens",
        &json!({"name": "backup", "expiresIn": "90d", "groups": ["owner"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json()["data"].clone();
    let token = created["token"].as_str().expect("token").to_string();
    assert_eq!(created["prefix"], json!(&token[..10]));
    assert_eq!(created["groups"], json!(["owner"]));
    assert_eq!(created["lastUsedAt"], Value::Null);
    assert_eq!(created["expired"], false);

    let list = owner.get("/auth/tokens");
    assert_eq!(list.status, 200);
    assert!(!list.body.contains(&token[4..]), "{}", list.body);
    let listed = list.json()["data"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert!(listed[0].get("token").is_none(), "{listed}");
    assert_eq!(listed[0]["id"], created["id"]);
    assert_eq!(listed[0]["lastUsedAt"], Value::Null);

    assert_eq!(with_bearer(&s, "/app", &token).status, 200);
    let mut last_used = Value::Null;
    eventually("the token's first use to be recorded", || {
        last_used = owner.get("/auth/tokens").json()["data"][0]["lastUsedAt"].clone();
        !last_used.is_null()
    });
    assert!(
        last_used.as_str().is_some_and(|t| t.ends_with('Z')),
        "{last_used}"
    );
    let list = owner.get("/auth/tokens");
    assert!(!list.body.contains(&token[4..]), "{}", list.body);
}

#[test]
fn token_checks_never_wait_for_password_hashing() {
    const TOKEN_REQUESTS: usize = 400;
    const LOGINS: usize = 4;
    let (_echo, s, mut owner) =
        gateway("[security]\nhash_concurrency = 1\nhash_queue = 1\nip_rate_limit = \"10000/min\"");
    let (_, token) = create_token(&mut owner, json!({"name": "load"}));
    let port = s.port;
    let finished = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let login_statuses = Arc::new(Mutex::new(Vec::new()));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let replies = {
        let (finished, done) = (Arc::clone(&finished), Arc::clone(&done));
        let (login_statuses, latencies) = (Arc::clone(&login_statuses), Arc::clone(&latencies));
        race(LOGINS + TOKEN_REQUESTS, move |i| {
            if i < LOGINS {
                // Keep the one hashing slot (and its queue) busy for the whole burst.
                // (Bounded even if the burst never completes.)
                let mut c = Client::new(port);
                let give_up = Instant::now() + Duration::from_secs(30);
                loop {
                    let last = c.login("owner", "owner-password-1");
                    login_statuses.lock().expect("statuses").push(last.status);
                    if done.load(Ordering::Acquire) || Instant::now() > give_up {
                        return last;
                    }
                }
            }
            let at = Instant::now();
            let r = Client::new(port).get_with(
                &format!("/app/{i}"),
                &[("authorization", &format!("Bearer {token}"))],
            );
            latencies.lock().expect("latencies").push(at.elapsed());
            if finished.fetch_add(1, Ordering::AcqRel) + 1 == TOKEN_REQUESTS {
                done.store(true, Ordering::Release);
            }
            r
        })
    };
    let elapsed = started.elapsed();
    let failed: Vec<_> = replies[LOGINS..]
        .iter()
        .filter(|r| r.status != 200)
        .map(|r| (r.status, r.body.clone()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} token requests failed: {failed:?}",
        failed.len()
    );
    for (i, r) in replies[LOGINS..].iter().enumerate() {
        assert_eq!(r.echoed_headers()["remote-auth-methods"], json!(["token"]));
        assert_eq!(
            r.json()["uri"],
            json!(format!("/app/{}", i + LOGINS)),
            "each answer is its own request's"
        );
    }
    let logins = login_statuses.lock().expect("statuses").clone();
    assert!(logins.iter().all(|s| *s == 200 || *s == 503), "{logins:?}");
    assert!(logins.contains(&200), "{logins:?}");
    let mut latencies = latencies.lock().expect("latencies").clone();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "{TOKEN_REQUESTS} token requests at once beside {LOGINS} logins in a loop: all in {elapsed:?}; \
         latency p50 {:?}, p99 {:?}, max {:?}; logins {} ({} refused with 503)",
        at(0.5),
        at(0.99),
        at(1.0),
        logins.len(),
        logins.iter().filter(|s| **s == 503).count(),
    );
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
}

/// With `session.bearer = true`, a session token sent as a bearer authenticates, and no
/// bearer that is a session token in form reaches the app: neither the one that
/// authenticated nor another live session sent beside a cookie.
#[test]
fn bearer_sessions_never_reach_the_app() {
    let (_echo, s, owner) = crate::tokens::gateway("[session]\nbearer = true");
    let session_of = |c: &Client| {
        c.cookie
            .as_deref()
            .and_then(|c| c.split_once('='))
            .map(|(_, v)| v.to_string())
            .expect("a session cookie")
    };
    let first = session_of(&owner);
    let mut second = s.client();
    assert_eq!(second.login("owner", "owner-password-1").status, 200);
    let other = session_of(&second);

    let r = s
        .client()
        .get_with("/app", &[("authorization", &format!("Bearer {first}"))]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.echoed_headers()["remote-user"],
        serde_json::json!(["owner"])
    );
    crate::tokens::never_forwarded(&r.echoed_headers(), &first);

    let cookie = owner.cookie.clone().expect("cookie");
    let r = s.client().get_with(
        "/app",
        &[
            ("cookie", cookie.as_str()),
            ("authorization", &format!("Bearer {other}")),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    crate::tokens::never_forwarded(&r.echoed_headers(), &other);
    // An app's own bearer of another form passes.
    let r = s.client().get_with(
        "/app",
        &[
            ("cookie", cookie.as_str()),
            ("authorization", "Bearer app-jwt"),
        ],
    );
    assert_eq!(
        r.echoed_headers()["authorization"],
        serde_json::json!(["Bearer app-jwt"])
    );
}
