//! Envoy's gRPC `ext_authz` (`envoy.service.auth.v3.Authorization/Check`): a `CheckRequest`
//! read into the original request, decided by the same check as every forward-auth endpoint,
//! answered as a `CheckResponse`. The gRPC message framing is here too; the Pingora service
//! that carries it over HTTP/2 is in the edge (`proxy/ext_authz_grpc.rs`).

pub mod envoy_api;

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use prost::Message as _;

use crate::api::forward::{self, Check, Mode, Original, Outcome};
use crate::api::{error_response, ApiResponse};
use crate::app::App;
use crate::policy::headers::envoy_plan;
use envoy_api::envoy::config::core::v3 as core;
use envoy_api::envoy::service::auth::v3 as auth;

/// The gRPC method, as the request's `:path`.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// The gRPC status codes the service answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    InvalidArgument = 3,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    Unimplemented = 12,
    Unauthenticated = 16,
}

/// A call that gets no `CheckResponse`, only a gRPC status (Envoy then denies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// The one message of a unary gRPC request body: a 5-byte prefix (compressed flag, length)
/// and exactly that many bytes. Compressed messages are refused (none is offered).
pub fn unframe(body: &[u8]) -> Result<&[u8], Failure> {
    let Some((prefix, message)) = body.split_first_chunk::<5>() else {
        return Err(Failure::new(
            Code::InvalidArgument,
            "the request holds no gRPC message",
        ));
    };
    let [compressed, len @ ..] = *prefix;
    if compressed != 0 {
        return Err(Failure::new(
            Code::Unimplemented,
            "compressed messages are not accepted",
        ));
    }
    if u32::from_be_bytes(len) as usize != message.len() {
        return Err(Failure::new(
            Code::InvalidArgument,
            "the request must hold exactly one gRPC message",
        ));
    }
    Ok(message)
}

/// One message as a gRPC body: uncompressed, with its length.
pub fn frame(message: &[u8]) -> Result<Vec<u8>, Failure> {
    let len = u32::try_from(message.len())
        .map_err(|_| Failure::new(Code::ResourceExhausted, "the answer is too large"))?;
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Ok(out)
}

/// What a `CheckRequest` says about the original request.
struct Asked {
    headers: HeaderMap,
    /// The downstream client's address as Envoy saw it.
    source_ip: Option<IpAddr>,
    original: Result<Original, String>,
}

/// Read a `CheckRequest`. Envoy sends the headers lower-cased, repeated ones joined by a
/// comma, and the pseudo-headers among them (`:path`, ...), which are left out: the request's
/// own fields name method, host, path and scheme. A header that is not valid HTTP refuses the
/// check (the proxy could be told something else than what the app receives).
fn asked(request: &auth::CheckRequest, default_scheme: &'static str) -> Asked {
    let attributes = request.attributes.as_ref();
    let source_ip = attributes
        .and_then(|a| a.source.as_ref())
        .and_then(|p| p.address.as_ref())
        .and_then(|a| match &a.address {
            Some(core::address::Address::SocketAddress(s)) => s.address.parse().ok(),
            _ => None,
        });
    let Some(http) = attributes
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
    else {
        return Asked {
            headers: HeaderMap::new(),
            source_ip,
            original: Err("the check names no HTTP request".into()),
        };
    };
    let mut headers = HeaderMap::with_capacity(http.headers.len());
    let mut invalid = None;
    for (name, value) in &http.headers {
        if name.starts_with(':') {
            continue;
        }
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            (Ok(n), Ok(v)) => {
                headers.append(n, v);
            }
            _ => invalid = Some(name.clone()),
        }
    }
    let original = match invalid {
        Some(name) => Err(format!(
            "the original request's {name:?} header is not valid"
        )),
        None => original(http, default_scheme),
    };
    Asked {
        headers,
        source_ip,
        original,
    }
}

