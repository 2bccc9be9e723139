//! The Pingora edge: a thin [`ProxyHttp`] that decides, per request, between the local API
//! and an upstream (after the session check and route policy), and writes local answers
//! through one writer. Pingora types stay in this module and in `server.rs`.

pub mod ext_authz_grpc;
mod request_id;
mod respond;
mod whoami;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT, CONTENT_LENGTH, HOST, LOCATION};
use http::StatusCode;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{ErrorSource, ErrorType};
use tracing::Instrument as _;

use crate::access::{self, login_url, wants_html, Verdict};
use crate::api::{self, error_response, ApiRequest, ApiResponse};
use crate::app::{App, Policy};
use crate::auth::api_token;
use crate::auth::cookie;
use crate::error::ApiError;
use crate::policy::headers::{apply_plan, plan_upstream_headers, ForwardedFor, HeaderPlan};
use crate::policy::host::request_host;
use crate::policy::path::classify_path;
use crate::policy::routes::{Target, Upstream};
use request_id::{RequestId, X_REQUEST_ID};

/// A kept-alive client connection may stay idle this long between requests.
const KEEPALIVE_IDLE_SECS: u64 = 60;
/// A client may pause this long while sending a request body.
const CLIENT_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// Requests with more headers than this get 431.
const MAX_HEADER_COUNT: usize = 100;

/// The gateway's request handler.
pub struct Gateway {
    app: Arc<App>,
    cookie_names: [String; 6],
}

impl Gateway {
    /// A gateway over shared state.
    pub fn new(app: Arc<App>) -> Gateway {
        let cookie_names = cookie::all_names(&app.config.session);
        Gateway { app, cookie_names }
    }
}

/// Per-request state carried between Pingora's phases.
pub struct RequestCtx {
    peer_ip: IpAddr,
    peer_trusted: bool,
    /// The client reached us over TLS.
    tls: bool,
    /// The policy snapshot the request was decided by; its header plan is used too, so one
    /// request never sees two reload generations.
    policy: Option<Arc<Policy>>,
    /// The upstream's addresses once looked up, tried in turn when connecting fails.
    upstream_addrs: Option<Arc<[SocketAddr]>>,
    /// Connection attempts that failed so far.
    upstream_attempts: usize,
    /// Who the request is from (public routes may have nobody).
    requester: Option<access::Requester>,
    /// Carried on every log line of the request and sent upstream as `X-Request-Id`.
    request_id: RequestId,
    started: std::time::Instant,
    /// What answers: the gateway itself, the route at this place in `policy`'s routes (whose
    /// upstream the request goes to, if any), or nothing. Also the metrics' route label.
    routed: Routed,
    /// The metrics' policy label.
    policy_label: &'static str,
    /// When the upstream was chosen, for the upstream latency histogram.
    upstream_started: Option<std::time::Instant>,
    /// The path and query to send upstream instead of the raw ones (the canonical form of a
    /// path the app could read differently from the decision).
    upstream_target: Option<Vec<u8>>,
    /// The request's host as sent (validated): the host the decision was made for, told to the
    /// upstream in `X-Forwarded-Host`.
    host: Option<String>,
}

#[derive(Clone, Copy)]
enum Routed {
    Nothing,
    Gateway,
    Route(usize),
}

thread_local! {
    static LABEL_AUTH: Arc<String> = Arc::new("auth".to_string());
    static LABEL_NONE: Arc<String> = Arc::new("none".to_string());
}

/// The wire spelling of the headers the gateway sets upstream by default. Pingora copies the
/// spelling of any other name from the name itself (one allocation per header); these are
/// static.
const TITLED: [(&str, &str); 11] = [
    ("x-forwarded-for", "X-Forwarded-For"),
    ("x-forwarded-proto", "X-Forwarded-Proto"),
    ("x-forwarded-host", "X-Forwarded-Host"),
    ("x-request-id", "X-Request-Id"),
    ("cookie", "Cookie"),
    ("remote-user", "Remote-User"),
    ("remote-email", "Remote-Email"),
    ("remote-name", "Remote-Name"),
    ("remote-groups", "Remote-Groups"),
    ("remote-user-id", "Remote-User-Id"),
    ("remote-auth-methods", "Remote-Auth-Methods"),
];

