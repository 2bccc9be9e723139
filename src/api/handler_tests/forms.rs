//! What a browser's form post gets back: 303 to where it was going (with the session cookie)
//! when the handler succeeded, the same page again with the error and the handler's status
//! when it did not, and a cross-site post refused before any handler runs.

use http::Method;
use serde_json::json;

use super::{request, submit, with_cookie, with_header, Harness, OWNER_PASSWORD, PASSWORD};

/// Expected: a redirect to `location`, setting a session or not; or a page with `status`
/// that shows `message`.
#[derive(Debug)]
enum Outcome {
    Redirect {
        location: &'static str,
        signs_in: bool,
    },
    Page {
        status: u16,
        message: &'static str,
    },
}

/// A form's fields, in order.
type Fields = Vec<(&'static str, &'static str)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_outcomes() {
    use Outcome::{Page, Redirect};
    let app = "http://127.0.0.1:8080";
    // (registration mode, path, fields) → outcome; the owner exists, a member
    // (m@example.com) too unless registration is closed. A redirect target must be absolute and allowed; anything else goes
    // to the account page.
    let cases: Vec<(&str, &str, Fields, Outcome)> = vec![
        (
            "open",
            "/login",
            vec![("identifier", "m@example.com"), ("password", PASSWORD)],
            Redirect {
                location: "/",
                signs_in: true,
            },
        ),
        (
            "open",
            "/login",
            vec![
                ("identifier", "m@example.com"),
                ("password", PASSWORD),
                ("rd", "http://127.0.0.1:8080/app/page?x=1"),
            ],
            Redirect {
                location: "/app/page?x=1",
                signs_in: true,
            },
        ),
        (
            "open",
            "/login",
            vec![
                ("identifier", "m@example.com"),
                ("password", PASSWORD),
                ("rd", "/app/page"),
            ],
            Redirect {
                location: "/",
                signs_in: true,
            },
        ),
        (
            "open",
            "/login",
            vec![
                ("identifier", "m@example.com"),
                ("password", PASSWORD),
                ("rd", "https://evil.example/"),
            ],
            Redirect {
                location: "/",
                signs_in: true,
            },
        ),
        (
            "open",
            "/login",
            vec![
                ("identifier", "m@example.com"),
                ("password", "wrong password"),
            ],
            Page {
                status: 401,
                message: "is not right",
            },
        ),
        (
            "open",
            "/register",
            vec![("email", "new@example.com"), ("password", PASSWORD)],
            Redirect {
                location: "/",
                signs_in: true,
            },
        ),
        (
            "open",
            "/register",
            vec![("email", "new@example.com"), ("password", "short")],
            Page {
                status: 400,
                message: "Must be at least 8 characters",
            },
        ),
        (
            "closed",
            "/register",
            vec![("email", "new@example.com"), ("password", PASSWORD)],
            Page {
                status: 403,
                message: "Registration",
            },
        ),
        (
            "approval",
            "/register",
            vec![("email", "new@example.com"), ("password", PASSWORD)],
            Page {
                status: 201,
                message: "waiting for an administrator's approval",
            },
        ),
        (
            "open",
            "/setup",
            vec![("email", "second@example.com"), ("password", PASSWORD)],
            Page {
                status: 409,
                message: "set up",
            },
        ),
    ];
    for (mode, path, fields, want) in cases {
        let h = Harness::new(&format!("[auth]\nregistration = \"{mode}\"\n")).await;
        let owner = h.owner().await;
        if mode != "closed" {
            h.member(&owner, "m@example.com", "user").await;
        }
        let r = submit(&h, path, &fields, None).await;
        let case = format!("{mode} {path} {fields:?}: {} {}", r.status, r.body);
        match want {
            Redirect { location, signs_in } => {
                assert_eq!(r.status, 303, "{case}");
                let expected = if location.starts_with('/') && location != "/" {
                    format!("{app}{location}")
                } else {
                    format!("{app}/auth/")
                };
                assert_eq!(r.header("location"), Some(expected.as_str()), "{case}");
                assert_eq!(r.session_cookie().is_some(), signs_in, "{case}");
            }
            Page { status, message } => {
                assert_eq!(r.status, status, "{case}");
                assert!(
                    r.header("content-type")
                        .is_some_and(|t| t.starts_with("text/html")),
                    "{case}"
                );
                assert!(
                    r.body.to_lowercase().contains(&message.to_lowercase()),
                    "{case}"
                );
                assert!(r.session_cookie().is_none(), "{case}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_form_keeps_what_was_typed_but_never_the_password() {
    let h = Harness::new("").await;
    h.owner().await;
    let r = submit(
        &h,
        "/register",
        &[
            ("email", "typed@example.com"),
            ("username", "typed_name"),
            ("password", "short"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("typed@example.com") && r.body.contains("typed_name"));
    assert!(!r.body.contains("value=\"short\""), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_form_post_is_refused_before_the_handler() {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    let mut req = with_header(
        request(Method::POST, "/logout-all"),
        "content-type",
        "application/x-www-form-urlencoded",
    );
    req = with_header(req, "sec-fetch-site", "cross-site");
    let r = h.send(with_cookie(req, Some(&owner))).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        h.get("/me", Some(&owner)).await.status,
        200,
        "still signed in"
    );
    // Logging out from the page itself works, and ends the session.
    let r = submit(&h, "/logout", &[], Some(&owner)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(h.get("/me", Some(&owner)).await.status, 401);
    let r = h.login("owner", OWNER_PASSWORD).await;
    assert_eq!(r.status, 200);
    assert!(json!(r.json()["data"]["user"]["role"]) == json!("owner"));
}
