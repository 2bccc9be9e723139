//! `authgate migrate-store` on the real binary: a redb file copied into PostgreSQL and back,
//! with its counts printed; a second copy into a store that is no longer empty is refused; the
//! file brought back still signs in the browser and the API token from before the move.
//! `authgate migrate` brings the schema up to date on its own.

use std::path::Path;
use std::process::Command;

use crate::lifecycle::cli;
use crate::support::postgres::Postgres;
use crate::support::{Client, Echo, Storage, TestServer};

/// Run `authgate ARGS`; (success, stdout, stderr).
fn authgate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(args)
        .output()
        .expect("run authgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn migrate_store(from: &Path, to: &Path) -> (bool, String, String) {
    authgate(&[
        "migrate-store",
        "--from",
        from.to_str().expect("path"),
        "--to",
        to.to_str().expect("path"),
    ])
}

/// The number printed for `kind` (a line `  KIND   N`).
fn count(out: &str, kind: &str) -> u64 {
    out.lines()
        .find_map(|line| {
            let rest = line.trim_start().strip_prefix(kind)?;
            rest.trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no count of {kind} in:\n{out}"))
}

/// A config with just a store (and the same second-factor key as the gateway's).
fn store_config(dir: &Path, name: &str, storage: &str, key: &Path) -> std::path::PathBuf {
    let path = dir.join(name);
    let text = format!(
        "[storage]\n{storage}\n\n[security]\nencryption_key_file = \"{}\"\n",
        key.display()
    );
    std::fs::write(&path, text).expect("config");
    path
}

/// The app's routes, where sessions and API tokens are both taken.
fn app_config(echo: &Echo) -> String {
    format!(
        "[auth]\nregistration = \"open\"\n{}",
        crate::tokens::routes(&echo.upstream())
    )
}

/// What was made on the gateway before the move, to be used after it.
struct Before {
    owner: Client,
    user: Client,
    token: String,
}

/// A gateway on a redb file (whatever the suite runs on) with an owner and a user signed in,
/// an API token and an invite; stopped, so its file may be copied.
fn stopped_gateway_with_accounts(echo: &Echo) -> (TestServer, Before) {
    let mut s = TestServer::start_on_storage(&Storage::Redb, "", &app_config(echo));
    let mut owner = s.setup_owner();
    let user = s.register("user@example.com", "user-password-1");
    assert_eq!(owner.get("/auth/me").status, 200);
    // The stopped gateway's file is the shell's to change, then to copy.
    s.stop();
    let (ok, token, err) = cli(
        &s,
        &["token", "create", "--user", "owner", "--name", "backup job"],
        None,
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&s, &["invite", "create", "--uses", "2"], None);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    (s, Before { owner, user, token })
}

/// `before`'s sessions, token and password work on the gateway `s`.
fn still_signed_in(s: &TestServer, before: &mut Before) {
    assert_eq!(
        before.owner.get("/auth/me").status,
        200,
        "the owner is still signed in"
    );
    let me = before.user.get("/auth/me");
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["data"]["user"]["email"], "user@example.com");
    let r = s.client().get_with(
        "/app",
        &[("authorization", &format!("Bearer {}", before.token))],
    );
    assert_eq!(r.status, 200, "the API token still works: {}", r.body);
    assert_eq!(
        s.client()
            .login("user@example.com", "user-password-1")
            .status,
        200,
        "the password hash came along"
    );
}

#[test]
fn a_redb_file_moves_to_postgres_and_back_and_sign_ins_survive() {
    let echo = Echo::start();
    let (mut s, mut before) = stopped_gateway_with_accounts(&echo);

    let dir = tempfile::tempdir().expect("tempdir");
    let key = s.dir.path().join("data/encryption.key");
    let url = Postgres::shared().database("migrate_store");
    let shared = store_config(
        dir.path(),
        "postgres.toml",
        &format!("backend = \"postgres\"\nurl = \"{url}\""),
        &key,
    );
    let (ok, out, err) = authgate(&["migrate", "--config", shared.to_str().expect("path")]);
    assert!(ok, "{err}");
    assert!(out.contains("is at schema version"), "{out}");
    let (ok, out, err) = authgate(&["migrate", "--config", s.config_path.to_str().expect("path")]);
    assert!(ok, "{err}");
    assert!(out.contains("needs no migration"), "{out}");

    let (ok, out, err) = migrate_store(&s.config_path, &shared);
    assert!(ok, "{err}");
    assert!(
        out.contains("to the PostgreSQL database \"migrate_store_"),
        "{out}"
    );
    assert!(
        !out.contains("postgres://"),
        "the URL is never printed: {out}"
    );
    assert_eq!(count(&out, "users"), 2, "{out}");
    assert_eq!(count(&out, "sessions"), 2, "{out}");
    assert_eq!(count(&out, "invites"), 1, "{out}");
    assert_eq!(count(&out, "API tokens"), 1, "{out}");
    let audited = count(&out, "audit entries");
    assert!(audited >= 2, "the shell's token and invite at least: {out}");
    assert!(out.contains("owner                yes"), "{out}");
    assert!(out.contains("not copied (short-lived)"), "{out}");

    // The target holds the copy now: a second run writes nothing.
    let (ok, out, err) = migrate_store(&s.config_path, &shared);
    assert!(!ok, "{out}");
    assert!(
        err.contains("is not empty (it has users)") && err.contains("wrote nothing"),
        "{err}"
    );
    // Both naming one store is refused before anything is opened.
    let (ok, _, err) = migrate_store(&shared, &shared);
    assert!(!ok);
    assert!(err.contains("both configs name"), "{err}");

    // Back into a fresh file, which then takes the gateway's file's place.
    let back_path = dir.path().join("back/authgate.redb");
    let back = store_config(
        dir.path(),
        "back.toml",
        &format!("path = \"{}\"", back_path.display()),
        &key,
    );
    let (ok, out, err) = migrate_store(&shared, &back);
    assert!(ok, "{err}");
    assert_eq!(count(&out, "users"), 2, "{out}");
    assert_eq!(count(&out, "sessions"), 2, "{out}");
    assert_eq!(
        count(&out, "audit entries"),
        audited + 1,
        "the first move is in the log: {out}"
    );
    std::fs::rename(&back_path, s.db_path()).expect("replace the file");
    s.respawn();
    still_signed_in(&s, &mut before);
    let events = before.owner.audit_until(|e| e["event"] == "store_migrated");
    let moves = events
        .iter()
        .filter(|e| e["event"] == "store_migrated")
        .count();
    assert_eq!(moves, 2, "one entry per move: {events:?}");
}

#[test]
fn a_sign_in_made_before_the_move_holds_on_a_postgres_gateway_after_it() {
    let echo = Echo::start();
    let (s, mut before) = stopped_gateway_with_accounts(&echo);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = s.dir.path().join("data/encryption.key");
    let url = Postgres::shared().database("moved");
    let shared = store_config(
        dir.path(),
        "postgres.toml",
        &format!("backend = \"postgres\"\nurl = \"{url}\""),
        &key,
    );
    let (ok, _, err) = migrate_store(&s.config_path, &shared);
    assert!(ok, "{err}");
    let moved = TestServer::start_on_storage(
        &Storage::Postgres { url, key_file: key },
        "",
        &app_config(&echo),
    );
    // The same browsers, now talking to the gateway on PostgreSQL.
    for client in [&mut before.owner, &mut before.user] {
        let cookie = client.cookie.clone();
        *client = moved.client();
        client.cookie = cookie;
    }
    still_signed_in(&moved, &mut before);
}

#[test]
fn a_missing_redb_file_is_not_copied_nor_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("encryption.key");
    let missing = dir.path().join("missing/authgate.redb");
    let from = store_config(
        dir.path(),
        "from.toml",
        &format!("path = \"{}\"", missing.display()),
        &key,
    );
    let to = store_config(
        dir.path(),
        "to.toml",
        &format!("path = \"{}\"", dir.path().join("to.redb").display()),
        &key,
    );
    let (ok, _, err) = migrate_store(&from, &to);
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!missing.exists());
}
