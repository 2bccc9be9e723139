//! Test fixtures: the real `authgate` binary on an ephemeral loopback port, a real echo
//! upstream, an HTTP client that keeps the session cookie, and a real browser ([`browser`]).
//! How the fixtures choose their ports, so that tests running in parallel never share one, is
//! in [`ports`].

#![allow(dead_code)]

pub mod browser;
pub mod echo;
pub mod express;
pub mod log;
pub mod oidc;
pub mod ports;
pub mod postgres;
pub mod proxies;
pub mod smtp;
pub mod tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use echo::Echo;
pub use ports::{closed_port, free_port};

use log::CapturedLog;
use ports::{listens_on, on_a_free_port, says_address_in_use, NotStarted};

/// Install the npm packages locked in `dir` (`npm ci`) once per test run, if any of `packages`
/// is missing.
pub fn ensure_npm_packages(done: &std::sync::Mutex<bool>, dir: &Path, packages: &[&str]) {
    let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
    if *done {
        return;
    }
    let missing = packages.iter().any(|p| {
        !dir.join("node_modules")
            .join(p)
            .join("package.json")
            .exists()
    });
    if missing {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .status()
            .expect("npm (Node.js) is needed: run scripts/deps.sh");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    *done = true;
}

/// Start `node script args...` in `dir` and wait (up to 30 s) for the first line it prints,
/// which says it is ready. Its output keeps being read, so a full pipe never stops it. `Err`
/// with its stderr if it exits before that line.
pub fn spawn_node(
    dir: &Path,
    script: &str,
    args: &[String],
    what: &str,
) -> Result<(Child, String), String> {
    use std::io::BufRead as _;
    let mut child = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (Node.js) is needed: run scripts/deps.sh");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = CapturedLog::capture(child.stderr.take().expect("stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let mut rest = String::new();
        while reader.read_line(&mut rest).is_ok_and(|n| n > 0) {
            rest.clear();
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(line) if !line.is_empty() => Ok((child, line)),
        Ok(_) => {
            let status = child.wait().expect("wait for node");
            Err(format!(
                "{what} exited ({status}): {}",
                stderr.finish(Duration::from_secs(5))
            ))
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not start: {}", stderr.text());
        }
    }
}

/// A running gateway process; stopped on drop.
///
/// Its port comes from [`free_port`] and is retried (see [`ports`]): `start`, `start_full`
/// and `start_with` write the config anew on a fresh port when an address it should listen
/// on is taken (the binary exits with "cannot listen on ...: Address already in use").
/// `start_on` takes a port other parties were told beforehand and cannot retry; `respawn`
/// and `restart` keep the port they had. It counts as started once it answers
/// `/auth/health` on a port its own process listens on.
///
/// Its stderr is read as it is written: [`TestServer::log`] is what it has logged so far,
/// [`TestServer::wait_for_log`] waits for a line. The log level is `[log] level` of the
/// config (`warn` unless the sections given set `[log]`), never the caller's `RUST_LOG`: a
/// test that needs an `info` line sets the level itself.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub config_path: PathBuf,
    child: Option<Child>,
    log: CapturedLog,
}

/// Where a test gateway keeps its state.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A redb file in the test's own dir.
    Redb,
    /// A PostgreSQL database, shared by every gateway given the same one, and the sealing
    /// key file they all use.
    Postgres { url: String, key_file: PathBuf },
}

/// The variable that runs the suite's gateways on PostgreSQL: `AUTHGATE_IT_STORAGE=postgres`
/// gives each one a fresh database on the test run's cluster instead of a redb file.
pub const STORAGE_ENV: &str = "AUTHGATE_IT_STORAGE";

impl Storage {
    /// What a gateway of the suite uses, its other files in `dir`.
    pub fn for_suite(dir: &Path) -> Storage {
        match std::env::var(STORAGE_ENV).as_deref() {
            Ok("postgres") => Storage::fresh_postgres(dir),
            Ok("redb") | Ok("") | Err(_) => Storage::Redb,
            Ok(other) => panic!("{STORAGE_ENV}={other:?}: use redb or postgres"),
        }
    }

    /// A fresh database on the test run's cluster; the key file in `dir`.
    pub fn fresh_postgres(dir: &Path) -> Storage {
        Storage::Postgres {
            url: postgres::Postgres::shared().database("it"),
            key_file: dir.join("encryption.key"),
        }
    }

    /// Whether the suite runs on PostgreSQL (tests that read the redb file skip then).
    pub fn suite_is_postgres() -> bool {
        std::env::var(STORAGE_ENV).is_ok_and(|v| v == "postgres")
    }
}

