//! Real PostgreSQL from the system's packages (`scripts/deps.sh` installs them): a private
//! cluster in a temp dir, made with `initdb` and run with `pg_ctl`, listening on a loopback port
//! from [`free_port`](super::free_port) with its unix sockets in the same dir.
//!
//! The tests run as root and PostgreSQL refuses to, so its commands then run as the `postgres`
//! user (`runuser`, or `su` where there is none); as anyone else, as that user. Authentication
//! is `trust`, on 127.0.0.1 and the cluster's own sockets only.
//!
//! [`Postgres::shared`] is one cluster for the whole test binary: each test takes a database of
//! its own from it ([`Postgres::database`]), and cannot stop it. A test that stops and starts
//! the server takes a [`Postgres::private`] cluster, so it never disturbs the others.
//!
//! A cluster is stopped (`-m immediate`) and its dir removed on drop. The shared one is never
//! dropped, so each cluster has a guard process that does the same once the test binary has
//! gone, however it ended: it waits for the end of a pipe that only the test binary holds.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use super::ports::{on_a_free_port, NotStarted};

/// How long `pg_ctl` waits for the server to start or stop, in seconds.
const PG_CTL_WAIT_SECS: &str = "30";

/// The superuser `initdb` creates, whom every URL names.
const SUPERUSER: &str = "postgres";

/// A PostgreSQL cluster of the test run; stopped and removed on drop.
pub struct Postgres {
    /// The loopback port it listens on, kept across [`Postgres::stop`] and [`Postgres::start`].
    pub port: u16,
    bin: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    run_as: RunAs,
    running: bool,
    guard: Option<(Child, ChildStdin)>,
}

