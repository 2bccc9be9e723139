//! A real browser for the page tests: headless Chromium driven over WebDriver by its own
//! `chromedriver`, with JavaScript off for pages, as a person without scripts would see them.
//!
//! Every [`Browser`] has its own chromedriver (on a port from [`super::free_port`], retried
//! when taken, see [`super::ports`]) and its own fresh profile, so tests running in parallel
//! share nothing.
//!
//! The helpers act like a person: they find fields by their label, buttons and links by the
//! text on them, and read the text on the screen; never CSS classes or markup structure, so the
//! tests survive a redesign. Each panics with what it looked for and the page it was on.
//!
//! Page scripts are off through Chrome's managed content setting (as a policy would set it).
//! WebDriver itself still works: chromedriver finds, types and clicks through the DevTools
//! protocol, which the setting does not govern, so `execute` serves the few checks that need a
//! page measurement (sideways scrolling). Only its taps on a touch screen wait for a page timer,
//! which never fires without scripts: a phone's touch screen is shown to the page alone, and
//! chromedriver clicks.

use std::fmt::Display;
use std::future::Future;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::log::CapturedLog;
use super::ports::{on_a_free_port, until_listening, NotStarted};

/// How long one WebDriver command (a page load included) may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a click that leads to another page may take to leave this one.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether clicking the button `arguments[0]` submits its form: a submit button, enabled, in a
/// form the browser lets through (a person who left a required field empty stays on the page).
const SUBMITS: &str = "const b = arguments[0], f = b.form; \
    return b.type === 'submit' && !b.disabled && f !== null \
        && (f.noValidate || b.formNoValidate || f.checkValidity());";

/// Whether following the link `arguments[0]` loads a page, rather than moving to a place on
/// this one.
const LOADS: &str = "const to = new URL(arguments[0].href), here = new URL(location.href); \
    const fragment = to.hash !== ''; to.hash = ''; here.hash = ''; \
    return !fragment || to.href !== here.href;";

/// The size of the browser's viewport, and whether it behaves like a phone (honours
/// `<meta name="viewport">`, reports a touch screen).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Viewport {
    /// Width in CSS pixels.
    pub width: u32,
    /// Height in CSS pixels.
    pub height: u32,
    /// Device pixels per CSS pixel (a screenshot is this many times larger).
    pub pixel_ratio: f64,
    /// A phone: `<meta name="viewport">` honoured, a touch screen.
    pub mobile: bool,
}

impl Viewport {
    /// A laptop screen.
    pub const DESKTOP: Viewport = Viewport {
        width: 1280,
        height: 800,
        pixel_ratio: 1.0,
        mobile: false,
    };
    /// A current phone (iPhone 12 to 15 size).
    pub const PHONE: Viewport = Viewport {
        width: 390,
        height: 844,
        pixel_ratio: 3.0,
        mobile: true,
    };
    /// A small Android phone.
    pub const SMALL_PHONE: Viewport = Viewport {
        width: 360,
        height: 740,
        pixel_ratio: 3.0,
        mobile: true,
    };
}

/// What assistive technology is told about a field besides its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aria {
    /// `aria-invalid` is set to anything but `false`.
    pub invalid: bool,
    /// The text of the elements its `aria-describedby` names, in order, joined by spaces.
    pub description: String,
}

/// Headless Chromium with page scripts off, behind its own chromedriver; both stop on drop.
pub struct Browser {
    /// `None` only while starting and once closed.
    client: Option<Client>,
    runtime: tokio::runtime::Runtime,
    driver: Child,
    driver_log: CapturedLog,
    _profile: tempfile::TempDir,
}

/// Why a step failed, for the panic message.
struct Failure(String);

impl From<CmdError> for Failure {
    fn from(e: CmdError) -> Failure {
        Failure(format!("WebDriver: {e}"))
    }
}

fn failure<T>(why: impl Display) -> Result<T, Failure> {
    Err(Failure(why.to_string()))
}

impl Browser {
    /// Start chromedriver and a browser session with `viewport`.
    pub fn new(viewport: Viewport) -> Browser {
        Browser::start(viewport, false)
    }

    /// A browser that runs page scripts (the passkey ceremonies need them).
    pub fn with_scripts(viewport: Viewport) -> Browser {
        Browser::start(viewport, true)
    }

