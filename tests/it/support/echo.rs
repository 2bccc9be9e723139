//! A real HTTP upstream on loopback that answers with what it received, as JSON:
//! `{"method", "uri", "headers": {name: [values]}, "body"}`. `/slow` waits 3 s first.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};

/// A running echo upstream.
pub struct Echo {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut headers: Map<String, Value> = Map::new();
    for (k, v) in &parts.headers {
        let entry = headers
            .entry(k.as_str().to_string())
            .or_insert_with(|| json!([]));
        if let Value::Array(a) = entry {
            a.push(json!(String::from_utf8_lossy(v.as_bytes())));
        }
    }
    let out = json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut resp = Response::new(Full::new(Bytes::from(out.to_string())));
    resp.headers_mut()
        .insert("content-type", "application/json".parse().expect("ct"));
    resp.headers_mut()
        .insert("x-upstream", "echo".parse().expect("v"));
    Ok(resp)
}

impl Echo {
    /// Start on an ephemeral loopback port.
    pub fn start() -> Echo {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind echo");
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
                            tokio::spawn(async move {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        Echo {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `host:port` for a route's upstream.
    pub fn upstream(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
