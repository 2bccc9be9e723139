//! The pages in a real browser with JavaScript off, used as a person would: fields found by
//! their labels, buttons by their text, results read off the screen. First what the browser
//! fixture itself promises, on fixed pages of a small local site; then the gateway's pages.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::browser::{Aria, Browser, Viewport};
use crate::support::{Echo, TestServer};

/// A form page whose inline script and event handlers would change what it shows and where it
/// goes, if scripts ran; and a line that depends on the colour scheme.
const FORM: &str = r#"<!doctype html>
<html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Form</title>
<style>
.dark{display:none}
@media (prefers-color-scheme: dark){.dark{display:block}.light{display:none}}
</style>
</head><body>
<p id="said">No script has run</p>
<script>document.getElementById("said").textContent = "A script ran";</script>
<form action="/done" onsubmit="this.action = '/scripted'">
<label>Name <input name="name"></label>
<label for="colour">Favourite colour</label>
<select id="colour" name="colour"><option>Red</option><option>Green</option></select>
<label><input type="checkbox" name="news" value="yes"> Send me news</label>
<label>Code <input name="code" aria-invalid="true" aria-describedby="code-hint code-error"></label>
<p id="code-hint">Six digits.</p><p id="code-error">That code has expired.</p>
<button type="submit" onclick="document.title = 'A script ran'">Continue</button>
</form>
<a href="/wide">A wide page</a>
<p class="light">Light mode</p><p class="dark">Dark mode</p>
</body></html>"#;

const DONE: &str =
    r#"<!doctype html><html><head><title>Done</title></head><body><p>Thank you</p></body></html>"#;

/// A form that says whether the screen is a touch screen (`pointer: coarse`), with a required
/// field.
const TOUCH: &str = r#"<!doctype html>
<html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Touch</title>
<style>
.touch{display:none}
@media (pointer: coarse){.touch{display:block}.mouse{display:none}}
</style>
</head><body>
<p class="touch">A touch screen</p><p class="mouse">A mouse</p>
<form action="/done">
<label>Name <input name="name" required></label><button>Continue</button>
</form>
</body></html>"#;

/// A page wider than any phone.
const WIDE: &str = r#"<!doctype html>
<html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Wide</title></head><body><div style="width:600px">Too wide for a phone</div></body></html>"#;

#[test]
fn page_scripts_do_not_run_yet_fields_buttons_and_links_work() {
    let site = Site::start(&[("/form", FORM), ("/done", DONE), ("/wide", WIDE)]);
    let browser = Browser::new(Viewport::DESKTOP);
    browser.goto(&site.url("/form"));
    assert_eq!(browser.title(), "Form");
    let text = browser.text();
    assert!(
        text.contains("No script has run") && !text.contains("A script ran"),
        "{text}"
    );

    browser.fill("Name", "Ada");
    browser.fill("Favourite colour", "Green");
    assert!(!browser.is_checked("Send me news"));
    browser.check("Send me news");
    assert!(browser.is_checked("Send me news"));
    assert_eq!(browser.field_value("Name"), "Ada");
    assert_eq!(browser.field_value("Favourite colour"), "Green");
    assert_eq!(
        browser.aria("Code"),
        Aria {
            invalid: true,
            description: "Six digits. That code has expired.".to_string()
        }
    );
    assert_eq!(
        browser.aria("Name"),
        Aria {
            invalid: false,
            description: String::new()
        }
    );

    // Neither the submit handler nor the click handler runs: the form goes where its markup says.
    browser.click("Continue");
    assert_eq!(
        browser.url(),
        site.url("/done?name=Ada&colour=Green&news=yes&code=")
    );
    assert_eq!(browser.title(), "Done");
    browser.back();
    assert_eq!(browser.url(), site.url("/form"));
    browser.click_link("A wide page");
    assert_eq!(browser.title(), "Wide");
    assert!(!browser.has_horizontal_scroll(), "1280 pixels hold 600");
}