    fn start(viewport: Viewport, scripts: bool) -> Browser {
        let (driver, driver_log, port) = on_a_free_port(start_driver);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let profile = tempfile::tempdir().expect("profile directory");
        let mut browser = Browser {
            client: None,
            runtime,
            driver,
            driver_log,
            _profile: profile,
        };
        let capabilities = capabilities(viewport, browser._profile.path(), scripts);
        let connect = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}/"))
            .await_within(&browser.runtime);
        match connect {
            Ok(Ok(client)) => browser.client = Some(client),
            Ok(Err(e)) => panic!(
                "chromedriver opened no browser session: {e}\n{}",
                browser.driver_log.text()
            ),
            Err(_) => panic!(
                "chromedriver opened no browser session within {COMMAND_TIMEOUT:?}\n{}",
                browser.driver_log.text()
            ),
        }
        if viewport.mobile {
            // A touch screen for the page, not for chromedriver: told of one, it clicks by
            // touch events after awaiting a page timer, which never fires with scripts off.
            browser.devtools(
                "emulate a touch screen",
                "Emulation.setTouchEmulationEnabled",
                json!({"enabled": true, "maxTouchPoints": 5}),
            );
        }
        browser
    }

    /// Open `url` and wait until it has loaded.
    pub fn goto(&self, url: &str) {
        self.run(format!("open {url}"), async move |c| {
            Ok(c.goto(url).await?)
        });
    }

    /// Type `value` into the field labelled `label` (replacing what it held); for a
    /// `<select>`, choose the option whose text is `value`.
    pub fn fill(&self, label: &str, value: &str) {
        self.run(
            format!("fill {value:?} into the field labelled {label:?}"),
            async move |c| {
                let field = field(c, label).await?;
                match field.tag_name().await?.to_ascii_lowercase().as_str() {
                    "select" => {
                        let option = format!(".//option[normalize-space(.)={}]", literal(value));
                        match field.find(Locator::XPath(&option)).await {
                            Ok(option) => Ok(option.click().await?),
                            Err(_) => failure(format!("the list has no option {value:?}")),
                        }
                    }
                    _ => {
                        let kind = field.attr("type").await?.unwrap_or_default();
                        if ["checkbox", "radio"].contains(&kind.as_str()) {
                            return failure("it is a checkbox or radio button: use `check`");
                        }
                        field.clear().await?;
                        Ok(field.send_keys(value).await?)
                    }
                }
            },
        );
    }

    /// What the field labelled `label` holds now.
    pub fn field_value(&self, label: &str) -> String {
        self.run(
            format!("read the field labelled {label:?}"),
            async move |c| {
                Ok(field(c, label)
                    .await?
                    .prop("value")
                    .await?
                    .unwrap_or_default())
            },
        )
    }

    /// Whether the checkbox or radio button labelled `label` is ticked.
    pub fn is_checked(&self, label: &str) -> bool {
        self.run(format!("see whether {label:?} is ticked"), async move |c| {
            Ok(field(c, label).await?.is_selected().await?)
        })
    }

    /// Tick the checkbox or radio button labelled `label` (left as is if already ticked).
    pub fn check(&self, label: &str) {
        self.run(format!("tick {label:?}"), async move |c| {
            let field = field(c, label).await?;
            if !field.is_selected().await? {
                field.click().await?;
            }
            if !field.is_selected().await? {
                return failure("it is still not ticked after a click");
            }
            Ok(())
        });
    }

    /// Click the button (`<button>` or `<input type=submit|button|reset>`) that reads exactly
    /// `text`, and wait for the page it leads to. When the browser refuses to submit the form
    /// (a required field is empty), it stays on the page with its own message, as for a person.
    pub fn click(&self, text: &str) {
        self.run(format!("click the button {text:?}"), async move |c| {
            let xpath = "//button | //input[@type='submit' or @type='button' or @type='reset']";
            let mut found = Vec::new();
            let mut seen = Vec::new();
            for button in c.find_all(Locator::XPath(xpath)).await? {
                if !button.is_displayed().await? {
                    continue;
                }
                let shown = match button.tag_name().await?.to_ascii_lowercase().as_str() {
                    "input" => button.attr("value").await?.unwrap_or_default(),
                    _ => button.text().await?,
                };
                let shown = squash(&shown);
                if shown == text {
                    found.push(button);
                } else {
                    seen.push(shown);
                }
            }
            match found.as_slice() {
                [button] => press(c, button, SUBMITS).await,
                [] => failure(format!("no such button; the buttons shown: {seen:?}")),
                _ => failure(format!("{} buttons read so", found.len())),
            }
        });
    }

    /// Follow the link that reads exactly `text` (several with that text must lead to the same
    /// place), and wait for the page it leads to.
    pub fn click_link(&self, text: &str) {
        self.run(format!("follow the link {text:?}"), async move |c| {
            let mut found: Vec<(Element, String)> = Vec::new();
            let mut seen = Vec::new();
            for link in c.find_all(Locator::XPath("//a[@href]")).await? {
                if !link.is_displayed().await? {
                    continue;
                }
                let shown = squash(&link.text().await?);
                if shown == text {
                    let href = link.prop("href").await?.unwrap_or_default();
                    found.push((link, href));
                } else {
                    seen.push(shown);
                }
            }
            let Some((link, href)) = found.first() else {
                return failure(format!("no such link; the links shown: {seen:?}"));
            };
            if found.iter().any(|(_, h)| h != href) {
                let hrefs: Vec<&str> = found.iter().map(|(_, h)| h.as_str()).collect();
                return failure(format!("links with that text lead to {hrefs:?}"));
            }
            press(c, link, LOADS).await
        });
    }

    /// The text on the screen (the page's visible text).
    pub fn text(&self) -> String {
        self.run("read the page", async |c| Ok(page_text(c).await?))
    }

    /// The page's title (the tab's name).
    pub fn title(&self) -> String {
        self.run("read the title", async |c| Ok(c.title().await?))
    }

    /// The address in the address bar.
    pub fn url(&self) -> String {
        self.run("read the address", async |c| {
            Ok(c.current_url().await?.to_string())
        })
    }

    /// Go back one page, as the back button does.
    pub fn back(&self) {
        self.run("go back", async |c| Ok(c.back().await?));
    }

    /// Whether the page is wider than the viewport, so a person must scroll sideways.
    pub fn has_horizontal_scroll(&self) -> bool {
        self.run("measure the page width", async |c| {
            let wider = c
                .execute(
                    "const e = document.documentElement; return e.scrollWidth > e.clientWidth;",
                    vec![],
                )
                .await?;
            match wider {
                Value::Bool(wider) => Ok(wider),
                other => failure(format!("the measurement gave {other}")),
            }
        })
    }

    /// Save what the viewport shows as a PNG file at `path`.
    pub fn screenshot_png(&self, path: &Path) {
        let png = self.run("take a screenshot", async |c| Ok(c.screenshot().await?));
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Have pages see the system in dark (or light) mode: `prefers-color-scheme`, for this
    /// and later pages.
    pub fn set_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.devtools(
            format!("switch to {scheme} mode"),
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        );
    }

    /// Give the browser a platform authenticator that holds passkeys and verifies the person
    /// (Chromium's virtual authenticator, through DevTools).
    pub fn add_passkey_authenticator(&self) {
        self.devtools("turn on WebAuthn emulation", "WebAuthn.enable", json!({}));
        self.devtools(
            "add a virtual authenticator",
            "WebAuthn.addVirtualAuthenticator",
            json!({"options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "automaticPresenceSimulation": true,
            }}),
        );
    }

    /// Wait (up to 20 s) until the page's text contains `text`: for what a page's script
    /// changes after a click, a navigation included (a page being replaced reads as not yet).
    pub fn wait_for_text(&self, text: &str) {
        let wanted = text.to_string();
        self.run(format!("wait for {text:?} to appear"), async move |c| {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                if page_text(c).await.is_ok_and(|t| t.contains(&wanted)) {
                    return Ok(());
                }
                if std::time::Instant::now() > deadline {
                    return failure("it did not appear within 20 s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    /// What assistive technology says about the field labelled `label`: whether it is marked
    /// invalid and the text it is described by.
    pub fn aria(&self, label: &str) -> Aria {
        self.run(
            format!("read the accessibility of {label:?}"),
            async move |c| {
                let field = field(c, label).await?;
                let invalid = field
                    .attr("aria-invalid")
                    .await?
                    .is_some_and(|v| !v.trim().is_empty() && v.trim() != "false");
                let ids = field.attr("aria-describedby").await?.unwrap_or_default();
                let mut texts = Vec::new();
                for id in ids.split_whitespace() {
                    let xpath = format!("//*[@id={}]", literal(id));
                    let Ok(described) = c.find(Locator::XPath(&xpath)).await else {
                        return failure(format!("aria-describedby names {id:?}, not on the page"));
                    };
                    // Hidden text counts too, as it does for a screen reader.
                    let text = described.prop("textContent").await?.unwrap_or_default();
                    texts.push(squash(&text));
                }
                Ok(Aria {
                    invalid,
                    description: texts.join(" "),
                })
            },
        )
    }

    /// Send the page a Chrome DevTools protocol `command`.
    fn devtools(&self, what: impl Display, command: &str, params: Value) {
        self.run(what, async move |c| {
            c.issue_cmd(DevTools::new(command, params)).await?;
            Ok(())
        });
    }

    /// Run one step against the session; a failure or a step that hangs panics with what the
    /// step was and where the browser is.
    fn run<T>(
        &self,
        what: impl Display,
        step: impl AsyncFnOnce(&Client) -> Result<T, Failure>,
    ) -> T {
        let client = self.client.as_ref().expect("a browser session");
        match step(client).await_within(&self.runtime) {
            Ok(Ok(done)) => done,
            Ok(Err(Failure(why))) => panic!("could not {what}: {why}\n{}", self.whereabouts()),
            Err(_) => panic!(
                "could not {what}: no answer within {COMMAND_TIMEOUT:?}\n{}",
                self.whereabouts()
            ),
        }
    }

    /// The current address and the start of the page's text, for a panic message; never panics.
    fn whereabouts(&self) -> String {
        let Some(client) = self.client.as_ref() else {
            return String::new();
        };
        let found = async {
            let url = client.current_url().await.map(|u| u.to_string());
            let text = page_text(client).await;
            (url, text)
        };
        match found.await_within(&self.runtime) {
            Ok((Ok(url), Ok(text))) => {
                let text: String = text.chars().take(600).collect();
                format!("on {url}, which reads:\n{text}")
            }
            _ => format!("(the browser does not answer)\n{}", self.driver_log.text()),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit Chromium; killing chromedriver alone
        // would leave Chromium running.
        if let Some(client) = self.client.take() {
            let _ = client.close().await_within(&self.runtime);
        }
        // A browser that did not quit (a session that no longer answered) is stopped here.
        for pid in children(self.driver.id()) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A future run on the fixture's runtime, given up after [`COMMAND_TIMEOUT`].
trait AwaitWithin: Future + Sized {
    fn await_within(
        self,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<Self::Output, tokio::time::error::Elapsed> {
        // The timer must be made inside the runtime.
        runtime.block_on(async { tokio::time::timeout(COMMAND_TIMEOUT, self).await })
    }
}

impl<F: Future> AwaitWithin for F {}

/// Start chromedriver on `port` and wait until it says it is ready for sessions.
fn start_driver(port: u16) -> Result<(Child, CapturedLog, u16), NotStarted> {
    let mut driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("chromedriver is needed (run scripts/deps.sh): {e}"));
    let log = CapturedLog::capture(driver.stderr.take().expect("stderr"));
    let status: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let ready = || {
        status
            .get(format!("http://127.0.0.1:{port}/status"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
            .is_some_and(|s| s["value"]["ready"] == json!(true))
    };
    match until_listening(&mut driver, port, ready, Duration::from_secs(15)) {
        Ok(()) => Ok((driver, log, port)),
        Err(Some(status)) => Err(NotStarted::exited(format!(
            "chromedriver exited ({status}): {}",
            log.finish(Duration::from_secs(5))
        ))),
        Err(None) => panic!("chromedriver did not become ready: {}", log.text()),
    }
}

/// The session's capabilities: headless Chromium in `viewport`, page scripts off, a fresh
/// profile in `profile`, no network beyond loopback.
fn capabilities(
    viewport: Viewport,
    profile: &Path,
    scripts: bool,
) -> serde_json::Map<String, Value> {
    let options = json!({
        "args": [
            "--headless=new",
            // CI runs as root, where Chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            format!("--user-data-dir={}", profile.display()),
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-component-update",
            "--disable-features=Translate,OptimizationHints,MediaRouter",
            "--lang=en-US",
            "--no-proxy-server",
            // No name resolves, loopback excepted (the rules cover address literals too).
            concat!(
                "--host-resolver-rules=MAP * ~NOTFOUND, ",
                "EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]"
            ),
        ],
        "prefs": {
            "profile.managed_default_content_settings.javascript": if scripts { 1 } else { 2 },
            "credentials_enable_service": false,
            "profile.password_manager_enabled": false,
            "profile.password_manager_leak_detection": false,
        },
        // A viewport of exactly this size; as a phone it honours <meta name="viewport">.
        "mobileEmulation": {
            "deviceMetrics": {
                "width": viewport.width,
                "height": viewport.height,
                "pixelRatio": viewport.pixel_ratio,
                "mobile": viewport.mobile,
                // Touch comes through DevTools once the session is open (see `new`).
                "touch": false,
            },
        },
    });
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": options,
        "timeouts": {"implicit": 0, "pageLoad": 20_000, "script": 10_000},
    });
    match capabilities {
        Value::Object(map) => map,
        _ => unreachable!("an object"),
    }
}

/// Click `element` and, if `leaves` (a script given the element) says the click loads another
/// page, wait until the browser has left this one: chromedriver can answer before a form
/// submission, which the browser queues, has begun. Its next command then waits for the load.
async fn press(client: &Client, element: &Element, leaves: &str) -> Result<(), Failure> {
    let argument = serde_json::to_value(element).map_err(|e| Failure(e.to_string()))?;
    let leaves = client.execute(leaves, vec![argument]).await? == json!(true);
    let page = client.find(Locator::Css("html")).await?;
    element.click().await?;
    if !leaves {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + LEAVE_TIMEOUT;
    let mut last_error = None;
    loop {
        match page.tag_name().await {
            Err(e) if e.is_stale_element_reference() || e.is_no_such_element() => return Ok(()),
            // Asked while the new page was replacing it: ask again.
            Err(e) => last_error = Some(e),
            Ok(_) => {}
        }
        if tokio::time::Instant::now() > deadline {
            let why = last_error.map(|e| format!(" ({e})")).unwrap_or_default();
            return failure(format!(
                "still on the same page after {LEAVE_TIMEOUT:?}{why}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The visible text of the page.
async fn page_text(client: &Client) -> Result<String, CmdError> {
    client.find(Locator::Css("body")).await?.text().await
}

/// The field (`<input>`, `<textarea>`, `<select>`) whose shown `<label>` reads `label`: the
/// label whose text is exactly `label`, or else the only one containing it. The label wraps
/// the field or names it with `for`.
async fn field(client: &Client, label: &str) -> Result<Element, Failure> {
    let mut exact = Vec::new();
    let mut containing = Vec::new();
    let mut seen = Vec::new();
    for element in client.find_all(Locator::XPath("//label")).await? {
        let shown = squash(&element.text().await?);
        if shown.is_empty() {
            continue;
        }
        if shown == label {
            exact.push(element);
        } else if shown.contains(label) {
            containing.push(element);
        } else {
            seen.push(shown);
        }
    }
    let found = match (exact.len(), containing.len()) {
        (1, _) => exact.remove(0),
        (0, 1) => containing.remove(0),
        (0, 0) => return failure(format!("no such label; the labels shown: {seen:?}")),
        (0, n) | (n, _) => return failure(format!("{n} labels read so")),
    };
    let target = match found.attr("for").await? {
        Some(id) if !id.is_empty() => {
            let xpath = format!(
                "//*[@id={}][self::input or self::select or self::textarea]",
                literal(&id)
            );
            client.find(Locator::XPath(&xpath)).await.ok()
        }
        _ => found
            .find(Locator::XPath(
                ".//input[not(@type='hidden')] | .//select | .//textarea",
            ))
            .await
            .ok(),
    };
    target.map_or_else(|| failure("the label belongs to no field"), Ok)
}

/// An XPath string literal for `s`, whatever quotes it holds.
fn literal(s: &str) -> String {
    if !s.contains('"') {
        format!("\"{s}\"")
    } else if !s.contains('\'') {
        format!("'{s}'")
    } else {
        let parts: Vec<String> = s.split('"').map(|p| format!("\"{p}\"")).collect();
        format!("concat({})", parts.join(", '\"', "))
    }
}

/// `text` with its runs of whitespace made single spaces, trimmed.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The process ids of `pid`'s children (from Linux's `/proc`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A Chrome DevTools protocol command sent through chromedriver
/// (`POST /session/{id}/goog/cdp/execute`).
#[derive(Debug)]
struct DevTools {
    body: Value,
}

impl DevTools {
    fn new(command: &str, params: Value) -> DevTools {
        DevTools {
            body: json!({"cmd": command, "params": params}),
        }
    }
}

impl WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}
