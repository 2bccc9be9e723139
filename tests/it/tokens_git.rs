//! The machine access the gateway promises, with real clients: `git clone` of a repository
//! behind the gateway with the token in git's credential helper (git asks only after the 401's
//! Basic challenge), and a monitoring probe with the token as a bearer; revoking the token
//! stops both at once.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::ports::{on_a_free_port, until_listening, NotStarted};
use crate::support::TestServer;

/// A static file server (a git repository over git's "dumb" HTTP protocol needs nothing more).
struct Files {
    child: Child,
    port: u16,
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Files {
    on_a_free_port(|port| {
        let mut child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| NotStarted::Failed(format!("python3 -m http.server: {e}")))?;
        match until_listening(&mut child, port, || true, Duration::from_secs(20)) {
            Ok(()) => Ok(Files { child, port }),
            Err(_) => {
                let mut why = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut err, &mut why);
                }
                Err(NotStarted::exited(format!(
                    "the file server did not start: {why}"
                )))
            }
        }
    })
}

/// `git` with no user or system configuration, never prompting.
fn git(home: &Path, args: &[&str], cwd: &Path) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .output()
        .expect("git runs")
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare repository `repo.git` in `root` with one commit, ready for dumb HTTP.
fn repository(home: &Path, root: &Path) {
    let work = root.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    ok(&git(home, &["init", "-q", "-b", "main"], &work), "init");
    std::fs::write(work.join("README"), "behind the gateway\n").expect("file");
    ok(&git(home, &["add", "README"], &work), "add");
    let commit = [
        "-c",
        "user.name=CI",
        "-c",
        "user.email=ci@example.com",
        "commit",
        "-q",
        "-m",
        "first",
    ];
    ok(&git(home, &commit, &work), "commit");
    ok(
        &git(home, &["clone", "-q", "--bare", "work", "repo.git"], root),
        "bare clone",
    );
    ok(
        &git(home, &["update-server-info"], &root.join("repo.git")),
        "update-server-info",
    );
    std::fs::write(root.join("health"), "ok\n").expect("health page");
}

#[test]
fn git_clones_with_a_token_in_its_credential_helper_until_the_token_is_revoked() {
    let home = tempfile::tempdir().expect("home");
    let files_dir = tempfile::tempdir().expect("files");
    repository(home.path(), files_dir.path());
    let files = serve(files_dir.path());
    let s = TestServer::start(&format!(
        "[[routes]]\npath = \"/\"\nupstream = \"127.0.0.1:{}\"\npolicy = \"authenticated\"\n",
        files.port
    ));
    let mut owner = s.setup_owner();
    let r = owner.post_json("/auth/tokens", &json!({"name": "ci clone"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.json()["data"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let id = r.json()["data"]["id"].as_str().expect("id").to_string();

    // A credential helper as a CI job would set it up: the token is the password.
    let helper = format!(
        "credential.helper=!f() {{ test \"$1\" = get && echo username=ci && echo password={token}; }}; f"
    );
    let url = s.url("/repo.git");
    let clone = |into: &str| {
        git(
            home.path(),
            &["-c", &helper, "clone", "-q", &url, into],
            home.path(),
        )
    };
    let out = clone("first");
    ok(&out, "clone with the token");
    let readme = std::fs::read_to_string(home.path().join("first/README")).expect("cloned file");
    assert_eq!(readme, "behind the gateway\n");
    // Without credentials git gets the challenge and, with nothing to answer it, gives up.
    let out = git(
        home.path(),
        &["clone", "-q", &url, "anonymous"],
        home.path(),
    );
    assert!(!out.status.success());

    // A monitoring probe of a protected page.
    let mut probe = s.client();
    let bearer = format!("Bearer {token}");
    let r = probe.get_with("/health", &[("authorization", bearer.as_str())]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));

    // Revoked: both stop on their next request.
    let r = owner.send("DELETE", &format!("/auth/tokens/{id}"), None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let out = clone("second");
    assert!(
        !out.status.success(),
        "the clone still worked after revocation"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401")
            || String::from_utf8_lossy(&out.stderr).contains("Authentication failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = probe.get_with("/health", &[("authorization", bearer.as_str())]);
    assert_eq!(r.status, 401, "{}", r.body);
}
