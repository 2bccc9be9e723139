//! Real nginx and Caddy on loopback, configured from the examples in `docs/`.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

fn wait_for(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what} exited ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// nginx with `docs/nginx.conf` as its only server, in front of `app`, asking authgate.
pub fn nginx(port: u16, authgate: u16, app: u16) -> Proxy {
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
    let mut child = Command::new(binary("nginx"))
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nginx");
    wait_for(port, &mut child, "nginx");
    Proxy {
        port,
        child,
        _dir: dir,
    }
}

/// Caddy with `docs/Caddyfile`, in front of `app`, asking authgate.
pub fn caddy(port: u16, authgate: u16, app: u16) -> Proxy {
    let dir = tempfile::tempdir().expect("tempdir");
    // Global options for a test instance only: no admin endpoint, nothing persisted.
    let file = format!(
        "{{\n\tadmin off\n\tstorage file_system {}\n}}\n\n{}",
        dir.path().join("storage").display(),
        example("Caddyfile", port, authgate, app)
    );
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, file).expect("Caddyfile");
    let mut child = Command::new(binary("caddy"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .args(["--adapter", "caddyfile"])
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn caddy");
    wait_for(port, &mut child, "caddy");
    Proxy {
        port,
        child,
        _dir: dir,
    }
}
