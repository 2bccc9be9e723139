//! Several gateways on one PostgreSQL database, as behind a load balancer: what one instance
//! does holds on every other (sign-ins, revocations within a second, lockout counts, provider
//! sign-ins, uniqueness races), steady-state proxying asks the database nothing, and when the
//! database goes away both fail closed and recover by themselves.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::oidc::{oidc_section, Browser, TestProvider};
use crate::support::postgres::Postgres;
use crate::support::{free_port, race, Client, Echo, Reply, Storage, TestServer};

/// Two gateways on one fresh database with the same config (and sealing key), everything
/// behind `authenticated` to an echo upstream.
struct Pair {
    _echo: Echo,
    _keys: tempfile::TempDir,
    a: TestServer,
    b: TestServer,
}

fn pair_on(storage_url: String, extra: &str) -> Pair {
    let echo = Echo::start();
    let keys = tempfile::tempdir().expect("tempdir");
    let storage = Storage::Postgres {
        url: storage_url,
        key_file: keys.path().join("encryption.key"),
    };
    let sections = format!(
        "{extra}\n[[routes]]\npath = \"/\"\nupstream = \"{}\"\npolicy = \"authenticated\"\n",
        echo.upstream()
    );
    let a = TestServer::start_on_storage(&storage, "", &sections);
    let b = TestServer::start_on_storage(&storage, "", &sections);
    Pair {
        _echo: echo,
        _keys: keys,
        a,
        b,
    }
}

fn pair(extra: &str) -> Pair {
    pair_on(Postgres::shared().database("several"), extra)
}

/// A client for `server` holding `other`'s session cookie (one browser, two instances).
fn same_browser(server: &TestServer, other: &Client) -> Client {
    let mut c = server.client();
    c.cookie = other.cookie.clone();
    c
}