fn titled(name: &http::HeaderName) -> Option<&'static str> {
    TITLED
        .iter()
        .find(|(lower, _)| *lower == name.as_str())
        .map(|(_, spelled)| *spelled)
}

/// The original request target of an Envoy HTTP `ext_authz` check: what follows
/// `{prefix}/ext-authz` in the raw target when a `/`, a `?` or nothing follows it. Not text
/// (which HTTP/1 cannot carry in a target anyway) is no check.
fn ext_authz_target<'a>(raw: &'a [u8], prefix: &str) -> Option<&'a str> {
    let rest = raw
        .strip_prefix(prefix.as_bytes())?
        .strip_prefix(api::EXT_AUTHZ.as_bytes())?;
    match rest.first() {
        None | Some(b'/') | Some(b'?') => std::str::from_utf8(rest).ok(),
        _ => None,
    }
}

/// Read the whole request body, refusing more than `max` bytes.
async fn read_body(session: &mut Session, max: usize) -> Result<Bytes, ApiError> {
    if let Some(len) = session.req_header().headers.get(CONTENT_LENGTH) {
        let declared: Option<usize> = len.to_str().ok().and_then(|s| s.trim().parse().ok());
        match declared {
            Some(n) if n > max => return Err(ApiError::PayloadTooLarge),
            Some(_) => {}
            None => return Err(ApiError::invalid("malformed Content-Length")),
        }
    }
    let mut body = BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(ApiError::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(_) => return Err(ApiError::invalid("the request body could not be read")),
        }
    }
}

impl Gateway {
    /// Write a local answer; a body left unread means the connection cannot be reused.
    async fn answer(&self, session: &mut Session, resp: ApiResponse) -> pingora::Result<bool> {
        if !session.is_body_done() {
            session.set_keepalive(None);
        }
        respond::send(session, resp).await?;
        Ok(true)
    }

    async fn refuse(&self, session: &mut Session, err: ApiError) -> pingora::Result<bool> {
        let resp = self.error_answer(session, &err).await;
        self.answer(session, resp).await
    }

    /// A refusal or failure as a browser sees it (a page with a way onward), else JSON.
    async fn error_answer(&self, session: &Session, err: &ApiError) -> ApiResponse {
        let headers = &session.req_header().headers;
        if wants_html(headers) {
            // A 401 says how to authenticate (RFC 9110), as a page too.
            let mut page = api::error_page(&self.app, headers, "", err).await;
            if page.status == StatusCode::UNAUTHORIZED {
                for value in err.challenge() {
                    page.headers.push((http::header::WWW_AUTHENTICATE, value));
                }
            }
            page
        } else {
            error_response(err, false)
        }
    }

    async fn serve_api(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        path: String,
        original_target: Option<String>,
    ) -> pingora::Result<bool> {
        let body = match read_body(session, self.app.config.server.max_body).await {
            Ok(b) => b,
            Err(e) => return self.answer(session, error_response(&e, false)).await,
        };
        let req = session.req_header();
        let api_req = ApiRequest {
            method: req.method.clone(),
            path,
            query: req.uri.query().map(str::to_string),
            headers: req.headers.clone(),
            body,
            client_ip: self.app.client_ip(ctx.peer_ip, &req.headers),
            peer_ip: ctx.peer_ip,
            scheme: if ctx.tls { "https" } else { "http" },
            original_target,
        };
        let span = tracing::info_span!("request", id = %ctx.request_id);
        let resp = api::handle(&self.app, api_req).instrument(span).await;
        self.answer(session, resp).await
    }

    /// The redirect a browser gets when it needs to log in.
    fn login_redirect(&self, session: &Session, host: Option<&str>, tls: bool) -> ApiResponse {
        let original = self.original_url(session, host, tls);
        ApiResponse::new(
            StatusCode::FOUND,
            "text/plain; charset=utf-8",
            "login required\n",
        )
        .with_header(LOCATION, &login_url(&self.app.config, &original))
        .with_header(http::header::CACHE_CONTROL, "no-store")
    }

