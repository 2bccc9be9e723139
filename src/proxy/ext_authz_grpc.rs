//! The gRPC `ext_authz` listener: a Pingora service speaking HTTP/2 in plain text (h2c, as
//! Envoy's gRPC clients do), with the one method `Authorization/Check`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method};
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;

use crate::app::App;
use crate::ext_authz::{self, Code, Failure, CHECK_PATH};

/// The service's logic: one call per HTTP/2 stream.
pub struct GrpcAuthz {
    app: Arc<App>,
    options: HttpServerOptions,
}

impl GrpcAuthz {
    pub fn new(app: Arc<App>) -> GrpcAuthz {
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        GrpcAuthz { app, options }
    }

    /// The largest request message read: a check carries the original request's headers (and
    /// its body, when Envoy is set to send it).
    fn max_message(&self) -> usize {
        let server = &self.app.config.server;
        5 + server.max_header_size + server.max_body + 16 * 1024
    }

    async fn call(&self, session: &mut ServerSession) -> Result<Vec<u8>, Failure> {
        if !session.is_http2() {
            return Err(Failure::new(Code::Unimplemented, "gRPC needs HTTP/2"));
        }
        let req = session.req_header();
        if req.uri.path() != CHECK_PATH {
            return Err(Failure::new(
                Code::Unimplemented,
                format!("no method {}: only {CHECK_PATH}", req.uri.path()),
            ));
        }
        let grpc = req
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t == "application/grpc" || t.starts_with("application/grpc+proto"));
        if req.method != Method::POST || !grpc {
            return Err(Failure::new(
                Code::InvalidArgument,
                "a gRPC call is a POST of application/grpc",
            ));
        }
        let peer_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let body = read_body(session, self.max_message()).await?;
        let message = ext_authz::unframe(&body)?;
        ext_authz::check(&self.app, peer_ip, message).await
    }
}

async fn read_body(session: &mut ServerSession, max: usize) -> Result<Bytes, Failure> {
    let mut body = BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(Failure::new(
                        Code::ResourceExhausted,
                        "the check request is too large",
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(_) => {
                return Err(Failure::new(
                    Code::InvalidArgument,
                    "the request body could not be read",
                ))
            }
        }
    }
}

/// `grpc-status` (and `grpc-message`) as trailers.
fn trailers(code: Code, message: &str) -> HeaderMap {
    let mut t = HeaderMap::with_capacity(2);
    t.insert("grpc-status", HeaderValue::from(code as u16));
    // grpc-message is percent-encoded; what is not plain printable text is left out.
    let printable = message
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'%');
    if printable && !message.is_empty() {
        if let Ok(v) = HeaderValue::from_str(message) {
            t.insert("grpc-message", v);
        }
    }
    t
}

#[async_trait]
impl HttpServerApp for GrpcAuthz {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        _shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match session.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "gRPC ext_authz: the request could not be read");
                return None;
            }
        }
        let result = self.call(&mut session).await;
        if let Err(f) = &result {
            tracing::warn!(code = ?f.code, problem = %f.message, "gRPC ext_authz call refused");
        }
        let mut header = ResponseHeader::build(200, Some(2)).ok()?;
        header
            .insert_header(CONTENT_TYPE, "application/grpc")
            .ok()?;
        let written = async {
            session.write_response_header(Box::new(header)).await?;
            let status = match result {
                Ok(body) => {
                    session
                        .write_response_body(Bytes::from(body), false)
                        .await?;
                    trailers(Code::Ok, "")
                }
                Err(f) => trailers(f.code, &f.message),
            };
            session.write_response_trailers(status).await
        }
        .await;
        if let Err(e) = written {
            tracing::debug!(error = %e, "gRPC ext_authz: the answer could not be written");
            return None;
        }
        // An HTTP/2 stream is never reused; HTTP/1 got a refusal and is closed.
        let _ = session.finish().await;
        None
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_goes_in_trailers_with_a_plain_message_only() {
        let t = trailers(Code::Ok, "");
        assert_eq!(t.get("grpc-status").map(|v| v.as_bytes()), Some(&b"0"[..]));
        assert!(t.get("grpc-message").is_none());
        let t = trailers(Code::Unimplemented, "gRPC needs HTTP/2");
        assert_eq!(t.get("grpc-status").map(|v| v.as_bytes()), Some(&b"12"[..]));
        assert_eq!(
            t.get("grpc-message").map(|v| v.as_bytes()),
            Some(&b"gRPC needs HTTP/2"[..])
        );
        for unsafe_text in ["100%", "caf\u{e9}", "a\nb"] {
            let t = trailers(Code::InvalidArgument, unsafe_text);
            assert!(t.get("grpc-message").is_none(), "{unsafe_text:?}");
            assert_eq!(t.get("grpc-status").map(|v| v.as_bytes()), Some(&b"3"[..]));
        }
    }
}
