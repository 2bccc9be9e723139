//! A real Express app (from the npm registry, see `tests/express`) on a loopback port: it
//! routes on the raw path as Express does and says which handler answered.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

fn app_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/express")
}

/// A running Express app; stopped on drop.
pub struct Express {
    pub port: u16,
    child: Child,
}

impl Express {
    /// Start the app on a port the system picks (it reports the port once listening).
    pub fn start() -> Express {
        static DONE: Mutex<bool> = Mutex::new(false);
        super::ensure_npm_packages(&DONE, &app_dir(), &["express"]);
        let mut child = Command::new("node")
            .arg(app_dir().join("app.mjs"))
            .arg("0")
            .current_dir(app_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node (Node.js) is needed: run scripts/deps.sh");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the Express app did not start");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the app: {line:?}"));
        Express { port, child }
    }

    /// The route's `upstream` value.
    pub fn upstream(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Express {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