impl Postgres {
    /// The cluster all tests of this binary share; take a database of your own from it.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(Postgres::private)
    }

    /// A cluster of the caller's own, started; for tests that stop and start the server.
    pub fn private() -> Postgres {
        Postgres::create(None)
    }

    /// A cluster of the caller's own that takes TCP connections over TLS only, with this
    /// certificate and key (PEM); its unix sockets ([`Postgres::local_url`]) stay open to
    /// plain connections, for a test to look inside.
    pub fn private_tls_only(cert_pem: &str, key_pem: &str) -> Postgres {
        Postgres::create(Some((cert_pem, key_pem)))
    }

    fn create(tls: Option<(&str, &str)>) -> Postgres {
        let bin = server_bin_dir();
        let run_as = RunAs::detect();
        let dir = tempfile::Builder::new()
            .prefix("authgate-pg-")
            .tempdir()
            .expect("tempdir for PostgreSQL")
            .keep();
        if let RunAs::Postgres(_) = run_as {
            run(Command::new("chown").arg(format!("{SUPERUSER}:")).arg(&dir));
        }
        let mut pg = Postgres {
            port: 0,
            bin,
            data: dir.join("data"),
            dir,
            run_as,
            running: false,
            guard: None,
        };
        pg.guard = Some(pg.spawn_guard());
        pg.init(tls);
        on_a_free_port(|port| {
            pg.port = port;
            pg.try_start()
        });
        pg
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the cluster's maintenance database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// Create a fresh, empty database whose name starts with `name` (lower-case letters,
    /// digits, `_`) and return its URL; every call makes a new one, so tests sharing a cluster
    /// never share a database.
    pub fn database(&self, name: &str) -> String {
        static MADE: AtomicU32 = AtomicU32::new(0);
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "database names here are lower-case letters, digits and _: {name:?}"
        );
        let name = format!("{name}_{}", MADE.fetch_add(1, Ordering::Relaxed));
        // A client: it needs no particular system user.
        run(Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "--", &name])
            .env("PGCONNECT_TIMEOUT", "10"));
        self.url_of(&name)
    }

    /// Stop the server (fast shutdown: sessions are ended); the data and port are kept.
    pub fn stop(&mut self) {
        assert!(self.running, "PostgreSQL is already stopped");
        run(&mut self.pg_ctl(&["-m", "fast", "stop"]));
        self.running = false;
    }

    /// Start the server again after [`Postgres::stop`], on the same data and port.
    pub fn start(&mut self) {
        assert!(!self.running, "PostgreSQL is already running");
        if let Err(NotStarted::PortTaken(why) | NotStarted::Failed(why)) = self.try_start() {
            panic!("{why}");
        }
    }

    fn url_of(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// `database` over the cluster's unix socket (a `key=value` string), never TLS.
    pub fn local_url(&self, database: &str) -> String {
        format!(
            "host={} port={} user={SUPERUSER} dbname={database}",
            path_str(&self.dir),
            self.port
        )
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// `initdb`, then the settings a test cluster needs: loopback only, its sockets in its own
    /// dir, no fsync (a crash of the machine may lose it), trust on loopback only; with `tls`
    /// (certificate and key), TCP connections over TLS only.
    fn init(&self, tls: Option<(&str, &str)>) {
        let data = &self.data;
        run(&mut self.as_postgres(
            &self.bin.join("initdb"),
            &[
                "-D",
                path_str(data),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        ));
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            path_str(&self.dir)
        );
        let mut hba = String::from("local all all trust\n");
        match tls {
            None => hba.push_str("host all all 127.0.0.1/32 trust\n"),
            Some((cert, key)) => {
                self.write_owned(&data.join("server.crt"), cert, 0o644);
                // PostgreSQL refuses a key others may read.
                self.write_owned(&data.join("server.key"), key, 0o600);
                conf.push_str("ssl = on\n");
                hba.push_str("hostssl all all 127.0.0.1/32 trust\n");
            }
        }
        // Appended and rewritten in place, so the files keep their owner.
        let conf_path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).expect("read postgresql.conf");
        text.push_str(&conf);
        std::fs::write(&conf_path, text).expect("write postgresql.conf");
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
    }

    /// Write a new file in the data dir, owned by the cluster's user, with `mode`.
    fn write_owned(&self, path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(path, text).expect("write into the data dir");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        if let RunAs::Postgres(_) = self.run_as {
            run(Command::new("chown").arg(format!("{SUPERUSER}:")).arg(path));
        }
    }

    /// `pg_ctl start` on `self.port`, waiting until it accepts connections.
    fn try_start(&mut self) -> Result<(), NotStarted> {
        let port = format!("-p {}", self.port);
        let log = self.log_path();
        // Only what this start logs says why it failed.
        let logged_before = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let output = self
            .pg_ctl(&["-l", path_str(&log), "-o", &port, "start"])
            .output()
            .expect("run pg_ctl");
        if !output.status.success() {
            let server_log = std::fs::read(&log).unwrap_or_default();
            let server_log =
                String::from_utf8_lossy(server_log.get(logged_before..).unwrap_or_default());
            return Err(NotStarted::exited(format!(
                "pg_ctl start on port {} failed ({}): {}{}\nserver log:\n{server_log}",
                self.port,
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
            )));
        }
        self.running = true;
        Ok(())
    }

    /// `pg_ctl -D DATA -w -t SECS <args>`, as the cluster's user.
    fn pg_ctl(&self, args: &[&str]) -> Command {
        self.as_postgres(&self.bin.join("pg_ctl"), &self.pg_ctl_args(args))
    }

    fn pg_ctl_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["-D", path_str(&self.data), "-w", "-t", PG_CTL_WAIT_SECS];
        all.extend_from_slice(args);
        all
    }

    fn as_postgres(&self, program: &Path, args: &[&str]) -> Command {
        let argv = self.run_as.argv(path_str(program), args);
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            // Somewhere the cluster's user may be, whatever the caller's directory.
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        command
    }

    /// The guard: once its stdin ends (on drop, or when the test binary is gone), it stops the
    /// server and removes the dir. In a process group of its own, so a Ctrl-C of the test run
    /// does not end it before it has cleaned up.
    fn spawn_guard(&self) -> (Child, ChildStdin) {
        use std::os::unix::process::CommandExt as _;
        let stop = self.run_as.argv(
            path_str(&self.bin.join("pg_ctl")),
            &self.pg_ctl_args(&["-m", "immediate", "stop"]),
        );
        let mut child = Command::new("sh")
            .args([
                "-c",
                r#"dir=$1; shift; read -r _; "$@" >/dev/null 2>&1; rm -rf -- "$dir""#,
                "sh",
                path_str(&self.dir),
            ])
            .args(&stop)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn the PostgreSQL guard (sh)");
        let stdin = child.stdin.take().expect("guard stdin");
        (child, stdin)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.guard.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// Who runs the server's commands.
enum RunAs {
    /// The current user (not root).
    Me,
    /// Root, as the `postgres` user through this command.
    Postgres(Switch),
}

enum Switch {
    Runuser(PathBuf),
    Su(PathBuf),
}

impl RunAs {
    fn detect() -> RunAs {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return RunAs::Me;
        }
        if let Some(runuser) = find_program("runuser") {
            return RunAs::Postgres(Switch::Runuser(runuser));
        }
        let su = find_program("su").expect("running as root, runuser or su is needed");
        RunAs::Postgres(Switch::Su(su))
    }

    /// The command line that runs `program args` as the cluster's user.
    fn argv(&self, program: &str, args: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = match self {
            RunAs::Me => Vec::new(),
            RunAs::Postgres(Switch::Runuser(runuser)) => {
                vec![
                    path_str(runuser).into(),
                    "-u".into(),
                    SUPERUSER.into(),
                    "--".into(),
                ]
            }
            RunAs::Postgres(Switch::Su(su)) => {
                let line = std::iter::once(program)
                    .chain(args.iter().copied())
                    .map(shell_quote)
                    .collect::<Vec<_>>()
                    .join(" ");
                return vec![
                    path_str(su).into(),
                    SUPERUSER.into(),
                    "-s".into(),
                    "/bin/sh".into(),
                    "-c".into(),
                    line,
                ];
            }
        };
        argv.push(program.into());
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }
}

/// `word` as one word for `sh`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The directory with `initdb`, `pg_ctl`, `postgres` and `createdb`: the newest major version
/// under `/usr/lib/postgresql` (Debian's layout), else where `pg_ctl` on `PATH` really is.
fn server_bin_dir() -> PathBuf {
    let has_server = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres", "createdb"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    let newest_major = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_server(&bin).then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin);
    newest_major
        .or_else(|| {
            let pg_ctl = std::fs::canonicalize(find_program("pg_ctl")?).ok()?;
            let bin = pg_ctl.parent()?.to_path_buf();
            has_server(&bin).then_some(bin)
        })
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL's server (initdb, pg_ctl, postgres, createdb) is not in \
                 /usr/lib/postgresql/*/bin or on PATH: run scripts/deps.sh"
            )
        })
}

/// `name` on `PATH`, or in the system directories root's `PATH` usually has.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Run `command` to its end; panics naming it, with its output, if it fails.
fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e} (run scripts/deps.sh)"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Connect to `url` (within 5 s) and drive the connection in the background.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}
