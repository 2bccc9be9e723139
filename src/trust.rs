//! Trust roots from a PEM file (a CA bundle), for the TLS clients the gateway makes: to
//! upstreams and to the database.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The certificates of a PEM file of trust roots (a CA bundle): every block must be a usable
/// CA certificate and there must be at least one, or the reason is returned.
pub fn load_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| format!("not valid PEM ({e})"))?;
        roots
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate ({e})"))?;
    }
    if roots.is_empty() {
        return Err("no CERTIFICATE block found".into());
    }
    let sections = String::from_utf8_lossy(&bytes)
        .matches("-----BEGIN ")
        .count();
    if sections != roots.len() {
        return Err("holds something other than certificates".into());
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair(name: &str) -> (String, String) {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("generate");
        (ck.cert.pem(), ck.key_pair.serialize_pem())
    }

    #[test]
    fn a_roots_file_holds_only_usable_certificates() {
        let dir = tempfile::tempdir().expect("dir");
        let (one, key) = pem_pair("a.test");
        let (two, _) = pem_pair("b.test");
        let cases: &[(&str, String, Result<usize, &str>)] = &[
            ("one", one.clone(), Ok(1)),
            ("two", format!("{one}{two}"), Ok(2)),
            ("empty", String::new(), Err("no CERTIFICATE block")),
            (
                "a key too",
                format!("{one}{key}"),
                Err("something other than"),
            ),
            (
                "broken",
                "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into(),
                Err("not valid PEM"),
            ),
        ];
        for (name, text, want) in cases {
            let path = dir.path().join("roots.pem");
            std::fs::write(&path, text).expect("write");
            match (load_roots(&path), want) {
                (Ok(roots), Ok(n)) => assert_eq!(roots.len(), *n, "{name}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{name}: {e}"),
                (got, _) => panic!("{name}: {:?}", got.map(|r| r.len())),
            }
        }
        assert!(load_roots(&dir.path().join("missing.pem")).is_err());
    }
}
