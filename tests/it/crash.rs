//! Crash safety: SIGKILL during a stream of registrations, logins and logouts loses nothing
//! that was acknowledged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Client, TestServer};

#[derive(Default)]
struct Acknowledged {
    registered: Vec<String>,
    live_sessions: Vec<String>,
    logged_out: Vec<String>,
}

#[test]
fn sigkill_loses_no_acknowledged_write() {
    let mut s = TestServer::start("");
    s.setup_owner();
    let port = s.port;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && i < 400 {
                    i += 1;
                    let email = format!("w{w}u{i}@example.com");
                    let mut c = Client::new(port);
                    let Some(r) = c.try_send(
                        "POST",
                        "/auth/register",
                        Some(&json!({"email": email, "password": "crash password"})),
                    ) else {
                        break;
                    };
                    if r.status != 201 {
                        continue;
                    }
                    acked.lock().expect("acked").registered.push(email.clone());
                    let mut again = Client::new(port);
                    let Some(r) = again.try_send(
                        "POST",
                        "/auth/login",
                        Some(&json!({"identifier": email, "password": "crash password"})),
                    ) else {
                        break;
                    };
                    if r.status != 200 {
                        continue;
                    }
                    let cookie = again.cookie.clone().expect("cookie");
                    if i % 2 == 0 {
                        let Some(r) = again.try_send("POST", "/auth/logout", None) else {
                            break;
                        };
                        if r.status == 200 {
                            acked.lock().expect("acked").logged_out.push(cookie);
                        }
                    } else {
                        acked.lock().expect("acked").live_sessions.push(cookie);
                    }
                }
            })
        })
        .collect();
    // Kill in the middle of the stream, once writes of every kind have been acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        {
            let acked = acked.lock().expect("acked");
            if acked.registered.len() >= 10
                && !acked.live_sessions.is_empty()
                && !acked.logged_out.is_empty()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "too little traffic: {} registrations, {} live sessions, {} logouts acknowledged",
                acked.registered.len(),
                acked.live_sessions.len(),
                acked.logged_out.len()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    s.kill();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    s.respawn();

    let acked = acked.lock().expect("acked");
    assert!(
        acked.registered.len() >= 5,
        "too little traffic before the kill: {}",
        acked.registered.len()
    );
    let mut owner = s.client();
    assert_eq!(owner.login("owner", "owner-password-1").status, 200);
    let users = owner.get("/auth/admin/users").json()["data"]["users"].clone();
    let stored: Vec<&str> = users
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    for email in &acked.registered {
        assert!(
            stored.contains(&email.as_str()),
            "acknowledged registration {email} lost"
        );
    }
    for cookie in &acked.live_sessions {
        let mut c = s.client();
        c.cookie = Some(cookie.clone());
        assert_eq!(c.get("/auth/me").status, 200, "acknowledged login lost");
    }
    for cookie in &acked.logged_out {
        let mut c = s.client();
        c.cookie = Some(cookie.clone());
        assert_eq!(c.get("/auth/me").status, 401, "acknowledged logout undone");
    }
}

/// Set the server's file-size limit (`prlimit`): 0 makes every write fail like a full disk.
fn limit_file_size(pid: u32, limit: &str) {
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={limit}"))
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success());
}

#[test]
fn a_failing_disk_answers_503_and_the_server_recovers() {
    let s = TestServer::start("");
    let mut owner = s.setup_owner();
    s.register("before@example.com", "before password");
    limit_file_size(s.pid(), "0:unlimited");
    let mut c = s.client();
    let r = c.post_json(
        "/auth/register",
        &json!({"email": "during@example.com", "password": "during password"}),
    );
    assert_eq!(
        (r.status, r.code()),
        (503, "SERVICE_UNAVAILABLE".to_string()),
        "{}",
        r.body
    );
    assert!(r.header("retry-after").is_some());
    let r = c.login("before@example.com", "before password");
    assert_eq!(r.status, 503, "a login needs a durable session: {}", r.body);
    assert!(
        c.cookie.is_none(),
        "no cookie for a session that was not stored"
    );
    assert_eq!(
        c.get("/auth/health").status,
        503,
        "health reports the storage failure"
    );

    limit_file_size(s.pid(), "unlimited");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while c.get("/auth/health").status != 200 {
        assert!(std::time::Instant::now() < deadline, "did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = c.post_json(
        "/auth/register",
        &json!({"email": "after@example.com", "password": "after password"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        s.client()
            .login("before@example.com", "before password")
            .status,
        200
    );
    // The owner's session from before the failure is still there.
    assert_eq!(owner.get("/auth/me").status, 200);
    let users = owner.get("/auth/admin/users").json()["data"]["users"].clone();
    let emails: Vec<&str> = users
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert!(emails.contains(&"before@example.com") && emails.contains(&"after@example.com"));
    assert!(
        !emails.contains(&"during@example.com"),
        "an unacknowledged write did not appear"
    );
}
