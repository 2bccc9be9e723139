//! TLS fixtures: a throw-away CA with leaf certificates, a TLS client that reports what was
//! negotiated, and an HTTPS upstream that reports the SNI it received.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A certificate authority for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate and key, as PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("ca");
        TestCa { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A leaf for these names (DNS names or IP addresses).
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("sign");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl Leaf {
    /// Write `cert.pem` and `key.pem` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, &self.cert_pem).expect("cert");
        std::fs::write(&key, &self.key_pem).expect("key");
        (cert, key)
    }

    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("pem")
    }
}

/// What a TLS connection negotiated, and a response.
pub struct TlsReply {
    pub alpn: Option<Vec<u8>>,
    pub peer_cert: CertificateDer<'static>,
    pub status: u16,
    pub body: String,
    pub version: http::Version,
}

fn client_config(ca: &CertificateDer<'static>, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("root");
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    cfg
}

/// An open HTTPS connection (HTTP/1.1 or HTTP/2, as negotiated).
pub struct TlsConn {
    pub alpn: Option<Vec<u8>>,
    pub peer_cert: CertificateDer<'static>,
    sender: Sender,
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl TlsConn {
    /// Connect to `addr`, verifying the certificate for `name` against `ca`, offering `alpn`.
    pub async fn open(
        addr: SocketAddr,
        name: &str,
        ca: &CertificateDer<'static>,
        alpn: &[&[u8]],
    ) -> std::io::Result<TlsConn> {
        let connector = TlsConnector::from(Arc::new(client_config(ca, alpn)));
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let server = ServerName::try_from(name.to_string()).expect("name");
        let tls = connector.connect(server, tcp).await?;
        let (_, conn) = tls.get_ref();
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        let peer_cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .cloned()
            .expect("a certificate");
        let io = TokioIo::new(tls);
        let sender = if alpn.as_deref() == Some(b"h2") {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            Sender::H2(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            Sender::H1(sender)
        };
        Ok(TlsConn {
            alpn,
            peer_cert,
            sender,
        })
    }

    /// `GET path` on this connection.
    pub async fn get(&mut self, host: &str, path: &str, accept: &str) -> TlsReply {
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                let req = Request::get(path)
                    .header("host", host)
                    .header("accept", accept)
                    .body(Empty::new())
                    .expect("request");
                s.send_request(req).await.expect("h1 response")
            }
            Sender::H2(s) => {
                let req = Request::get(format!("https://{host}{path}"))
                    .header("accept", accept)
                    .body(Empty::new())
                    .expect("request");
                s.send_request(req).await.expect("h2 response")
            }
        };
        let status = resp.status().as_u16();
        let version = resp.version();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        TlsReply {
            alpn: self.alpn.clone(),
            peer_cert: self.peer_cert.clone(),
            status,
            body,
            version,
        }
    }
}

/// An HTTPS upstream answering every request with 200 and `{"sni": ..., "uri": ...}`.
pub struct TlsEcho {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsEcho {
    /// Serve `leaf` on `bind` (port 0 for any).
    pub fn start(bind: SocketAddr, leaf: &Leaf) -> TlsEcho {
        let certs = vec![leaf.der()];
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let std_listener = std::net::TcpListener::bind(bind).expect("bind tls echo");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut rx => return,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let Ok(tls) = acceptor.accept(stream).await else { return };
                                let sni = tls.get_ref().1.server_name().map(str::to_string);
                                let service = service_fn(move |req: Request<Incoming>| {
                                    let body = serde_json::json!({
                                        "sni": sni,
                                        "uri": req.uri().to_string(),
                                    })
                                    .to_string();
                                    async move {
                                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                                    }
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(tls), service)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        TlsEcho {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for TlsEcho {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
