//! Handlers called in process, without a socket: a request goes into [`handle`] and the
//! answer's status, body and headers, and what was stored, are asserted on. The tables here
//! are the registration matrix, the sign-in gates, the admin role and group matrix, and what
//! a browser's form post gets back.

mod admin;
mod forms;
mod pages;
mod passkeys;
mod registration;
mod signin;
mod token_pages;
mod tokens;
mod two_factor;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};

use super::{handle, ApiRequest};
use crate::app::App;
use crate::config::Config;
use crate::store::{Store, UserRecord};

/// The owner every harness can set up.
pub(super) const OWNER_PASSWORD: &str = "owner password 1";
/// The password of every other account the tests make.
pub(super) const PASSWORD: &str = "member password 1";

/// An app over a fresh database in a temporary directory.
pub(super) struct Harness {
    pub app: Arc<App>,
    _dir: tempfile::TempDir,
}

/// What a handler answered.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The envelope's error code ("" on success).
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.as_str().eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.to_str().ok())
    }

    /// The session cookie set (`name=value`), if a non-empty one was.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| *k == http::header::SET_COOKIE)
            .filter_map(|(_, v)| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().to_string())
            .find(|pair| {
                // `__Host-` when the site is served over https.
                pair.trim_start_matches("__Host-")
                    .starts_with("authgate_session=")
                    && !pair.ends_with('=')
            })
    }
}

/// A request as the edge would build it: from a loopback client over plain HTTP.
pub(super) fn request(method: Method, path: &str) -> ApiRequest {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (path, None),
    };
    let loopback: IpAddr = [127, 0, 0, 1].into();
    ApiRequest {
        method,
        path: path.into(),
        query,
        headers: HeaderMap::new(),
        body: Bytes::new(),
        client_ip: loopback,
        peer_ip: loopback,
        scheme: "http",
        original_target: None,
    }
}

pub(super) fn with_header(mut req: ApiRequest, name: &'static str, value: &str) -> ApiRequest {
    if let Ok(v) = HeaderValue::from_str(value) {
        req.headers.insert(name, v);
    }
    req
}

pub(super) fn with_json(req: ApiRequest, body: &Value) -> ApiRequest {
    let mut req = with_header(req, "content-type", "application/json");
    req.body = Bytes::from(body.to_string());
    req
}

/// A form post from one of the gateway's pages, as a browser sends it.
pub(super) async fn submit(
    h: &Harness,
    path: &str,
    pairs: &[(&str, &str)],
    cookie: Option<&str>,
) -> Reply {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let mut req = with_header(
        request(Method::POST, path),
        "content-type",
        "application/x-www-form-urlencoded",
    );
    req = with_header(req, "sec-fetch-site", "same-origin");
    req = with_header(req, "accept", "text/html");
    req.body = Bytes::from(body);
    h.send(with_cookie(req, cookie)).await
}

/// A browser's navigation.
pub(super) async fn visit(h: &Harness, path: &str, cookie: Option<&str>) -> Reply {
    let req = with_header(request(Method::GET, path), "accept", "text/html,*/*;q=0.8");
    h.send(with_cookie(req, cookie)).await
}

/// Whether the answer is a page.
pub(super) fn is_page(r: &Reply) -> bool {
    r.header("content-type")
        .is_some_and(|t| t.starts_with("text/html"))
}

pub(super) fn with_cookie(req: ApiRequest, cookie: Option<&str>) -> ApiRequest {
    match cookie {
        Some(c) => with_header(req, "cookie", c),
        None => req,
    }
}

impl Harness {
    /// An app on `toml` (the built-in defaults when empty).
    pub async fn new(toml: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut config = Config::from_toml(toml).unwrap_or_else(|e| panic!("config: {e}"));
        // The state (and the sealing key beside it) lives in this test's own directory.
        config.storage.path = dir.path().join("db.redb");
        let store = Store::open_redb(&config.storage.path, 1 << 20)
            .unwrap_or_else(|e| panic!("store: {e}"));
        let app = App::new(config, store).unwrap_or_else(|e| panic!("app: {e}"));
        Harness { app, _dir: dir }
    }

    pub async fn send(&self, req: ApiRequest) -> Reply {
        let r = handle(&self.app, req).await;
        Reply {
            status: r.status.as_u16(),
            headers: r.headers,
            body: String::from_utf8_lossy(&r.body).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.send(with_cookie(request(Method::GET, path), cookie))
            .await
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        cookie: Option<&str>,
    ) -> Reply {
        self.send(with_cookie(with_json(request(method, path), body), cookie))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value, cookie: Option<&str>) -> Reply {
        self.json(Method::POST, path, body, cookie).await
    }

    /// Set up the owner (`owner` / owner@example.com); their session cookie.
    pub async fn owner(&self) -> String {
        let body =
            json!({"email": "owner@example.com", "username": "owner", "password": OWNER_PASSWORD});
        let r = self.post("/setup", &body, None).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.session_cookie()
            .unwrap_or_else(|| panic!("no cookie: {r:?}"))
    }

    /// Sign in; the reply.
    pub async fn login(&self, identifier: &str, password: &str) -> Reply {
        let body = json!({"identifier": identifier, "password": password});
        self.post("/login", &body, None).await
    }

    /// An active account with `role` (made by the owner whose cookie is given); its id and
    /// session cookie.
    pub async fn member(&self, owner: &str, email: &str, role: &str) -> (String, String) {
        let (id, cookie) = self.account(owner, email, role).await;
        (
            id,
            cookie.unwrap_or_else(|| panic!("{email} was not signed in")),
        )
    }

    /// An account with `role` registered through an invite; its id and the session cookie
    /// registration set, if it did.
    pub async fn account(&self, owner: &str, email: &str, role: &str) -> (String, Option<String>) {
        let r = self
            .post("/admin/invites", &json!({"role": role}), Some(owner))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let code = r.json()["data"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let r = self
            .post(
                &format!("/register?invite={code}"),
                &json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.json()["data"]["user"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (id, r.session_cookie())
    }

    /// The stored account for an email or username.
    pub async fn stored(&self, identifier: &str) -> Option<UserRecord> {
        self.app
            .store
            .find_user(identifier)
            .await
            .unwrap_or_else(|e| panic!("store: {e}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_login_me_and_logout_without_a_socket() {
    let h = Harness::new("").await;
    let body = json!({"email": "o@example.com", "password": "password one", "username": "Olive"});
    let r = h.post("/setup", &body, None).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["data"]["user"]["username"], "olive");
    let r = h.post("/setup", &body, None).await;
    assert_eq!(r.code(), "ALREADY_SETUP");

    let r = h.login("olive", "password one").await;
    assert_eq!(r.status, 200);
    let cookie = r.session_cookie().expect("cookie");
    let r = h.get("/me", Some(&cookie)).await;
    assert_eq!(r.json()["data"]["user"]["role"], "owner");
    assert_eq!(r.header("cache-control"), Some("no-store"));

    let r = h.post("/logout", &json!({}), Some(&cookie)).await;
    assert_eq!(r.status, 200);
    let r = h.get("/me", Some(&cookie)).await;
    assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_answers_404_405_and_head() {
    let h = Harness::new("").await;
    assert_eq!(h.get("/nowhere", None).await.status, 404);
    let r = h.send(request(Method::DELETE, "/me")).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED.as_u16());
    assert_eq!(r.header("allow"), Some("GET, PATCH"));
    let r = handle(&h.app, request(Method::HEAD, "/status")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.head_only);
}