/// Config text for a gateway on `port` with its database in `dir` (or the suite's
/// PostgreSQL, see [`Storage::for_suite`]); `server_extra` goes into `[server]`, `extra` is
/// appended.
pub fn config_text(port: u16, dir: &Path, server_extra: &str, extra: &str) -> String {
    config_text_on(&Storage::for_suite(dir), port, dir, server_extra, extra)
}

/// [`config_text`] on the given storage.
pub fn config_text_on(
    storage: &Storage,
    port: u16,
    dir: &Path,
    server_extra: &str,
    extra: &str,
) -> String {
    let (storage_section, extra) = match storage {
        Storage::Redb => (
            format!("path = \"{}\"", dir.join("data/authgate.redb").display()),
            extra.to_string(),
        ),
        Storage::Postgres { url, key_file } => {
            let key = format!("encryption_key_file = \"{}\"", key_file.display());
            let extra = if extra.contains("[security]\n") {
                extra.replacen("[security]\n", &format!("[security]\n{key}\n"), 1)
            } else {
                format!("{extra}\n[security]\n{key}\n")
            };
            (
                format!("backend = \"postgres\"\nurl = \"{url}\"\npool_size = 4"),
                extra,
            )
        }
    };
    format!(
        r#"
[server]
listen = ["127.0.0.1:{port}"]
{public_url}
threads = 2
shutdown_timeout = "2s"
{server_extra}

[storage]
{storage_section}

{log}

{extra}
"#,
        log = if extra.contains("[log]") {
            ""
        } else {
            "[log]\nlevel = \"warn\""
        },
        public_url = if server_extra.contains("public_url") {
            String::new()
        } else {
            format!("public_url = \"http://127.0.0.1:{port}\"")
        },
    )
}

impl TestServer {
    /// Start a gateway whose config is the defaults plus `extra` (sections and routes).
    pub fn start(extra: &str) -> TestServer {
        TestServer::start_full("", extra)
    }

    /// Start with extra `[server]` keys and extra sections.
    pub fn start_full(server_extra: &str, extra: &str) -> TestServer {
        TestServer::start_with(|_| (server_extra.to_string(), extra.to_string()))
    }

    /// Start on a fresh port with config text that depends on it or names more ports:
    /// `config(port)` gives the extra `[server]` keys and the sections. When a port the config
    /// names is taken, `config` is called again with a new port, so it takes every other
    /// port it names from [`free_port`] itself, and starts there whatever must know the
    /// gateway's port (a proxy in front, a provider sending browsers back).
    pub fn start_with(mut config: impl FnMut(u16) -> (String, String)) -> TestServer {
        on_a_free_port(|port| {
            let (server_extra, extra) = config(port);
            TestServer::launch(port, &server_extra, &extra)
        })
    }

    /// [`TestServer::start_full`] on a given port (known before the config is written); no
    /// retry if it is taken.
    pub fn start_on(port: u16, server_extra: &str, extra: &str) -> TestServer {
        TestServer::launch(port, server_extra, extra).unwrap_or_else(|e| match e {
            NotStarted::PortTaken(why) | NotStarted::Failed(why) => panic!("{why}"),
        })
    }

    /// Start on `storage` (e.g. a PostgreSQL database other gateways use too).
    pub fn start_on_storage(storage: &Storage, server_extra: &str, extra: &str) -> TestServer {
        TestServer::start_with_storage(storage, |_| (server_extra.to_string(), extra.to_string()))
    }

    /// [`TestServer::start_with`] on `storage`.
    pub fn start_with_storage(
        storage: &Storage,
        mut config: impl FnMut(u16) -> (String, String),
    ) -> TestServer {
        on_a_free_port(|port| {
            let (server_extra, extra) = config(port);
            TestServer::launch_on(Some(storage), port, &server_extra, &extra)
        })
    }

    fn launch(port: u16, server_extra: &str, extra: &str) -> Result<TestServer, NotStarted> {
        TestServer::launch_on(None, port, server_extra, extra)
    }

    fn launch_on(
        storage: Option<&Storage>,
        port: u16,
        server_extra: &str,
        extra: &str,
    ) -> Result<TestServer, NotStarted> {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("config.toml");
        let text = match storage {
            Some(storage) => config_text_on(storage, port, dir.path(), server_extra, extra),
            None => config_text(port, dir.path(), server_extra, extra),
        };
        std::fs::write(&config_path, text).expect("config");
        let mut s = TestServer {
            dir,
            port,
            config_path,
            child: None,
            log: CapturedLog::none(),
        };
        s.try_spawn()?;
        Ok(s)
    }

    /// Start with routes: everything to `upstream` behind `policy`.
    pub fn with_upstream(upstream: &str, policy: &str) -> TestServer {
        TestServer::start(&format!(
            "[[routes]]\npath = \"/\"\nupstream = \"{upstream}\"\npolicy = \"{policy}\"\n"
        ))
    }