    /// To the two-step verification page and back.
    fn second_factor_redirect(
        &self,
        session: &Session,
        host: Option<&str>,
        tls: bool,
    ) -> ApiResponse {
        let original = self.original_url(session, host, tls);
        ApiResponse::new(
            StatusCode::FOUND,
            "text/plain; charset=utf-8",
            "second factor required\n",
        )
        .with_header(
            LOCATION,
            &access::second_factor_url(&self.app.config, &original),
        )
        .with_header(http::header::CACHE_CONTROL, "no-store")
    }

    fn original_url(&self, session: &Session, host: Option<&str>, tls: bool) -> String {
        let target = String::from_utf8_lossy(session.req_header().raw_path()).into_owned();
        let scheme = if tls { "https" } else { "http" };
        match host {
            Some(h) => format!("{scheme}://{h}{target}"),
            None => format!("{}{target}", self.app.config.server.public_url.origin),
        }
    }

    /// The addresses to connect to for `target`: as written, or looked up now (a failed
    /// lookup is the upstream's failure: 502).
    async fn upstream_addrs(&self, target: &Target) -> pingora::Result<Arc<[SocketAddr]>> {
        match target {
            Target::Addr(addr) => Ok(Arc::from([*addr])),
            Target::Name { host, port } => {
                self.app.resolver.resolve(host, *port).await.map_err(|e| {
                    tracing::warn!(error = %e, "upstream lookup failed");
                    pingora::Error::create(
                        ErrorType::ConnectNoRoute,
                        ErrorSource::Upstream,
                        Some(e.to_string().into()),
                        None,
                    )
                })
            }
        }
    }

