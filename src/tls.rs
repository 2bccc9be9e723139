//! The HTTPS listeners' certificate: loaded and checked before Pingora builds its TLS acceptor
//! (which panics on bad files), served through a resolver so a renewed certificate can be
//! swapped in on SIGHUP while open connections carry on with the one they started with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read the TLS certificate {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("cannot read the TLS private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the TLS private key {key} does not belong to the certificate {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The crypto provider for every TLS use in the process (the one Pingora installs).
pub fn provider() -> Arc<CryptoProvider> {
    let _ = CryptoProvider::install_default(rustls::crypto::ring::default_provider());
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Read a PEM chain and key, and check that they are usable together.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, CertError> {
    let cert_err = |reason: String| CertError::Cert {
        path: cert.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(cert).map_err(|e| cert_err(e.to_string()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(format!("not valid PEM ({e})")))?;
    if chain.is_empty() {
        return Err(cert_err("no CERTIFICATE block found".into()));
    }
    for (i, der) in chain.iter().enumerate() {
        if x509_parser::parse_x509_certificate(der).is_err() {
            return Err(cert_err(format!(
                "certificate {} is not valid X.509",
                i + 1
            )));
        }
    }
    let key_err = |reason: String| CertError::Key {
        path: key.to_path_buf(),
        reason,
    };
    let key_bytes = std::fs::read(key).map_err(|e| key_err(e.to_string()))?;
    let private = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        key_err(match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY block found (PKCS#8, PKCS#1 or SEC1 PEM expected)".into()
            }
            other => format!("not valid PEM ({other})"),
        })
    })?;
    let certified = CertifiedKey::from_der(chain, private, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => CertError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: e.to_string(),
        },
        other => key_err(format!("unusable key ({other})")),
    })?;
    Ok(Arc::new(certified))
}

/// When the leaf certificate stops being valid (Unix seconds), if it can be read.
pub fn not_after(key: &CertifiedKey) -> Option<i64> {
    let leaf = key.cert.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// The certificate in use, replaceable while serving.
#[derive(Debug)]
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Load the files once; an error here stops start-up with the reason.
    pub fn open(cert: &Path, key: &Path) -> Result<Arc<CertStore>, CertError> {
        let loaded = load(cert, key)?;
        warn_if_expiring(&loaded, cert);
        Ok(Arc::new(CertStore {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(loaded),
        }))
    }

    /// Read the files again; on any problem the certificate in use stays.
    pub fn reload(&self) -> Result<(), CertError> {
        let loaded = load(&self.cert, &self.key)?;
        warn_if_expiring(&loaded, &self.cert);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(())
    }

    /// The certificate new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn warn_if_expiring(key: &CertifiedKey, path: &Path) {
    let Some(end) = not_after(key) else { return };
    let left = end - crate::app::now_secs();
    if left <= 0 {
        tracing::warn!(cert = %path.display(), "the TLS certificate has expired");
    } else if left < 14 * 86_400 {
        tracing::warn!(
            cert = %path.display(),
            days_left = left / 86_400,
            "the TLS certificate expires soon"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn pair(names: &[&str]) -> (String, String) {
        let ck = rcgen::generate_simple_self_signed(
            names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .expect("generate");
        (ck.cert.pem(), ck.key_pair.serialize_pem())
    }

    #[test]
    fn a_matching_pair_loads_and_reloads() {
        let dir = tempfile::tempdir().expect("dir");
        let (cert, key) = pair(&["localhost"]);
        let c = write(dir.path(), "c.pem", &cert);
        let k = write(dir.path(), "k.pem", &key);
        let store = CertStore::open(&c, &k).expect("loads");
        let first = store.current().cert[0].clone();
        let (cert2, key2) = pair(&["localhost"]);
        write(dir.path(), "c.pem", &cert2);
        write(dir.path(), "k.pem", &key2);
        store.reload().expect("reloads");
        assert_ne!(store.current().cert[0], first);
        assert!(not_after(&store.current()).is_some_and(|t| t > crate::app::now_secs()));
    }

    #[test]
    fn bad_files_are_named_and_keep_the_old_certificate() {
        let dir = tempfile::tempdir().expect("dir");
        let (cert, key) = pair(&["localhost"]);
        let (_, other_key) = pair(&["localhost"]);
        let c = write(dir.path(), "c.pem", &cert);
        let k = write(dir.path(), "k.pem", &key);
        let missing = dir.path().join("missing.pem");
        let garbage = write(dir.path(), "g.pem", "hello\n");
        let other = write(dir.path(), "o.pem", &other_key);

        let e = load(&missing, &k).expect_err("missing cert");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        assert!(matches!(load(&garbage, &k), Err(CertError::Cert { .. })));
        assert!(matches!(load(&c, &garbage), Err(CertError::Key { .. })));
        assert!(matches!(load(&c, &c), Err(CertError::Key { .. })));
        assert!(matches!(load(&k, &k), Err(CertError::Cert { .. })));
        assert!(matches!(load(&c, &other), Err(CertError::Mismatch { .. })));
        let truncated = write(dir.path(), "t.pem", &cert[..cert.len() / 2]);
        assert!(load(&truncated, &k).is_err());

        let store = CertStore::open(&c, &k).expect("loads");
        let before = store.current().cert[0].clone();
        write(dir.path(), "k.pem", &other_key);
        assert!(store.reload().is_err());
        assert_eq!(store.current().cert[0], before);
    }
}
