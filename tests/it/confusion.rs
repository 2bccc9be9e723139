//! Path and host confusion against an app server that does not normalise: Express routes on
//! the raw path, case-insensitively, without decoding it. Whatever spelling a client uses, the
//! request either is refused or reaches the handler of the path the gateway decided on.

use serde_json::Value;

use crate::support::express::Express;
use crate::support::{raw_request, TestServer};

/// The gateway in front of the app; `raw` adds a public `/raw` route with `raw_path = true`.
fn gateway(app: &Express, raw: bool) -> TestServer {
    let up = app.upstream();
    let raw_route = if raw {
        format!("[[routes]]\npath = \"/raw\"\nupstream = \"{up}\"\npolicy = \"public\"\nraw_path = true\n")
    } else {
        String::new()
    };
    TestServer::start(&format!(
        r#"
[[routes]]
path = "/admin"
upstream = "{up}"
policy = "deny"

[[routes]]
path = "/owner"
upstream = "{up}"
policy = "authenticated"
groups = ["owner"]

[[routes]]
path = "/pub"
upstream = "{up}"
policy = "public"

{raw_route}
[[routes]]
path = "/"
upstream = "{up}"
policy = "authenticated"
"#
    ))
}

/// Spellings of protected paths that look public, of public paths that look protected, and
/// of plain ones: dot segments in every encoding, `;` parameters, backslashes, encoded
/// separators and letters, double encoding, fragments and letter case.
const CORPUS: &[&str] = &[
    "/admin",
    "/admin/",
    "/admin/x",
    "/ADMIN",
    "/Admin/x",
    "//admin",
    "/./admin",
    "/%61dmin",
    "/%41DMIN",
    "/%2561dmin",
    "/admin;x=1",
    "/admin%3Bx",
    "/admin#x",
    "/admin/../pub",
    "/admin/..;/pub",
    "/admin/%2e%2e/pub",
    "/admin/%2E%2E/pub",
    "/admin/.%2e/pub",
    "/admin%2f..%2fpub",
    "/admin%2F..%2Fpub",
    "/admin\\..\\pub",
    "/admin%5c..%5cpub",
    "/admin/%252e%252e/pub",
    "/admin/x#/../../pub",
    "/owner/%2e%2e/pub",
    "/owner/..;/pub",
    "/owner",
    "/OWNER",
    "/%6fwner",
    "/pub/../admin",
    "/pub/..;/admin",
    "/pub/%2e%2e/admin",
    "/pub%2f..%2fadmin",
    "/pub\\..\\admin",
    "/pub/%252e%252e/admin",
    "/pub/.%2e/admin",
    "/pub/..%5cadmin",
    "/pub;/../admin",
    "/pub#/../admin",
    "/pub/../owner",
    "/pub/%2e%2e/owner",
    "/pub",
    "/pub/",
    "/pub/x?y=../../admin",
    "/PUB",
    "/pUb/x",
    "/%70ub",
    "/p%75b/../admin",
    "/other",
    "/other/../admin",
    "/caf%C3%A9",
];