    fn header_plan(&self, session: &Session, ctx: &RequestCtx, policy: &Policy) -> HeaderPlan {
        let headers = &session.req_header().headers;
        let trusted = |name: &str| {
            ctx.peer_trusted
                .then(|| headers.get(name).and_then(|v| v.to_str().ok()))
                .flatten()
        };
        let prior: Vec<&str> = if ctx.peer_trusted {
            headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        } else {
            Vec::new()
        };
        let prior = prior.join(", ");
        let https = match trusted("x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("https") => true,
            Some(p) if p.eq_ignore_ascii_case("http") => false,
            _ => ctx.tls,
        };
        let fwd = ForwardedFor {
            peer_ip: ctx.peer_ip,
            prior_xff: (!prior.is_empty()).then_some(prior.as_str()),
            https,
            host: ctx.host.as_deref(),
        };
        let mut plan = plan_upstream_headers(
            headers,
            &policy.headers,
            ctx.requester.as_ref().map(|r| &r.identity().header_values),
            &self.cookie_names,
            &fwd,
        );
        plan.set.push((X_REQUEST_ID, ctx.request_id.header_value()));
        plan.remove.extend(api_token::credential_headers(
            headers,
            self.app.auth.token_header(),
            self.app.config.session.bearer,
        ));
        plan
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            peer_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            peer_trusted: false,
            tls: false,
            policy: None,
            upstream_addrs: None,
            upstream_attempts: 0,
            requester: None,
            request_id: RequestId::default(),
            started: std::time::Instant::now(),
            routed: Routed::Nothing,
            policy_label: "none",
            upstream_started: None,
            upstream_target: None,
            host: None,
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        // Bound idle keep-alive (Pingora's default for HTTP/1.1 is unlimited) and slow bodies.
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(KEEPALIVE_IDLE_SECS));
        }
        session.set_read_timeout(Some(CLIENT_READ_TIMEOUT));
        Ok(())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let app = &self.app;
        // No address (e.g. a Unix socket) counts as untrusted.
        ctx.peer_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        ctx.peer_trusted = crate::net::is_trusted(ctx.peer_ip, &app.config.server.trusted_proxies);
        ctx.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        ctx.request_id = RequestId::for_request(&session.req_header().headers, ctx.peer_trusted);

        let headers = &session.req_header().headers;
        let header_bytes: usize = headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        if headers.len() > MAX_HEADER_COUNT || header_bytes > app.config.server.max_header_size {
            return self.refuse(session, ApiError::HeadersTooLarge).await;
        }

        let raw = session.req_header().raw_path();
        let (raw_path, query) = match raw.iter().position(|b| *b == b'?') {
            Some(i) => raw.split_at(i),
            None => (raw, &b""[..]),
        };
        // Envoy's HTTP ext_authz appends the original target, as sent, to the check's path:
        // it is decided (and refused when not canonical) as the original, never normalised
        // into the gateway's own paths.
        if let Some(original) = ext_authz_target(raw, &app.config.auth.prefix) {
            ctx.routed = Routed::Gateway;
            ctx.policy_label = "api";
            let original = original.to_string();
            return self
                .serve_api(session, ctx, api::EXT_AUTHZ.to_string(), Some(original))
                .await;
        }
        let forms = match classify_path(raw_path) {
            Ok(f) => f,
            Err(e) => {
                return self
                    .refuse(session, ApiError::invalid(format!("bad request path: {e}")))
                    .await
            }
        };
        // The upstream gets the canonical form unless the raw path already is it.
        let canonical_target = (!forms.raw_is_canonical).then(|| {
            let mut t = forms.canonical.as_bytes().to_vec();
            t.extend_from_slice(query);
            t
        });
        let path = forms.matched;

        let prefix = &app.config.auth.prefix;
        if let Some(rest) = path.strip_prefix(prefix.as_str()) {
            if rest.is_empty() || rest.starts_with('/') {
                ctx.routed = Routed::Gateway;
                ctx.policy_label = "api";
                let sub = if rest.is_empty() {
                    "/".to_string()
                } else {
                    rest.to_string()
                };
                return self.serve_api(session, ctx, sub, None).await;
            }
        }

        let host = {
            let req = session.req_header();
            let hosts = req.headers.get_all(HOST).iter().map(|v| v.as_bytes());
            match request_host(hosts, req.uri.authority().map(|a| a.as_str())) {
                Ok(h) => h,
                Err(e) => {
                    return self
                        .refuse(session, ApiError::invalid(format!("bad Host header: {e}")))
                        .await
                }
            }
        };
        let method = session.req_header().method.clone();
        let span = tracing::info_span!("request", id = %ctx.request_id);
        // The snapshot is kept for the request's later phases (header plan, upstream, metrics
        // label) and borrowed from there: one reference count per request.
        ctx.policy = Some(app.policy());
        let Some(policy) = ctx.policy.as_deref() else {
            let err = ApiError::Internal("no policy snapshot for the request".into());
            return self.refuse(session, err).await;
        };
        let headers = &session.req_header().headers;
        let client_ip = app.client_ip(ctx.peer_ip, headers);
        let target = access::Target {
            host: host.as_ref().map_or("", |h| h.canonical.as_str()),
            path: &path,
            method: &method,
        };
        let decision = access::decide_request(app, policy, target, headers, client_ip)
            .instrument(span)
            .await;
        app.metrics.decision("proxy", decision.verdict.name());
        if let Some(i) = decision.index {
            ctx.routed = Routed::Route(i);
        }
        ctx.policy_label = decision.route.map_or("none", access::policy_name);
        let route = match decision.verdict {
            Verdict::Allow => match decision.route {
                Some(route) => route,
                None => return self.refuse(session, ApiError::NotFound).await,
            },
            Verdict::NoRoute => return self.refuse(session, ApiError::NotFound).await,
            Verdict::Ambiguous => {
                let problem = crate::policy::routes::CaseAmbiguous.to_string();
                return self.refuse(session, ApiError::invalid(problem)).await;
            }
            Verdict::Unavailable => {
                return self
                    .refuse(
                        session,
                        ApiError::ServiceUnavailable {
                            retry_after_secs: 5,
                        },
                    )
                    .await
            }
            Verdict::Forbidden => {
                return self
                    .refuse(
                        session,
                        ApiError::Forbidden("access to this resource is denied".into()),
                    )
                    .await
            }
            Verdict::LoginRequired => {
                let headers = &session.req_header().headers;
                if wants_html(headers)
                    && (method == http::Method::GET || method == http::Method::HEAD)
                {
                    let sent = host.as_ref().map(|h| h.sent.as_str());
                    let resp = self.login_redirect(session, sent, ctx.tls);
                    return self.answer(session, resp).await;
                }
                let err = access::unauthenticated(&app.config, decision.route, headers, false);
                return self.refuse(session, err).await;
            }
            Verdict::TokenRefused => {
                let headers = &session.req_header().headers;
                let err = access::unauthenticated(&app.config, decision.route, headers, true);
                return self.refuse(session, err).await;
            }
            Verdict::TokensNotAccepted => {
                let err = ApiError::Forbidden(access::TOKENS_NOT_ACCEPTED.into());
                return self.refuse(session, err).await;
            }
            Verdict::RateLimited { retry_after_secs } => {
                return self
                    .refuse(session, ApiError::RateLimited { retry_after_secs })
                    .await
            }
            Verdict::SecondFactorRequired => {
                let headers = &session.req_header().headers;
                if wants_html(headers)
                    && (method == http::Method::GET || method == http::Method::HEAD)
                {
                    let sent = host.as_ref().map(|h| h.sent.as_str());
                    let resp = self.second_factor_redirect(session, sent, ctx.tls);
                    return self.answer(session, resp).await;
                }
                return self.refuse(session, ApiError::SecondFactorRequired).await;
            }
        };
        ctx.requester = decision.requester;
        ctx.host = host.map(|h| h.sent);
        if !route.raw_path {
            ctx.upstream_target = canonical_target;
        }

        match &route.upstream {
            Upstream::Http { .. } => Ok(false),
            Upstream::Whoami => {
                let plan = self.header_plan(session, ctx, policy);
                let req = session.req_header();
                let mut shown = req.headers.clone();
                apply_plan(&mut shown, &plan);
                let target = match &ctx.upstream_target {
                    Some(t) => String::from_utf8_lossy(t).into_owned(),
                    None => String::from_utf8_lossy(req.raw_path()).into_owned(),
                };
                let json = req
                    .headers
                    .get(ACCEPT)
                    .is_some_and(|v| v.to_str().is_ok_and(|s| s.contains("application/json")));
                let resp = whoami::render(&req.method, &target, &shown, json);
                self.answer(session, resp).await
            }
            // A route without an upstream only answers forward-auth checks.
            Upstream::None => self.refuse(session, ApiError::NotFound).await,
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let route = match (ctx.policy.as_deref(), ctx.routed) {
            (Some(policy), Routed::Route(i)) => policy.routes.get(i),
            _ => None,
        };
        let Some(Upstream::Http { target, tls, sni }) = route.map(|r| &r.upstream) else {
            return Err(pingora::Error::explain(
                ErrorType::InternalError,
                "no upstream selected",
            ));
        };
        ctx.upstream_started = Some(std::time::Instant::now());
        let addrs = match &ctx.upstream_addrs {
            Some(addrs) => Arc::clone(addrs),
            None => {
                let addrs = self.upstream_addrs(target).await?;
                ctx.upstream_addrs = Some(Arc::clone(&addrs));
                addrs
            }
        };
        let Some(addr) = addrs.get(ctx.upstream_attempts % addrs.len().max(1)) else {
            return Err(pingora::Error::explain(
                ErrorType::InternalError,
                "the upstream has no address",
            ));
        };
        let mut peer = HttpPeer::new(*addr, *tls, sni.clone());
        let server = &self.app.config.server;
        peer.options.connection_timeout = Some(server.upstream_connect_timeout);
        peer.options.read_timeout = Some(server.upstream_timeout);
        peer.options.write_timeout = Some(server.upstream_timeout);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut pingora::http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let Some(target) = ctx.upstream_target.take() {
            upstream_request.set_raw_path(&target)?;
        }
        // Decided by this snapshot, so planned by it too; without one nothing is sent.
        let Some(policy) = ctx.policy.as_deref() else {
            return Err(pingora::Error::explain(
                ErrorType::InternalError,
                "no policy snapshot for the request",
            ));
        };
        let plan = self.header_plan(session, ctx, policy);
        for name in &plan.remove {
            upstream_request.remove_header(name);
        }
        for (name, value) in plan.set {
            match titled(&name) {
                Some(titled) => upstream_request.insert_header(titled, value)?,
                None => upstream_request.insert_header(name, value)?,
            }
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _upstream_response: &mut pingora::http::ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let Some(at) = ctx.upstream_started.take() {
            self.app.metrics.upstream_time(at.elapsed());
        }
        Ok(())
    }

    async fn logging(
        &self,
        session: &mut Session,
        _e: Option<&pingora::Error>,
        ctx: &mut RequestCtx,
    ) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        let count = |route: &Arc<String>| self.app.metrics.request(route, ctx.policy_label, status);
        let label = match (ctx.routed, ctx.policy.as_deref()) {
            (Routed::Route(i), Some(policy)) => policy.labels.get(i),
            _ => None,
        };
        match (label, ctx.routed) {
            (Some(label), _) => count(label),
            (None, Routed::Gateway) => LABEL_AUTH.with(count),
            (None, _) => LABEL_NONE.with(count),
        }
        let req = session.req_header();
        tracing::debug!(
            target: "authgate::access",
            request_id = %ctx.request_id,
            method = %req.method,
            path = %String::from_utf8_lossy(req.raw_path()),
            status,
            ms = ctx.started.elapsed().as_millis() as u64,
            client = %ctx.peer_ip,
        );
    }

    /// A client that leaves before its answer is complete is routine, not an error: such
    /// failures are logged at debug level; everything else keeps Pingora's error line.
    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, e: &pingora::Error) -> bool {
        let client_left = e.esource() == &ErrorSource::Downstream
            && matches!(
                e.etype(),
                ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
            );
        if client_left {
            tracing::debug!(request_id = %ctx.request_id, error = %e, "client closed the connection");
        }
        client_left
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<pingora::Error>,
    ) -> Box<pingora::Error> {
        // A name with several addresses: try the next one (each at most once).
        ctx.upstream_attempts += 1;
        let addresses = ctx.upstream_addrs.as_ref().map_or(0, |a| a.len());
        if ctx.upstream_attempts < addresses {
            tracing::debug!(request_id = %ctx.request_id, peer = %peer, error = %e, "trying the upstream's next address");
            e.set_retry(true);
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &pingora::Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let err = match e.etype() {
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
                Some(ApiError::GatewayTimeout)
            }
            ErrorType::HTTPStatus(code) if *code == 400 => Some(ApiError::invalid("bad request")),
            _ => match e.esource() {
                ErrorSource::Upstream => Some(ApiError::BadGateway),
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => {
                        None
                    }
                    _ => Some(ApiError::invalid("bad request")),
                },
                ErrorSource::Internal | ErrorSource::Unset => {
                    Some(ApiError::Internal(e.to_string()))
                }
            },
        };
        let code = match err {
            Some(err) => {
                let status = err.status().as_u16();
                let resp = self.error_answer(session, &err).await;
                // The connection is not reused after a failed proxy attempt: say so.
                session.set_keepalive(None);
                if let Err(write_err) = respond::send(session, resp).await {
                    tracing::debug!(error = %write_err, "could not send the error response");
                }
                status
            }
            None => 0,
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_titled_spelling_names_the_same_header() {
        for (name, spelled) in TITLED {
            let header = http::HeaderName::from_static(name);
            assert_eq!(titled(&header), Some(spelled));
            assert!(spelled.eq_ignore_ascii_case(name), "{name}: {spelled:?}");
            assert_ne!(spelled, name, "{name} is not titled");
        }
        assert_eq!(titled(&http::HeaderName::from_static("x-custom")), None);
    }

    #[test]
    fn an_ext_authz_check_is_told_by_its_raw_target() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"/auth/ext-authz/app/x?y=1", Some("/app/x?y=1")),
            (b"/auth/ext-authz", Some("")),
            (b"/auth/ext-authz?q", Some("?q")),
            (b"/auth/ext-authz/", Some("/")),
            // Kept as sent: the check refuses what is not canonical.
            (b"/auth/ext-authz/admin/../pub", Some("/admin/../pub")),
            (b"/auth/ext-authz//x", Some("//x")),
            (b"/auth/ext-authzed/x", None),
            (b"/auth/ext-authz%2Fx", None),
            (b"/auth//ext-authz/x", None),
            (b"/auth/./ext-authz/x", None),
            (b"/Auth/ext-authz/x", None),
            (b"/app/auth/ext-authz/x", None),
            (b"/auth/ext-authz/\xff", None),
        ];
        for (raw, want) in cases {
            assert_eq!(
                ext_authz_target(raw, "/auth"),
                *want,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