/// The original request from the check's HTTP attributes: `path` is the target as sent
/// (path and query, undecoded).
fn original(
    http: &auth::attribute_context::HttpRequest,
    default_scheme: &'static str,
) -> Result<Original, String> {
    let method = Method::from_bytes(http.method.as_bytes()).map_err(|_| {
        format!(
            "the original method {:?} is not an HTTP method",
            http.method
        )
    })?;
    let scheme = match http.scheme.as_str() {
        "https" => "https",
        "http" => "http",
        "" => default_scheme,
        other => {
            return Err(format!(
                "the original scheme {other:?} is not http or https"
            ))
        }
    };
    if http.host.is_empty() {
        return Err("the original request names no host".into());
    }
    if !http.path.starts_with('/') {
        return Err(format!(
            "the original path {:?} does not start with '/'",
            http.path
        ));
    }
    Original::new(method, scheme, &http.host, http.path.clone())
}

/// Answer one `Check` call: its request message in, its response message out.
pub async fn check(app: &App, peer_ip: IpAddr, message: &[u8]) -> Result<Vec<u8>, Failure> {
    let request = auth::CheckRequest::decode(message)
        .map_err(|e| Failure::new(Code::InvalidArgument, format!("not a CheckRequest: {e}")))?;
    let default_scheme = if app.config.server.public_url.https {
        "https"
    } else {
        "http"
    };
    let Asked {
        headers,
        source_ip,
        original,
    } = asked(&request, default_scheme);
    let client_ip = source_ip.unwrap_or_else(|| app.client_ip(peer_ip, &headers));
    let ask = Check {
        peer_ip,
        client_ip,
        headers: &headers,
        mode: Mode::Envoy,
    };
    let outcome = forward::check(app, ask, |_, _| original).await;
    let response = match outcome {
        Outcome::Allow(identity, policy) => {
            let names = &policy.headers;
            let credentials = forward::credentials(app, &headers);
            let plan = envoy_plan(&headers, names, identity.as_ref(), &credentials);
            allowed(plan.set, plan.remove)
        }
        Outcome::Redirect(resp) => denied(resp),
        Outcome::Deny(e) => denied(error_response(&e, false)),
    };
    frame(&response.encode_to_vec())
}

/// OK: set these headers on the request Envoy forwards (replacing any value) and remove those.
fn allowed(set: Vec<(HeaderName, HeaderValue)>, remove: Vec<HeaderName>) -> auth::CheckResponse {
    let headers = set
        .into_iter()
        .map(|(name, value)| overwrite(&name, &value))
        .collect();
    auth::CheckResponse {
        status: Some(status(Code::Ok, "")),
        http_response: Some(auth::check_response::HttpResponse::OkResponse(
            auth::OkHttpResponse {
                headers,
                headers_to_remove: remove.iter().map(|n| n.as_str().to_string()).collect(),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// Denied: Envoy answers the client with this status, headers (a redirect's `Location`, a
/// 401's challenge) and body.
fn denied(resp: ApiResponse) -> auth::CheckResponse {
    let code = match resp.status {
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        _ => Code::PermissionDenied,
    };
    let headers = resp
        .headers
        .iter()
        .map(|(name, value)| overwrite(name, value))
        .collect();
    let body = String::from_utf8_lossy(&resp.body).into_owned();
    auth::CheckResponse {
        status: Some(status(code, resp.status.canonical_reason().unwrap_or(""))),
        http_response: Some(auth::check_response::HttpResponse::DeniedResponse(
            auth::DeniedHttpResponse {
                status: Some(envoy_api::envoy::r#type::v3::HttpStatus {
                    code: i32::from(resp.status.as_u16()),
                }),
                headers,
                body,
            },
        )),
        ..Default::default()
    }
}

/// A header that replaces any value of the same name.
fn overwrite(name: &HeaderName, value: &HeaderValue) -> core::HeaderValueOption {
    core::HeaderValueOption {
        header: Some(core::HeaderValue {
            key: name.as_str().to_string(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ..Default::default()
        }),
        append_action: core::header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

fn status(code: Code, message: &str) -> envoy_api::google::rpc::Status {
    envoy_api::google::rpc::Status {
        code: code as i32,
        message: message.to_string(),
        details: Vec::new(),
    }
}