#[test]
fn a_phone_browser_has_a_phone_viewport_and_follows_the_colour_scheme() {
    let pages = [
        ("/form", FORM),
        ("/touch", TOUCH),
        ("/done", DONE),
        ("/wide", WIDE),
    ];
    let site = Site::start(&pages);
    let browser = Browser::new(Viewport::PHONE);
    browser.goto(&site.url("/form"));
    assert!(!browser.has_horizontal_scroll());
    let shot = tempfile::tempdir().expect("tempdir");
    let png = shot.path().join("form.png");
    browser.screenshot_png(&png);
    assert_eq!(png_size(&png), (390 * 3, 844 * 3), "device pixels");

    assert!(browser.text().contains("Light mode"));
    browser.set_dark(true);
    let text = browser.text();
    assert!(
        text.contains("Dark mode") && !text.contains("Light mode"),
        "{text}"
    );
    browser.set_dark(false);
    assert!(browser.text().contains("Light mode"));

    // A phone is a touch screen to the page, and its buttons still take a press.
    browser.goto(&site.url("/touch"));
    assert!(
        browser.text().contains("A touch screen"),
        "{}",
        browser.text()
    );
    browser.click("Continue");
    assert_eq!(
        browser.title(),
        "Touch",
        "the browser holds back a form missing a field"
    );
    browser.fill("Name", "Ada");
    browser.click("Continue");
    assert_eq!(browser.title(), "Done");

    browser.goto(&site.url("/wide"));
    assert!(
        browser.has_horizontal_scroll(),
        "390 pixels cannot hold 600"
    );
}

#[test]
fn a_wrong_password_shows_an_error_and_keeps_the_identifier() {
    let s = TestServer::start("");
    s.setup_owner();
    let browser = Browser::new(Viewport::DESKTOP);
    browser.goto(&s.url("/auth/login"));
    let before = browser.text();
    browser.fill("Email or username", "owner");
    browser.fill("Password", "not the password");
    browser.click("Sign in");

    // Still the sign-in page, now with a message that was not there (whatever its wording).
    assert!(browser.title().contains("Sign in"), "{}", browser.title());
    let after = browser.text();
    let message: Vec<&str> = after
        .lines()
        .filter(|line| !before.lines().any(|was| was == *line))
        .collect();
    assert!(!message.is_empty(), "no error shown: {after}");
    assert_eq!(browser.field_value("Email or username"), "owner");
    assert_eq!(browser.field_value("Password"), "");
}

#[test]
fn signing_in_through_the_form_lands_on_the_page_asked_for() {
    let echo = Echo::start();
    let s = TestServer::with_upstream(&echo.upstream(), "authenticated");
    s.setup_owner();
    let wanted = s.url("/app/page?x=1");
    let rd: String = form_urlencoded::byte_serialize(wanted.as_bytes()).collect();
    let browser = Browser::new(Viewport::DESKTOP);
    browser.goto(&s.url(&format!("/auth/login?rd={rd}")));
    browser.fill("Email or username", "owner");
    browser.fill("Password", "owner-password-1");
    browser.click("Sign in");

    assert_eq!(browser.url(), wanted);
    // The app's answer (the echo of its request) is on the screen, sent as the owner.
    let text = browser.text();
    assert!(
        text.contains(r#""uri":"/app/page?x=1""#) && text.contains(r#""remote-user":["owner"]"#),
        "{text}"
    );
}

#[test]
fn the_login_page_needs_no_sideways_scrolling_on_a_phone() {
    let s = TestServer::start("");
    for phone in [Viewport::PHONE, Viewport::SMALL_PHONE] {
        let browser = Browser::new(phone);
        browser.goto(&s.url("/auth/login"));
        browser.fill("Email or username", "owner");
        assert!(!browser.has_horizontal_scroll(), "{phone:?}");
    }
}

/// The width and height of a PNG image (from its header).
fn png_size(path: &std::path::Path) -> (u32, u32) {
    let png = std::fs::read(path).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes"));
    (word(16), word(20))
}

/// A web server on loopback with fixed pages, for what the gateway does not serve; each
/// connection gets one answer.
struct Site {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Site {
    /// Serve `pages` (path without query, HTML) on an ephemeral port.
    fn start(pages: &[(&'static str, &'static str)]) -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let pages = pages.to_vec();
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let pages = pages.clone();
                // A connection the browser opens ahead and never uses must not hold up others.
                std::thread::spawn(move || answer(conn, &pages));
            }
        });
        Site {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn answer(mut conn: TcpStream, pages: &[(&str, &str)]) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or(target);
    let (status, body) = match pages.iter().find(|(p, _)| *p == path) {
        Some((_, html)) => ("200 OK", *html),
        None => ("404 Not Found", "<!doctype html><title>Not found</title>"),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
