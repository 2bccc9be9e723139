//! Real nginx and Caddy on loopback, configured from the examples in `docs/`.
//!
//! Each takes its port from `free_port` and starts again on a fresh one when it exits
//! complaining that the address is in use (see `ports`); it counts as started once its own
//! process listens on the port.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::log::CapturedLog;
use super::ports::{on_a_free_port, until_listening, NotStarted};

/// A proxy process; killed on drop.
pub struct Proxy {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGTERM lets nginx's master stop its workers (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example from `docs/` with its placeholder addresses replaced by the test's.
fn example(name: &str, proxy: u16, authgate: u16, app: u16) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{proxy}"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{authgate}"))
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{app}"))
}

fn binary(name: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run scripts/deps.sh (CI installs it)");
}

/// Start `command` (which listens on `port`, writing its errors to stderr or `error_log`)
/// and wait until it listens there.
fn run(
    what: &str,
    mut command: Command,
    port: u16,
    dir: tempfile::TempDir,
    error_log: Option<&Path>,
) -> Result<Proxy, NotStarted> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stderr = CapturedLog::capture(child.stderr.take().expect("stderr"));
    match until_listening(&mut child, port, || true, Duration::from_secs(15)) {
        Ok(()) => {}
        Err(Some(status)) => {
            let mut said = stderr.finish(Duration::from_secs(5));
            if let Some(log) = error_log.and_then(|p| std::fs::read_to_string(p).ok()) {
                said.push_str(&log);
            }
            return Err(NotStarted::exited(format!(
                "{what} exited ({status}): {said}"
            )));
        }
        Err(None) => panic!("{what} did not start listening: {}", stderr.text()),
    }
    Ok(Proxy {
        port,
        child,
        _dir: dir,
    })
}

/// nginx with `docs/nginx.conf` as its only server, in front of `app`, asking authgate.
pub fn nginx(authgate: u16, app: u16) -> Proxy {
    on_a_free_port(|port| {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("site.conf"),
            example("nginx.conf", port, authgate, app),
        )
        .expect("site");
        let main = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n include {d}/site.conf;\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), main).expect("main");
        let error_log = dir.path().join("error.log");
        let mut command = Command::new(binary("nginx"));
        command
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(&error_log)
            .args(["-g", "daemon off;"]);
        run("nginx", command, port, dir, Some(&error_log))
    })
}

/// Caddy with `docs/Caddyfile`, in front of `app`, asking authgate.
pub fn caddy(authgate: u16, app: u16) -> Proxy {
    on_a_free_port(|port| {
        let dir = tempfile::tempdir().expect("tempdir");
        // Global options for a test instance only: no admin endpoint, nothing persisted.
        let file = format!(
            "{{\n\tadmin off\n\tstorage file_system {}\n}}\n\n{}",
            dir.path().join("storage").display(),
            example("Caddyfile", port, authgate, app)
        );
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, file).expect("Caddyfile");
        let mut command = Command::new(binary("caddy"));
        command
            .arg("run")
            .arg("--config")
            .arg(&path)
            .args(["--adapter", "caddyfile"])
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path());
        run("caddy", command, port, dir, None)
    })
}