/// Send a raw GET; `(status, Some(express answer))` when the request reached the app.
fn fetch(port: u16, path: &str, cookie: Option<&str>) -> (u16, Option<Value>) {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let resp = raw_request(
        port,
        format!(
            "GET {path} HTTP/1.1\r\nHost: app.example.com\r\n{cookie}Connection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let status: u16 = resp
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer to {path:?}: {resp:?}"));
    assert!(status < 500, "{path:?}: {resp}");
    let from_app = resp
        .to_ascii_lowercase()
        .contains("\r\nx-upstream: express\r\n");
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    (
        status,
        from_app.then(|| serde_json::from_str(body).unwrap_or(Value::Null)),
    )
}

#[test]
fn an_app_that_does_not_normalise_only_ever_serves_what_was_decided() {
    let app = Express::start();
    let s = gateway(&app, false);
    let owner = s.setup_owner();
    let user = s.register("user@example.com", "user password 1");
    let clients: [(&str, Option<String>, &[&str]); 3] = [
        ("anonymous", None, &["pub", "raw"]),
        ("user", user.cookie.clone(), &["pub", "raw", "other"]),
        (
            "owner",
            owner.cookie.clone(),
            &["pub", "raw", "other", "owner"],
        ),
    ];
    for (who, cookie, allowed) in &clients {
        for path in CORPUS {
            let (status, answer) = fetch(s.port, path, cookie.as_deref());
            let Some(answer) = answer else {
                assert!((400..500).contains(&status), "{who} {path}: {status}");
                continue;
            };
            let handler = answer["handler"].as_str().unwrap_or("?");
            let seen = answer["path"].as_str().unwrap_or("?");
            assert!(
                allowed.contains(&handler),
                "{who}: {path} reached the {handler} handler as {seen}"
            );
        }
    }
}

#[test]
fn the_app_receives_the_path_the_decision_was_made_on() {
    let app = Express::start();
    let s = gateway(&app, false);
    let owner = s.setup_owner();
    let cookie = owner.cookie.clone();
    // raw sent, what Express must see as its original URL
    let cases = [
        ("/admin/../pub", "/pub"),
        ("/admin/..;/pub", "/pub"),
        ("/admin/%2e%2e/pub", "/pub"),
        ("/admin%2f..%2fpub", "/pub"),
        ("/admin\\..\\pub", "/pub"),
        ("/owner/%2e%2e/pub", "/pub"),
        ("/%70ub/x", "/pub/x"),
        ("/pub/a/", "/pub/a/"),
        ("/pub//a/./b/", "/pub/a/b/"),
        ("/pub/x?y=%2e%2e/..", "/pub/x?y=%2e%2e/.."),
        ("/other/caf%c3%a9", "/other/caf%C3%A9"),
        ("/pub/plain", "/pub/plain"),
    ];
    for (raw, want) in cases {
        let (status, answer) = fetch(s.port, raw, cookie.as_deref());
        let answer = answer.unwrap_or_else(|| panic!("{raw}: {status}, not from the app"));
        assert_eq!(answer["originalUrl"], want, "{raw}");
    }
}

#[test]
fn a_raw_path_route_forwards_as_sent_and_still_decides_on_the_normalised_path() {
    let app = Express::start();
    let s = gateway(&app, true);
    let (_, answer) = fetch(s.port, "/raw/a%2Fb;v=1", None);
    let answer = answer.expect("reached the app");
    assert_eq!(answer["originalUrl"], "/raw/a%2Fb;v=1");
    assert_eq!(answer["handler"], "raw");
    for confused in ["/raw/../admin", "/raw/%2e%2e/admin", "/raw/..;/admin"] {
        let (status, answer) = fetch(s.port, confused, None);
        assert!(answer.is_none() && status == 403, "{confused}: {status}");
    }
}

#[test]
fn hosts_that_parsers_read_differently_are_refused() {
    let app = Express::start();
    let up = app.upstream();
    let s = TestServer::start(&format!(
        r#"
[[routes]]
host = "secure.example.com"
path = "/"
upstream = "{up}"
policy = "deny"

[[routes]]
path = "/"
upstream = "{up}"
policy = "public"
"#
    ));
    let status_for = |host: &str| {
        let resp = raw_request(
            s.port,
            format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        resp.get(9..12).unwrap_or("").to_string()
    };
    for host in [
        "secure.example.com:abc",
        "secure.example.com:80:80",
        "secure.example.com:8a",
        "secure.example.com:",
        "user@secure.example.com",
        "secure%2eexample.com",
    ] {
        assert_eq!(status_for(host), "400", "{host}");
    }
    for host in [
        "secure.example.com",
        "SECURE.example.com:8080",
        "secure.example.com.",
    ] {
        assert_eq!(status_for(host), "403", "{host}");
    }
    // Two Host headers name two hosts.
    let resp = raw_request(
        s.port,
        b"GET /x HTTP/1.1\r\nHost: other.example.com\r\nHost: secure.example.com\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    // The app is told the host the decision was made for, not a forwarded one.
    let resp = raw_request(
        s.port,
        b"GET /x HTTP/1.1\r\nHost: other.example.com\r\nX-Forwarded-Host: secure.example.com\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let body: Value =
        serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap_or("")).expect("json");
    assert_eq!(body["headers"]["x-forwarded-host"], "other.example.com");
    assert_eq!(body["headers"]["host"], "other.example.com");
}