/// Poll `request` until it answers `status`, for at most `within` after `since`; returns how
/// long it took. Panics with the last answer otherwise.
fn answers_within(
    within: Duration,
    since: Instant,
    status: u16,
    mut request: impl FnMut() -> Reply,
) -> Duration {
    loop {
        let r = request();
        if r.status == status {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < within,
            "still {} after {within:?}: {}",
            r.status,
            r.body
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn user_id(c: &mut Client) -> String {
    c.get("/auth/me").json()["data"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[test]
fn a_sign_in_on_one_instance_holds_on_the_other_until_it_ends_anywhere() {
    let p = pair("[auth]\nregistration = \"open\"\n");
    p.a.setup_owner();
    let mut on_a = p.a.client();
    assert_eq!(on_a.login("owner", "owner-password-1").status, 200);
    let mut on_b = same_browser(&p.b, &on_a);
    let r = on_b.get("/app");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.echoed_headers()["remote-user"],
        json!(["owner"]),
        "{}",
        r.echoed_headers()
    );

    // Logout on A: refused on B within a second (B had it in memory).
    let r = on_a.send("POST", "/auth/logout", None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let took = answers_within(Duration::from_secs(1), Instant::now(), 401, || {
        on_b.get("/auth/me")
    });
    eprintln!("logout on A refused on B after {took:?}");

    // A password change on B ends the other sessions, which A refuses.
    let mut first = p.a.client();
    assert_eq!(first.login("owner", "owner-password-1").status, 200);
    assert_eq!(first.get("/app").status, 200);
    let mut changer = p.b.client();
    assert_eq!(changer.login("owner", "owner-password-1").status, 200);
    let r = changer.post_json(
        "/auth/change-password",
        &json!({"currentPassword": "owner-password-1", "newPassword": "owner-password-2"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let took = answers_within(Duration::from_secs(1), Instant::now(), 401, || {
        first.get("/auth/me")
    });
    eprintln!("password change on B refused on A after {took:?}");
    assert_eq!(
        same_browser(&p.a, &changer).get("/app").status,
        200,
        "the session that changed it stays, on every instance"
    );
    assert_eq!(p.a.client().login("owner", "owner-password-2").status, 200);

    // Disabling on A: the user's session (and token) on B are refused within a second.
    let mut user = p.b.register("user@example.com", "user password 1");
    let id = user_id(&mut user);
    let token = crate::tokens::create_token(&mut user, json!({"name": "ci"})).1;
    let bearer = |s: &TestServer| {
        s.client()
            .get_with("/app", &[("authorization", &format!("Bearer {token}"))])
    };
    assert_eq!(user.get("/app").status, 200);
    assert_eq!(bearer(&p.b).status, 200);
    assert_eq!(bearer(&p.a).status, 200);
    let mut owner = p.a.client();
    assert_eq!(owner.login("owner", "owner-password-2").status, 200);
    let r = owner.send(
        "PATCH",
        &format!("/auth/admin/users/{id}"),
        Some(&json!({"status": "disabled"})),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let since = Instant::now();
    answers_within(Duration::from_secs(1), since, 401, || user.get("/auth/me"));
    answers_within(Duration::from_secs(1), since, 401, || bearer(&p.b));
}

#[test]
fn a_revoked_token_is_refused_by_the_other_instance_within_a_second() {
    let p = pair("");
    let mut owner = p.a.setup_owner();
    let (id, token) = crate::tokens::create_token(&mut owner, json!({"name": "deploy"}));
    let bearer = |s: &TestServer| {
        s.client()
            .get_with("/app", &[("authorization", &format!("Bearer {token}"))])
    };
    assert_eq!(
        bearer(&p.b).status,
        200,
        "known on B, and kept in its memory"
    );
    assert_eq!(bearer(&p.b).status, 200);
    let r = owner.send("DELETE", &format!("/auth/tokens/{id}"), None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let took = answers_within(Duration::from_secs(1), Instant::now(), 401, || bearer(&p.b));
    eprintln!("token revoked on A refused on B after {took:?}");
}

#[test]
fn lockout_counts_add_up_across_instances() {
    let p = pair("[security]\nmax_failed_logins = 4\nip_rate_limit = \"1000/min\"\n");
    p.a.setup_owner();
    // Two failures on each: the fourth locks the account everywhere.
    for (i, s) in [&p.a, &p.b, &p.a, &p.b].into_iter().enumerate() {
        let r = s.client().login("owner", "wrong password");
        let want = if i < 3 { 401 } else { 423 };
        assert_eq!(r.status, want, "attempt {i}: {}", r.body);
    }
    for s in [&p.a, &p.b] {
        let r = s.client().login("owner", "owner-password-1");
        assert_eq!(
            (r.status, r.code()),
            (423, "ACCOUNT_LOCKED".to_string()),
            "locked on both"
        );
    }
}

#[test]
fn a_registration_race_across_instances_makes_one_account() {
    let p = pair("[auth]\nregistration = \"open\"\n");
    p.a.setup_owner();
    let ports = [p.a.port, p.b.port];
    let replies = race(8, move |i| {
        Client::new(ports[i % 2]).post_json(
            "/auth/register",
            &json!({"email": "twice@example.com", "password": "a good password"}),
        )
    });
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1, "{replies:?}");
    assert!(
        replies.iter().all(|r| r.status == 201 || r.status == 409),
        "{replies:?}"
    );
    let mut owner = p.b.client();
    assert_eq!(owner.login("owner", "owner-password-1").status, 200);
    let users = owner.get("/auth/admin/users").json()["data"]["users"].clone();
    let twice = users
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["email"] == "twice@example.com")
        .count();
    assert_eq!(twice, 1, "{users}");
}

#[test]
fn a_provider_sign_in_started_on_one_instance_finishes_on_the_other() {
    let echo = Echo::start();
    let keys = tempfile::tempdir().expect("tempdir");
    let storage = Storage::Postgres {
        url: Postgres::shared().database("several_oidc"),
        key_file: keys.path().join("encryption.key"),
    };
    // Behind a load balancer both instances have the same public address: A's port here.
    let mut started = None;
    let a = TestServer::start_with_storage(&storage, |port| {
        let callback = format!("http://127.0.0.1:{port}/auth/oauth/corp/callback");
        let provider = TestProvider::start(&[callback], true);
        let sections = format!(
            "[auth]\nregistration = \"open\"\n{}\n[[routes]]\npath = \"/\"\nupstream = \"{}\"\npolicy = \"authenticated\"\n",
            oidc_section("corp", &provider, ""),
            echo.upstream()
        );
        started = Some((provider, sections.clone()));
        (String::new(), sections)
    });
    let (provider, sections) = started.expect("provider");
    let b = TestServer::start_on_storage(
        &storage,
        &format!("public_url = \"http://127.0.0.1:{}\"", a.port),
        &sections,
    );
    a.setup_owner();
    let mut browser = Browser::new();
    let callback =
        browser.begin_and_sign_in(&a.url("/auth/oauth/corp"), "sub-1|pat@example.com|true");
    // The callback lands on B, with the browser's cookies (cookies are not kept apart by port).
    let origin = |s: &TestServer| format!("http://127.0.0.1:{}", s.port);
    let jar = browser.cookies(&origin(&a));
    browser.jars.insert(origin(&b), jar);
    let on_b = callback.replace(&origin(&a), &origin(&b));
    let r = browser.get(&on_b);
    assert_eq!(r.status, 303, "{}", r.body);
    let r = browser.get(&b.url("/app"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.echoed_headers()["remote-email"],
        json!(["pat@example.com"]),
        "{}",
        r.body
    );
    drop(provider);
}

#[test]
fn steady_state_proxying_asks_the_database_nothing() {
    let echo = Echo::start();
    let keys = tempfile::tempdir().expect("tempdir");
    let storage = Storage::Postgres {
        url: Postgres::shared().database("several_quiet"),
        key_file: keys.path().join("encryption.key"),
    };
    let mut metrics_port = 0;
    let s = TestServer::start_with_storage(&storage, |_| {
        metrics_port = free_port();
        (
            String::new(),
            format!(
                "[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n[[routes]]\npath = \"/\"\nupstream = \"{}\"\npolicy = \"authenticated\"\n",
                echo.upstream()
            ),
        )
    });
    let mut owner = s.setup_owner();
    assert_eq!(owner.get("/app").status, 200, "warm: read once");
    let queries = || -> u64 {
        let text = Client::new(metrics_port).get("/metrics").body;
        metric(&text, "authgate_store_queries_total")
    };
    // Wait until what the sign-in left behind (its audit entries) is written: then each read
    // of the metrics asks one thing of its own (the session count).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut before = queries();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = queries();
        if now == before + 1 {
            before = now;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the database never went quiet: {now}"
        );
        before = now;
    }
    for _ in 0..10_000 {
        let r = owner.get("/app");
        assert_eq!(r.status, 200);
    }
    let after = queries();
    let asked = after - before - 1;
    eprintln!("database operations during 10000 proxied requests: {asked}");
    // The minutely sweep (about six operations) may fall into the window; nothing else may.
    assert!(asked <= 8, "{before} → {after}");
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn without_the_database_both_fail_closed_and_recover_alone() {
    let mut pg = Postgres::private();
    let p = pair_on(pg.database("outage"), "");
    let mut owner = p.a.setup_owner();
    let mut on_b = same_browser(&p.b, &owner);
    assert_eq!(owner.get("/app").status, 200);
    assert_eq!(on_b.get("/app").status, 200, "now in B's memory too");

    pg.stop();
    let since = Instant::now();
    for s in [&p.a, &p.b] {
        answers_within(Duration::from_secs(5), since, 503, || {
            s.client().get("/auth/health")
        });
    }
    // Sessions in memory are not served on trust: the bound is the notification heartbeat.
    answers_within(Duration::from_secs(3), since, 503, || owner.get("/app"));
    answers_within(Duration::from_secs(3), since, 503, || on_b.get("/app"));
    let r = p.b.client().login("owner", "owner-password-1");
    assert_eq!(r.status, 503, "{}", r.body);

    pg.start();
    let since = Instant::now();
    for s in [&p.a, &p.b] {
        answers_within(Duration::from_secs(15), since, 200, || {
            s.client().get("/auth/health")
        });
    }
    answers_within(Duration::from_secs(5), since, 200, || owner.get("/app"));
    answers_within(Duration::from_secs(5), since, 200, || on_b.get("/app"));
    assert_eq!(p.b.client().login("owner", "owner-password-1").status, 200);
}
