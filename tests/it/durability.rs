//! Durability and lifecycle: restarts keep users and sessions, SIGTERM stops promptly, a
//! corrupt database refuses to start and is left untouched.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::{config_text, refuses_to_start_with, Client, TestServer};

#[test]
fn users_and_sessions_survive_a_restart() {
    let mut s = TestServer::start("");
    let mut owner = s.setup_owner();
    let mut user = s.register("user@example.com", "user password 1");
    let mut gone = s.client();
    gone.login("owner", "owner-password-1");
    gone.send("POST", "/auth/logout", None, &[]);
    let gone_cookie = {
        let mut g = s.client();
        g.login("owner", "owner-password-1");
        let cookie = g.cookie.clone();
        g.send("POST", "/auth/logout", None, &[]);
        cookie
    };
    s.restart();
    let mut owner2 = Client::new(s.port);
    owner2.cookie = owner.cookie.take();
    assert_eq!(owner2.get("/auth/me").status, 200);
    let mut user2 = Client::new(s.port);
    user2.cookie = user.cookie.take();
    assert_eq!(
        user2.get("/auth/me").json()["data"]["user"]["email"],
        "user@example.com"
    );
    let mut replay = Client::new(s.port);
    replay.cookie = gone_cookie;
    assert_eq!(
        replay.get("/auth/me").status,
        401,
        "a logout stays a logout across restarts"
    );
    assert_eq!(
        Client::new(s.port)
            .login("user@example.com", "user password 1")
            .status,
        200
    );
}

#[test]
fn sigterm_stops_within_the_shutdown_timeout() {
    let mut s = TestServer::start("");
    s.setup_owner();
    let (took, stderr) = s.stop();
    assert!(took < Duration::from_secs(4), "took {took:?}: {stderr}");
}

#[test]
fn a_corrupt_database_stops_startup_and_is_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("data/authgate.redb");
    std::fs::create_dir_all(db.parent().expect("parent")).expect("dir");
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&db, &garbage).expect("garbage");
    let (status, stderr) = refuses_to_start_with(|port| config_text(port, dir.path(), "", ""));
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("corrupt") && stderr.contains("untouched"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&db).expect("read"), garbage);
}

#[test]
fn the_database_holds_only_hashes_of_session_tokens() {
    let mut s = TestServer::start("");
    let owner = s.setup_owner();
    let token = owner.cookie.clone().expect("cookie");
    let token = token.split('=').nth(1).expect("value").to_string();
    s.stop();
    let bytes = std::fs::read(s.db_path()).expect("db");
    let hay = String::from_utf8_lossy(&bytes);
    assert!(!hay.contains(&token), "raw token stored");
    assert!(!hay.contains("owner-password-1"), "raw password stored");
    assert!(hay.contains("$argon2id$"), "password hash stored");
}

/// Run `authgate check-config --config PATH`.
fn check_config(path: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["check-config", "--config"])
        .arg(path)
        .output()
        .expect("run authgate")
}

#[test]
fn check_config_reports_problems_with_their_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    // check-config binds nothing: any port will do.
    std::fs::write(&good, config_text(8080, dir.path(), "", "")).expect("write");
    let out = check_config(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = [\"nowhere\"]\n[session]\nidle_timeout = \"soon\"\n",
    )
    .expect("write");
    let out = check_config(&bad);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.listen[0]") && err.contains("session.idle_timeout"),
        "{err}"
    );
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[server]\nlisten_on = 1\n").expect("write");
    let out = check_config(&unknown);
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_on"));
    // The shipped config is valid.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");
    let out = check_config(std::path::Path::new(shipped));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Its public_url is an IP address: passkeys are off, said as a notice, not an error.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("notice: auth.passkeys: passkeys are off")
            && said.contains("http://localhost:8080"),
        "{said}"
    );
}

#[test]
fn hash_password_prints_an_argon2id_phc_string() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["hash-password", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hunter22\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{line}"
    );
    let _ = json!(null);
}

#[test]
fn json_logs_are_one_object_per_line_without_secrets() {
    let mut s = TestServer::start("[log]\nformat = \"json\"\nlevel = \"info\"\n");
    let owner = s.setup_owner();
    let token = owner.cookie.clone().expect("cookie");
    s.client().login("owner", "owner-password-1");
    s.wait_for_log("\"event\":\"login\"", Duration::from_secs(10));
    let (_, log) = s.stop();
    let mut events = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if let Some(event) = v["fields"]["event"].as_str() {
            events.push(event.to_string());
        }
    }
    assert!(events.contains(&"login".to_string()), "{events:?}");
    assert!(!log.contains("owner-password-1"), "a password in the log");
    assert!(
        !log.contains(token.split('=').nth(1).expect("value")),
        "a session token in the log"
    );
}
