//! The one-time setup code: while no owner exists, setup from anywhere but loopback needs it,
//! so the first visitor of a fresh gateway on the network cannot seize it. It lives in a file
//! beside the database (mode 0600), is printed in the log at start and by
//! `authgate setup-code`, and is deleted once the owner exists.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq as _;

use crate::config::Config;

/// Letters and digits that cannot be mistaken for each other when typed from a log.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Where the code is kept: `setup-code` in the database's folder.
pub fn path(config: &Config) -> PathBuf {
    let db = &config.storage.path;
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty());
    dir.map_or_else(|| PathBuf::from("setup-code"), |d| d.join("setup-code"))
}

/// A new code: 15 random characters (75 bits) in three groups, e.g. `K7QM2-...`.
fn new_code() -> Result<String, String> {
    let mut raw = [0u8; 15];
    getrandom::fill(&mut raw).map_err(|e| format!("no randomness: {e}"))?;
    let mut out = String::with_capacity(17);
    for (i, b) in raw.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(b & 31)]));
    }
    Ok(out)
}

/// The current code, if one exists.
pub fn read(config: &Config) -> Option<String> {
    let text = std::fs::read_to_string(path(config)).ok()?;
    let code = text.trim();
    (!code.is_empty()).then(|| code.to_string())
}

/// The current code, created (readable by the gateway's user only) when there is none.
pub fn ensure(config: &Config) -> Result<String, String> {
    if let Some(code) = read(config) {
        return Ok(code);
    }
    let file = path(config);
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let code = new_code()?;
    write_private(&file, &code).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(code)
}

fn write_private(file: &Path, code: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(file)?;
    f.write_all(format!("{code}\n").as_bytes())?;
    f.sync_all()
}

/// Delete the code once the owner exists.
pub fn remove(config: &Config) {
    let file = path(config);
    if let Err(e) = std::fs::remove_file(&file) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %file.display(), error = %e, "could not delete the used setup code");
        }
    }
}

/// Whether `given` is the code (in constant time; case, spaces and dashes aside).
pub fn matches(expected: &str, given: &str) -> bool {
    let canon = |s: &str| -> Vec<u8> {
        s.bytes()
            .filter(|b| !b.is_ascii_whitespace() && *b != b'-')
            .map(|b| b.to_ascii_uppercase())
            .collect()
    };
    let (a, b) = (canon(expected), canon(given));
    !a.is_empty() && bool::from(a.ct_eq(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_created_once_privately_and_compared_loosely() {
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = format!(
            "[storage]\npath = \"{}\"\n",
            dir.path().join("state/db.redb").display()
        );
        let config = Config::from_toml(&toml).expect("config");
        assert_eq!(read(&config), None);
        let code = ensure(&config).expect("created");
        assert_eq!(code.len(), 17);
        assert_eq!(ensure(&config).expect("kept"), code);
        assert_eq!(path(&config), dir.path().join("state/setup-code"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path(&config))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches(&code, &code));
        assert!(matches(&code, &code.to_lowercase().replace('-', " ")));
        assert!(!matches(&code, ""));
        assert!(!matches(&code, "AAAAA-AAAAA-AAAAA"));
        assert!(!matches("", ""));
        remove(&config);
        assert_eq!(read(&config), None);
        assert_ne!(ensure(&config).expect("new"), code);
    }
}