    /// Start the process and wait until it is healthy on its port.
    fn try_spawn(&mut self) -> Result<(), NotStarted> {
        let (child, log) = serve(&self.config_path);
        self.log = log;
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Whoever took the port would answer too: only our own process counts.
            if listens_on(pid, self.port)
                && Client::new(self.port)
                    .try_get("/auth/health")
                    .is_ok_and(|r| r.status == 200)
            {
                return Ok(());
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok()?);
            let log = match exited {
                Some(_) => self.log.finish(Duration::from_secs(5)),
                None => self.log.text(),
            };
            if lost_an_address(&log) {
                self.kill();
                return Err(NotStarted::PortTaken(log));
            }
            if let Some(status) = exited {
                self.child = None;
                return Err(NotStarted::Failed(format!(
                    "authgate exited early ({status}): {log}"
                )));
            }
            assert!(
                Instant::now() < deadline,
                "authgate did not become healthy: {log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn(&mut self) {
        if let Err(NotStarted::PortTaken(why) | NotStarted::Failed(why)) = self.try_spawn() {
            panic!("{why}");
        }
    }

    /// What the running (or last) process has logged so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// The first line the running process logs (or has logged) that contains `needle`,
    /// waiting up to `timeout`; panics with the log so far if none comes.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        self.log
            .wait_for_line(|line| line.contains(needle), timeout)
            .unwrap_or_else(|log| {
                panic!("authgate logged no line containing {needle:?} within {timeout:?}:\n{log}")
            })
    }

