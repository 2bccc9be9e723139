//! A real OpenID Connect provider (`oidc-provider` from the npm registry, see `tests/oidc`)
//! on a loopback port, and a browser that keeps cookies per origin and walks through the
//! provider's login form.
//!
//! The provider takes its port from `free_port` and starts again on a fresh one when it exits
//! because the port is taken (see `ports`); it is ready once it says it listens.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Child;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use super::ports::{on_a_free_port, NotStarted};
use super::Reply;

/// The client id and secret every test provider registers.
pub const CLIENT_ID: &str = "authgate";
pub const CLIENT_SECRET: &str = "provider-test-secret";

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Install the provider's npm packages once (from the lock file) if they are missing.
fn ensure_packages() {
    static DONE: Mutex<bool> = Mutex::new(false);
    super::ensure_npm_packages(&DONE, &provider_dir(), &["oidc-provider", "jose"]);
}

/// A running provider; stopped on drop.
pub struct TestProvider {
    pub port: u16,
    options: Value,
    child: Option<Child>,
    /// The key id it signs with (new on every start).
    pub kid: String,
}

impl TestProvider {
    /// Start a provider whose one client may return to each of `redirect_uris`.
    /// `claims_in_id_token`: the ID token carries email and profile (else only userinfo does).
    pub fn start(redirect_uris: &[String], claims_in_id_token: bool) -> TestProvider {
        ensure_packages();
        on_a_free_port(|port| {
            let options = json!({
                "port": port,
                "claimsInIdToken": claims_in_id_token,
                "clients": [{
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": redirect_uris,
                }],
            });
            let mut p = TestProvider {
                port,
                options,
                child: None,
                kid: String::new(),
            };
            p.try_spawn().map(|()| p)
        })
    }

    fn try_spawn(&mut self) -> Result<(), NotStarted> {
        let (child, line) = super::spawn_node(
            &provider_dir(),
            "provider.mjs",
            &[self.options.to_string()],
            "the provider",
        )
        .map_err(NotStarted::exited)?;
        let ready: Value = serde_json::from_str(&line).expect("provider ready line");
        assert_eq!(ready["ready"], true, "{line}");
        self.kid = ready["kid"].as_str().unwrap_or_default().to_string();
        self.child = Some(child);
        Ok(())
    }

    /// Stop and start again on the same port (the gateway knows it as the issuer, so no
    /// retry elsewhere): same clients, a new signing key.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "old provider still listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Err(NotStarted::PortTaken(why) | NotStarted::Failed(why)) = self.try_spawn() {
            panic!("{why}");
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Make the next token response carry an altered ID token (see `provider.mjs`).
    pub fn tamper(&self, mode: &str) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let r = agent
            .post(format!("{}/_test/tamper", self.issuer()))
            .send(json!({"mode": mode}).to_string())
            .expect("tamper");
        assert_eq!(r.status(), 200);
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `[[oidc]]` text for a provider named `name` at `provider`, with `extra` keys.
pub fn oidc_section(name: &str, provider: &TestProvider, extra: &str) -> String {
    format!(
        "[[oidc]]\nname = \"{name}\"\ndisplay_name = \"Corp {name}\"\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{extra}\n",
        provider.issuer()
    )
}

/// A browser: cookies per origin (name → value, paths ignored), redirects followed by hand.
pub struct Browser {
    agent: ureq::Agent,
    pub jars: HashMap<String, BTreeMap<String, String>>,
}

fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
            jars: HashMap::new(),
        }
    }

    /// The cookies this browser holds for `origin` (`http://127.0.0.1:PORT`).
    pub fn cookies(&self, origin: &str) -> BTreeMap<String, String> {
        self.jars.get(origin).cloned().unwrap_or_default()
    }

    fn cookie_header(&self, url: &url::Url) -> Option<String> {
        let jar = self.jars.get(&origin_of(url))?;
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn absorb(&mut self, url: &url::Url, resp: &mut http::Response<ureq::Body>) -> Reply {
        let jar = self.jars.entry(origin_of(url)).or_default();
        for sc in resp.headers().get_all("set-cookie") {
            let Ok(sc) = sc.to_str() else { continue };
            let pair = sc.split(';').next().unwrap_or("").trim();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let lower = sc.to_ascii_lowercase();
            if value.is_empty()
                || lower.contains("max-age=0")
                || lower.contains("expires=thu, 01 jan 1970")
            {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Reply {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body,
        }
    }

    /// GET as a browser navigating (Accept: text/html).
    pub fn get(&mut self, url: &str) -> Reply {
        let url = url::Url::parse(url).expect("url");
        let mut req = self
            .agent
            .get(url.as_str())
            .header("accept", "text/html,application/xhtml+xml");
        if let Some(c) = self.cookie_header(&url) {
            req = req.header("cookie", &c);
        }
        let mut resp = req.call().expect("GET");
        self.absorb(&url, &mut resp)
    }

    /// POST a form.
    pub fn post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> Reply {
        let url = url::Url::parse(url).expect("url");
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut req = self
            .agent
            .post(url.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html");
        if let Some(c) = self.cookie_header(&url) {
            req = req.header("cookie", &c);
        }
        let mut resp = req.send(body).expect("POST");
        self.absorb(&url, &mut resp)
    }

    /// Sign in at the provider, starting from its authorization URL, as `login`
    /// (`subject|email|verified`). Returns where the provider sends the browser back to
    /// (the gateway's callback URL with `code` and `state`), without following it.
    pub fn sign_in_at_provider(&mut self, authorize_url: &str, login: &str) -> String {
        let mut url = url::Url::parse(authorize_url).expect("authorize url");
        let provider_origin = origin_of(&url);
        for _ in 0..10 {
            let r = self.get(url.as_str());
            if let Some(loc) = r.header("location") {
                let next = url.join(&loc).expect("location");
                if origin_of(&next) != provider_origin {
                    return next.to_string();
                }
                url = next;
                continue;
            }
            assert_eq!(r.status, 200, "provider page: {}", r.body);
            assert!(
                r.body.contains("name=\"login\""),
                "not a login form: {}",
                r.body
            );
            let r = self.post_form(
                url.as_str(),
                &[("prompt", "login"), ("login", login), ("password", "any")],
            );
            let loc = r
                .header("location")
                .unwrap_or_else(|| panic!("login not accepted: {} {}", r.status, r.body));
            url = url.join(&loc).expect("location");
        }
        panic!("the provider never sent the browser back");
    }

    /// Start at the gateway's `start_url`, sign in at the provider as `login`, and deliver the
    /// callback to the gateway: the gateway's final answer (usually a 303 with a session).
    pub fn sign_in(&mut self, start_url: &str, login: &str) -> Reply {
        let callback = self.begin_and_sign_in(start_url, login);
        self.get(&callback)
    }

    /// Like [`Browser::sign_in`] but stops before the callback: its URL.
    pub fn begin_and_sign_in(&mut self, start_url: &str, login: &str) -> String {
        let authorize = self.begin(start_url);
        self.sign_in_at_provider(&authorize, login)
    }

    /// Ask the gateway to start a sign-in: the provider URL it redirects to.
    pub fn begin(&mut self, start_url: &str) -> String {
        let r = self.get(start_url);
        assert_eq!(r.status, 302, "start: {}", r.body);
        r.header("location").expect("provider URL")
    }
}

/// Replace one query parameter of a URL.
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            if k == name {
                (k.into_owned(), value.to_string())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
