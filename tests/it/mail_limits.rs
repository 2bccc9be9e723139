//! Mail throttling against the real binary and an SMTP sink: per account (one mail per two
//! minutes, the registration mail included) and per client (ten mail requests an hour), each
//! answering exactly like a mail that was sent. Throttling is observed through its audit entry.

use serde_json::{json, Value};

use crate::support::smtp::{link_in, SmtpSink};
use crate::support::{Client, Reply, TestServer};

/// A client address, as a trusted proxy in front of the gateway would report it.
fn from(ip: &str) -> [(&str, &str); 1] {
    [("x-forwarded-for", ip)]
}

fn ask(c: &mut Client, path: &str, email: &str, ip: &str) -> Reply {
    c.send("POST", path, Some(&json!({"email": email})), &from(ip))
}

fn throttled(e: &Value, reason: &str) -> bool {
    e["event"] == "mail_throttled"
        && e["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("reason={reason}")))
}

#[test]
fn a_second_reset_request_in_a_row_is_throttled_and_answered_alike() {
    let smtp = SmtpSink::start();
    let s = TestServer::start(&smtp.config());
    let mut owner = s.setup_owner();
    let mut user = s.register("bomb@example.com", "bomb password 1");
    let id = user.get("/auth/me").json()["data"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_string();

    let mut anon = s.client();
    let path = "/auth/forgot-password";
    let ip = "198.51.100.1";
    let first = ask(&mut anon, path, "bomb@example.com", ip);
    let second = ask(&mut anon, path, "bomb@example.com", ip);
    let unknown = ask(&mut anon, path, "nobody@example.com", ip);
    for r in [&second, &unknown] {
        assert_eq!((r.status, &r.body), (first.status, &first.body));
    }
    assert_eq!(first.status, 200);

    let entries = owner.audit_until(|e| throttled(e, "address") && e["target"] == id);
    let (_, token) = link_in(&smtp.wait_for("bomb@example.com", 1), "/reset-password");
    assert_eq!(smtp.mails_to("bomb@example.com").len(), 1);
    let entry = entries
        .iter()
        .find(|e| throttled(e, "address"))
        .expect("entry");
    assert_eq!(entry["ip"], ip);
    assert!(
        entry["detail"]
            .as_str()
            .is_some_and(|d| d.contains("kind=reset")),
        "{entry}"
    );
    let text = serde_json::to_string(&entries).expect("json");
    assert!(!text.contains(&token), "no token in the audit log");
    // The link of the mail that was sent still works.
    let r = anon.post_json(
        "/auth/reset-password",
        &json!({"token": token, "password": "bomb password 2"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_client_gets_ten_mail_requests_an_hour_whatever_the_addresses() {
    let smtp = SmtpSink::start();
    let s = TestServer::start(&smtp.config());
    let mut owner = s.setup_owner();
    s.register("target@example.com", "target password 1");
    let mut anon = s.client();
    let ip = "203.0.113.9";
    // Unknown addresses count like known ones, and both endpoints share the allowance.
    let mut answers = Vec::new();
    for i in 0..10 {
        let path = if i % 2 == 0 {
            "/auth/forgot-password"
        } else {
            "/auth/resend-verification"
        };
        let r = ask(&mut anon, path, &format!("nobody{i}@example.com"), ip);
        assert_eq!(r.status, 200, "{}", r.body);
        answers.push((path, r));
    }
    let over = ask(&mut anon, "/auth/forgot-password", "target@example.com", ip);
    let (_, sent) = &answers[0];
    assert_eq!((over.status, &over.body), (sent.status, &sent.body));

    owner.audit_until(|e| throttled(e, "ip") && e["ip"] == ip);
    // The refused request never reached the account: another client still gets its mail.
    let other = ask(
        &mut anon,
        "/auth/forgot-password",
        "target@example.com",
        "203.0.113.10",
    );
    assert_eq!((other.status, &other.body), (sent.status, &sent.body));
    smtp.wait_for("target@example.com", 1);
    let entries = owner
        .audit_until(|e| e["event"] == "password_reset_requested" && e["ip"] == "203.0.113.10");
    let requested: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == "password_reset_requested")
        .map(|e| &e["ip"])
        .collect();
    assert_eq!(requested, [&json!("203.0.113.10")], "{entries:?}");
    assert_eq!(smtp.mails_to("target@example.com").len(), 1);
}

#[test]
fn the_registration_mail_counts_towards_the_address_limit() {
    let smtp = SmtpSink::start();
    let s = TestServer::start(&format!(
        "[auth]\nrequire_email_verification = true\n\n{}",
        smtp.config()
    ));
    let mut owner = s.setup_owner();
    let mut c = s.client();
    let r = c.post_json(
        "/auth/register",
        &json!({"email": "new@example.com", "password": "new password 1"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["data"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_string();

    let path = "/auth/resend-verification";
    let resend = ask(&mut c, path, "new@example.com", "198.51.100.7");
    let unknown = ask(&mut c, path, "nobody@example.com", "198.51.100.7");
    assert_eq!(resend.status, 200);
    assert_eq!(
        (resend.status, &resend.body),
        (unknown.status, &unknown.body)
    );

    let entries = owner.audit_until(|e| throttled(e, "address") && e["target"] == id);
    let entry = entries
        .iter()
        .find(|e| throttled(e, "address"))
        .expect("entry");
    assert!(
        entry["detail"]
            .as_str()
            .is_some_and(|d| d.contains("kind=verification")),
        "{entry}"
    );
    link_in(&smtp.wait_for("new@example.com", 1), "/verify-email");
    assert_eq!(smtp.mails_to("new@example.com").len(), 1);
}
