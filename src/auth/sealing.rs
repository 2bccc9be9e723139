//! Secrets at rest (TOTP secrets): sealed with ChaCha20-Poly1305 under a key kept in its own
//! file, so a copied database alone yields no second factors. The key file is created on first
//! start (mode 0600) and must be backed up with the database.

use std::io::Write as _;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};

/// Where the key is kept: `security.encryption_key_file`, else `encryption.key` in the
/// database's folder.
pub fn key_path(config: &crate::config::Config) -> std::path::PathBuf {
    if let Some(file) = &config.security.encryption_key_file {
        return file.clone();
    }
    let dir = config
        .storage
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty());
    dir.map_or_else(
        || std::path::PathBuf::from("encryption.key"),
        |d| d.join("encryption.key"),
    )
}

/// The layout of a sealed value: this byte, a 12-byte nonce, the ciphertext with its tag.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 12;

/// The key that seals secrets at rest. Never printed.
pub struct SealingKey(ChaCha20Poly1305);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> SealingKey {
        SealingKey(ChaCha20Poly1305::new(bytes.into()))
    }

    /// Read the key file (32 bytes in base64); `None` when there is none.
    pub fn load(file: &Path) -> Result<Option<SealingKey>, String> {
        read_key(file)
    }

    /// Read the key file (32 bytes in base64), creating it with a new random key, readable by
    /// the gateway's user only, when it does not exist.
    pub fn load_or_create(file: &Path) -> Result<SealingKey, String> {
        match read_key(file)? {
            Some(key) => Ok(key),
            None => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
                if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                write_private(file, &STANDARD.encode(bytes))?;
                // Read back what is in place: another instance may have written its key first.
                read_key(file)?.ok_or_else(|| format!("{}: vanished", file.display()))
            }
        }
    }

    /// Seal `secret`, bound to `context` (the owner's id): it opens only with the same key
    /// and context.
    pub fn seal(&self, secret: &[u8], context: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| format!("no randomness: {e}"))?;
        let sealed = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: context,
                },
            )
            .map_err(|_| "sealing failed".to_string())?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Open what [`SealingKey::seal`] made; `Err` for another key, another context, or any
    /// change to the bytes.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, String> {
        let (version, rest) = sealed.split_first().ok_or("empty sealed value")?;
        if *version != SEALED_V1 || rest.len() < NONCE_LEN {
            return Err("not a sealed value of a known version".into());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| "a short nonce")?;
        self.0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| "the sealed value does not open with this key".to_string())
    }
}

/// The key in `file`, or `None` when there is no such file.
fn read_key(file: &Path) -> Result<Option<SealingKey>, String> {
    let shown = file.display();
    match std::fs::read_to_string(file) {
        Ok(text) => {
            let raw = STANDARD
                .decode(text.trim())
                .map_err(|_| format!("{shown}: not a key written by authgate (base64)"))?;
            let bytes: [u8; 32] = raw
                .try_into()
                .map_err(|_| format!("{shown}: the key must be 32 bytes"))?;
            Ok(Some(SealingKey::from_bytes(&bytes)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{shown}: {e}")),
    }
}

/// Write `text` to `file` readable by its owner only, all at once: the text goes to a private
/// temporary file beside it, which is then linked into place. When another process got there
/// first, its complete key is kept and read instead (two instances starting together agree).
fn write_private(file: &Path, text: &str) -> Result<(), String> {
    let shown = file.display();
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".encryption.key.")
        .permissions(private())
        .tempfile_in(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    tmp.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| format!("{shown}: {e}"))?;
    match tmp.persist_noclobber(file) {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("{shown}: {}", e.error)),
    }
}

fn private() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::Permissions::from_mode(0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_owner() {
        let key = SealingKey::from_bytes(&[7; 32]);
        let other = SealingKey::from_bytes(&[8; 32]);
        let sealed = key.seal(b"JBSWY3DPEHPK3PXP", b"user-1").expect("seal");
        assert_eq!(
            key.open(&sealed, b"user-1").expect("open"),
            b"JBSWY3DPEHPK3PXP"
        );
        assert_ne!(
            key.seal(b"JBSWY3DPEHPK3PXP", b"user-1").expect("seal"),
            sealed,
            "fresh nonce"
        );
        let mut flipped = sealed.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        // (what, sealed bytes, key, context) → refused
        let cases: [(&str, &[u8], &SealingKey, &[u8]); 5] = [
            ("another key", &sealed, &other, b"user-1"),
            ("another owner", &sealed, &key, b"user-2"),
            ("a changed byte", &flipped, &key, b"user-1"),
            ("truncated", &sealed[..10], &key, b"user-1"),
            ("empty", &[], &key, b"user-1"),
        ];
        for (what, bytes, k, context) in cases {
            assert!(k.open(bytes, context).is_err(), "{what}");
        }
    }

    #[test]
    fn the_key_file_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("state/encryption.key");
        let first = SealingKey::load_or_create(&file).expect("create");
        let sealed = first.seal(b"secret", b"u").expect("seal");
        let again = SealingKey::load_or_create(&file).expect("read");
        assert_eq!(again.open(&sealed, b"u").expect("open"), b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&file, "not a key\n").expect("write");
        assert!(SealingKey::load_or_create(&file).is_err());
        assert!(format!("{first:?}") == "SealingKey(..)");
    }

    #[test]
    fn starters_racing_for_the_key_file_all_get_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("encryption.key");
        let keys: Vec<SealingKey> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..8)
                .map(|_| s.spawn(|| SealingKey::load_or_create(&file)))
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("thread").expect("key"))
                .collect()
        });
        let sealed = keys[0].seal(b"secret", b"u").expect("seal");
        for key in &keys {
            assert_eq!(key.open(&sealed, b"u").expect("same key"), b"secret");
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(left.len(), 1, "no temporary files left behind");
    }
}