    /// Base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Database file path.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("data/authgate.redb")
    }

    /// A client without a session.
    pub fn client(&self) -> Client {
        Client::new(self.port)
    }

    /// Send SIGTERM and wait; returns how long the process took to exit and its whole stderr.
    pub fn stop(&mut self) -> (Duration, String) {
        let Some(mut child) = self.child.take() else {
            return (Duration::ZERO, String::new());
        };
        let started = Instant::now();
        unsafe_kill(child.id(), "TERM");
        let deadline = started + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let elapsed = started.elapsed();
        (elapsed, self.log.finish(Duration::from_secs(10)))
    }

    /// Kill with SIGKILL (no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Send a signal by name (`HUP`, `TERM`, ...).
    pub fn signal(&self, signal: &str) {
        unsafe_kill(self.pid(), signal);
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Start again after `kill` or `stop`, on the same port, config and database.
    pub fn respawn(&mut self) {
        self.spawn();
    }

    /// Stop and start again on the same port, config and database.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Create the owner through `/auth/setup` and return a logged-in client.
    pub fn setup_owner(&self) -> Client {
        let mut c = self.client();
        let r = c.post_json(
            "/auth/setup",
            &serde_json::json!({"email": "owner@example.com", "password": "owner-password-1", "username": "owner"}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        c
    }

    /// Register a user (open registration) and return a logged-in client.
    pub fn register(&self, email: &str, password: &str) -> Client {
        let mut c = self.client();
        let r = c.post_json(
            "/auth/register",
            &serde_json::json!({"email": email, "password": password}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        c
    }
}

/// Run `authgate serve` on `config` (text) and expect it to refuse to start: returns its
/// stderr. For a config refused before it binds anything (an invalid one); one that names
/// ports goes through [`refuses_to_start_with`].
pub fn refuses_to_start(config: &str) -> String {
    refuses_to_start_with(|_| config.to_string()).1
}

/// Run `authgate serve` on the config text `config(port)` gives (`port` is fresh, for its
/// listen address) and expect it to refuse to start: returns its exit status and stderr. The
/// binary checks its listen addresses before anything else, so when it refuses only because
/// one of them is taken, `config` is called again with a new port; it takes any other port it
/// names from [`free_port`] itself. Panics if it is still running after 20 s or exits
/// successfully.
pub fn refuses_to_start_with(
    mut config: impl FnMut(u16) -> String,
) -> (std::process::ExitStatus, String) {
    on_a_free_port(|port| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config(port)).expect("config");
        let (mut child, stderr) = serve(&path);
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "authgate started although it should have refused: {}",
                    stderr.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = stderr.finish(Duration::from_secs(5));
        if lost_an_address(&err) {
            return Err(NotStarted::PortTaken(err));
        }
        assert!(!status.success(), "exit status {status}: {err}");
        assert!(
            !err.contains("panicked"),
            "start-up refused by a panic, not a message: {err}"
        );
        Ok((status, err))
    })
}

/// Start `authgate serve` on the config file `config`, in the config's directory, its stderr
/// read as it is written. The config's `[log] level` decides what it logs: a `RUST_LOG` in
/// the caller's environment is not passed on.
fn serve(config: &Path) -> (Child, CapturedLog) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(config.parent().expect("the config's directory"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn authgate");
    let stderr = CapturedLog::capture(child.stderr.take().expect("stderr"));
    (child, stderr)
}

/// Whether the gateway's log says an address it should listen on is taken: refused at its
/// own check before start-up ("cannot listen on ..."), or found taken by Pingora's bind just
/// after, which retries for half a minute without answering.
fn lost_an_address(log: &str) -> bool {
    (log.contains("cannot listen on") && says_address_in_use(log))
        || log.contains("is in use, will try again")
}

fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    /// The body as JSON (Null if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The error code of an error envelope.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The headers the echo upstream received (asserting the answer came from it).
    pub fn echoed_headers(&self) -> Value {
        assert_eq!(
            self.header("x-upstream").as_deref(),
            Some("echo"),
            "not from the upstream: {} {}",
            self.status,
            self.body
        );
        self.json()["headers"].clone()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// An HTTP client for one gateway that keeps its session cookie like a browser would.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    port: u16,
    /// `name=value` of the session cookie, if any.
    pub cookie: Option<String>,
}

impl Client {
    /// A client for the gateway on `port`.
    pub fn new(port: u16) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client {
            agent,
            port,
            cookie: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn absorb(&mut self, resp: &mut http::Response<ureq::Body>) -> Reply {
        for sc in resp.headers().get_all("set-cookie") {
            let Ok(sc) = sc.to_str() else { continue };
            let pair = sc.split(';').next().unwrap_or("").trim();
            if sc.contains("Max-Age=0") || pair.ends_with('=') {
                self.cookie = None;
            } else {
                self.cookie = Some(pair.to_string());
            }
        }
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Reply {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body,
        }
    }

    /// GET, returning transport errors.
    pub fn try_get(&self, path: &str) -> Result<Reply, ureq::Error> {
        let mut r = self.agent.get(self.url(path)).call()?;
        let body = r.body_mut().read_to_string().unwrap_or_default();
        Ok(Reply {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body,
        })
    }

    /// GET with extra headers.
    pub fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.get(self.url(path));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut resp = req.call().expect("GET");
        self.absorb(&mut resp)
    }

    /// GET.
    pub fn get(&mut self, path: &str) -> Reply {
        self.get_with(path, &[])
    }

    /// Like [`Client::send`], but a transport error (server gone) is `None` instead of a panic.
    pub fn try_send(&mut self, method: &str, path: &str, body: Option<&Value>) -> Option<Reply> {
        let mut builder = http::Request::builder().method(method).uri(self.url(path));
        if let Some(c) = &self.cookie {
            builder = builder.header("cookie", c);
        }
        let payload = match body {
            Some(v) => {
                builder = builder.header("content-type", "application/json");
                v.to_string()
            }
            None => String::new(),
        };
        let mut resp = self.agent.run(builder.body(payload).ok()?).ok()?;
        Some(self.absorb(&mut resp))
    }

    /// A request with a method, JSON body (or none) and extra headers.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut builder = http::Request::builder().method(method).uri(self.url(path));
        if let Some(c) = &self.cookie {
            builder = builder.header("cookie", c);
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let payload = match body {
            Some(v) => {
                builder = builder.header("content-type", "application/json");
                v.to_string()
            }
            None => String::new(),
        };
        let req = builder.body(payload).expect("request");
        let mut resp = self.agent.run(req).expect("request");
        self.absorb(&mut resp)
    }

    /// POST an HTML form.
    pub fn send_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut req = http::Request::builder()
            .method("POST")
            .uri(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html");
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let mut resp = self
            .agent
            .run(req.body(body).expect("request"))
            .expect("request");
        self.absorb(&mut resp)
    }

    /// POST a JSON body.
    pub fn post_json(&mut self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(body), &[])
    }

    /// Log in with an identifier and password.
    pub fn login(&mut self, identifier: &str, password: &str) -> Reply {
        self.post_json(
            "/auth/login",
            &serde_json::json!({"identifier": identifier, "password": password}),
        )
    }

    /// As an admin, wait until an audit entry satisfies `done` (entries are written within
    /// about a second); returns the latest 500 entries, newest first.
    pub fn audit_until(&mut self, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.get("/auth/admin/audit?limit=500");
            assert_eq!(r.status, 200, "{}", r.body);
            let entries = r.json()["data"]["entries"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if entries.iter().any(&done) {
                return entries;
            }
            assert!(
                Instant::now() < deadline,
                "audit entry not written: {entries:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Run `n` requests at once (released together by a barrier) and collect the replies.
pub fn race(n: usize, request: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Vec<Reply> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let request = std::sync::Arc::new(request);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (b, f) = (
                std::sync::Arc::clone(&barrier),
                std::sync::Arc::clone(&request),
            );
            std::thread::spawn(move || {
                b.wait();
                f(i)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("request thread"))
        .collect()
}

/// Send raw bytes and read the whole response (connection closed by `Connection: close`).
pub fn raw_request(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}
