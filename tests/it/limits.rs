//! Brute-force limits: per-account lockout on every password path, the per-IP limit through
//! trusted proxies only, floods of bogus names, and the bounded hashing queue.

use serde_json::json;

use crate::support::{race, Client, TestServer};

fn login_from(c: &mut Client, ip: &str, identifier: &str, password: &str) -> crate::support::Reply {
    c.send(
        "POST",
        "/auth/login",
        Some(&json!({"identifier": identifier, "password": password})),
        &[("x-forwarded-for", ip)],
    )
}

#[test]
fn the_ip_limit_answers_429_per_client() {
    let s = TestServer::start("[security]\nip_rate_limit = \"3/min\"\nmax_failed_logins = 100\n");
    s.setup_owner();
    let mut c = s.client();
    for _ in 0..3 {
        assert_eq!(
            login_from(&mut c, "203.0.113.1", "owner", "wrong password").status,
            401
        );
    }
    let r = login_from(&mut c, "203.0.113.1", "owner", "owner-password-1");
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED".to_string()));
    let retry: u64 = r
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry));
    // Another client behind the same trusted proxy is not affected.
    assert_eq!(
        login_from(&mut c, "203.0.113.2", "owner", "owner-password-1").status,
        200
    );
}

#[test]
fn x_forwarded_for_counts_only_from_trusted_proxies() {
    let s = TestServer::start_full(
        "trusted_proxies = [\"10.0.0.0/8\"]",
        "[security]\nip_rate_limit = \"3/min\"\nmax_failed_logins = 100\n",
    );
    s.setup_owner();
    let mut c = s.client();
    for i in 0..3 {
        let ip = format!("198.51.100.{i}");
        assert_eq!(
            login_from(&mut c, &ip, "owner", "wrong password").status,
            401
        );
    }
    let r = login_from(&mut c, "198.51.100.99", "owner", "owner-password-1");
    assert_eq!(
        r.status, 429,
        "a spoofed X-Forwarded-For from an untrusted peer changes nothing"
    );
}

#[test]
fn bogus_usernames_never_lock_out_a_real_user() {
    let s = TestServer::start("[security]\nmax_failed_logins = 2\nip_rate_limit = \"1000/min\"\n");
    s.setup_owner();
    let port = s.port;
    let replies = race(8, move |w| {
        let mut c = Client::new(port);
        let mut last = None;
        for i in 0..25 {
            last = Some(login_from(
                &mut c,
                "192.0.2.7",
                &format!("bogus{w}x{i}@example.com"),
                "guess",
            ));
        }
        last.expect("reply")
    });
    assert!(
        replies.iter().all(|r| r.status == 401 || r.status == 423),
        "{replies:?}"
    );
    assert_eq!(s.client().login("owner", "owner-password-1").status, 200);
    assert_eq!(
        s.client()
            .login("owner@example.com", "owner-password-1")
            .status,
        200
    );
}

#[test]
fn change_password_shares_the_account_lockout() {
    let s = TestServer::start("[security]\nmax_failed_logins = 3\n");
    let mut owner = s.setup_owner();
    for _ in 0..2 {
        let r = owner.post_json(
            "/auth/change-password",
            &json!({"currentPassword": "nope nope", "newPassword": "new password 1"}),
        );
        assert_eq!(r.status, 401);
    }
    let r = owner.post_json(
        "/auth/change-password",
        &json!({"currentPassword": "nope nope", "newPassword": "new password 1"}),
    );
    assert_eq!((r.status, r.code()), (423, "ACCOUNT_LOCKED".to_string()));
    let r = s.client().login("owner", "owner-password-1");
    assert_eq!(r.status, 423, "the same lock covers login");
    assert!(r.header("retry-after").is_some());
}

#[test]
fn a_full_hash_queue_answers_503_and_health_stays_up() {
    let s = TestServer::start(
        "[security]\nhash_concurrency = 1\nhash_queue = 1\nip_rate_limit = \"1000/min\"\n",
    );
    s.setup_owner();
    let port = s.port;
    // A login refused with 503 says the queue is full.
    let (full, seen_full) = std::sync::mpsc::channel();
    let seen_full = std::sync::Mutex::new(seen_full);
    let replies = race(12, move |i| {
        if i == 0 {
            // Health answers while the hashing pool is saturated (if no login is ever
            // refused, the assertion on the refusals below says so).
            let _ = seen_full
                .lock()
                .expect("receiver")
                .recv_timeout(std::time::Duration::from_secs(10));
            return Client::new(port).get("/auth/health");
        }
        let r = login_from(
            &mut Client::new(port),
            &format!("192.0.2.{i}"),
            "owner",
            "owner-password-1",
        );
        if r.status == 503 {
            let _ = full.send(());
        }
        r
    });
    assert_eq!(replies[0].status, 200, "health");
    let busy: Vec<_> = replies[1..].iter().filter(|r| r.status == 503).collect();
    assert!(!busy.is_empty(), "{replies:?}");
    for r in &busy {
        assert_eq!(r.code(), "SERVICE_UNAVAILABLE");
        assert!(r.header("retry-after").is_some());
    }
    assert!(replies[1..]
        .iter()
        .all(|r| r.status == 200 || r.status == 503));
}
