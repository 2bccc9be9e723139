//! A real Express app (from the npm registry, see `tests/express`) on a loopback port: it
//! routes on the raw path as Express does and says which handler answered.

use std::path::PathBuf;
use std::process::Child;
use std::sync::Mutex;

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
        let (child, line) =
            super::spawn_node(&app_dir(), "app.mjs", &["0".into()], "the Express app")
                .unwrap_or_else(|why| panic!("{why}"));
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
