//! The HTML pages and form posts a browser uses, and redirect safety end to end.

use crate::support::TestServer;

fn csp_ok(r: &crate::support::Reply) {
    let csp = r.header("content-security-policy").expect("csp");
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    // Nothing inline, nothing from elsewhere: every address a page names is the gateway's
    // own, and its stylesheet, icon and logo are under the prefix.
    for inline in ["<script", "<style", " style=", "@import", "url("] {
        assert!(!r.body.contains(inline), "{inline} in a page");
    }
    for attr in ["href=\"", "src=\""] {
        for value in r.body.split(attr).skip(1) {
            assert!(value.starts_with("/auth/"), "{attr}{value}");
        }
    }
    for link in r.body.split("<link ").skip(1) {
        assert!(link.contains("href=\"/auth/assets/"), "{link}");
    }
}

#[test]
fn setup_register_and_login_pages_work_without_javascript() {
    let s = TestServer::start(
        "[[routes]]\npath = \"/\"\nupstream = \"whoami\"\npolicy = \"authenticated\"\n",
    );
    let mut browser = s.client();
    let r = browser.get_with("/auth/setup", &[("accept", "text/html")]);
    assert_eq!(r.status, 200);
    csp_ok(&r);
    assert!(r.body.contains("name=\"email\"") && r.body.contains("action=\"/auth/setup\""));
    let r = browser.send_form(
        "/auth/setup",
        &[
            ("email", "owner@example.com"),
            ("password", "owner-password-1"),
            ("username", "owner"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location").as_deref(),
        Some(s.url("/auth/").as_str())
    );
    assert!(browser.cookie.is_some());
    let account = browser.get_with("/auth/", &[("accept", "text/html")]);
    assert_eq!(account.status, 200);
    csp_ok(&account);
    assert!(
        account.body.contains("owner@example.com")
            && account.body.contains("action=\"/auth/logout\"")
    );
    assert!(account.body.contains("This device"));

    // Logout by form goes to the login page; the account page then redirects to login.
    let r = browser.send_form("/auth/logout", &[]);
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location").as_deref(),
        Some(s.url("/auth/login?done=signed-out").as_str())
    );
    assert!(browser.cookie.is_none());
    assert_eq!(
        browser
            .get_with("/auth/", &[("accept", "text/html")])
            .status,
        302
    );

    // Register page and form.
    let r = browser.get_with("/auth/register", &[("accept", "text/html")]);
    assert!(r.body.contains("action=\"/auth/register\""));
    let r = browser.send_form(
        "/auth/register",
        &[("email", "new@example.com"), ("password", "pw")],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .contains("id=\"f-password-error\">Must be at least 8 characters."),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("value=\"new@example.com\""),
        "values are kept"
    );
    let r = browser.send_form(
        "/auth/register",
        &[
            ("email", "new@example.com"),
            ("password", "new user password"),
        ],
    );
    assert_eq!(r.status, 303);
}

#[test]
fn form_login_redirects_only_to_safe_places() {
    let s = TestServer::start_full(
        "public_url = \"http://auth.example.com\"",
        "[auth]\nallowed_redirect_hosts = [\"partner.org\"]\n[[routes]]\npath = \"/\"\nupstream = \"whoami\"\npolicy = \"authenticated\"\n",
    );
    s.setup_owner();
    let account = "http://auth.example.com/auth/";
    let cases = [
        (
            "http://auth.example.com/back?x=1",
            "http://auth.example.com/back?x=1",
        ),
        ("https://partner.org/welcome", "https://partner.org/welcome"),
        ("https://evil.com/", account),
        ("//evil.com", account),
        ("/\\evil.com", account),
        ("https:evil.com", account),
        ("http://auth.example.com@evil.com/", account),
        ("http://auth.example.com.evil.com/", account),
        ("javascript:alert(1)", account),
        ("", account),
    ];
    for (rd, want) in cases {
        let mut b = s.client();
        let r = b.send_form(
            "/auth/login",
            &[
                ("identifier", "owner"),
                ("password", "owner-password-1"),
                ("rd", rd),
            ],
        );
        assert_eq!(r.status, 303, "{rd}: {}", r.body);
        assert_eq!(r.header("location").as_deref(), Some(want), "{rd}");
        assert!(b.cookie.is_some());
    }
    // The rd may also come in the query, as the login redirect puts it there.
    let mut b = s.client();
    let r = b.send_form(
        "/auth/login?rd=https%3A%2F%2Fpartner.org%2Fq",
        &[("identifier", "owner"), ("password", "owner-password-1")],
    );
    assert_eq!(
        r.header("location").as_deref(),
        Some("https://partner.org/q")
    );
    // GET logout with rd: allowed target, or the login page.
    let r = b.get("/auth/logout?rd=https%3A%2F%2Fpartner.org%2Fbye");
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("https://partner.org/bye".to_string()))
    );
    let r = b.get("/auth/logout?rd=https%3A%2F%2Fevil.com%2F");
    assert_eq!(
        r.header("location").as_deref(),
        Some("http://auth.example.com/auth/login?done=signed-out")
    );
}

#[test]
fn failed_form_login_shows_the_page_again_with_the_error_escaped() {
    let s = TestServer::start("");
    s.setup_owner();
    let mut b = s.client();
    let r = b.send_form(
        "/auth/login",
        &[
            ("identifier", "\"><script>alert(1)</script>"),
            ("password", "wrong password"),
            ("rd", "\"><img src=x>"),
        ],
    );
    assert_eq!(r.status, 401);
    assert!(r.body.contains("password is not right"), "{}", r.body);
    assert!(
        !r.body.contains("<script>alert") && !r.body.contains("<img src=x>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("&quot;&gt;&lt;script&gt;"), "{}", r.body);
    assert!(b.cookie.is_none());
}

#[test]
fn login_page_hides_nothing_behind_javascript() {
    let s = TestServer::start("");
    let mut b = s.client();
    let r = b.get_with(
        "/auth/login?rd=http%3A%2F%2F127.0.0.1%2Fx",
        &[("accept", "text/html")],
    );
    assert_eq!(r.status, 200);
    csp_ok(&r);
    assert!(r
        .body
        .contains("<form method=\"post\" action=\"/auth/login\">"));
    assert!(
        r.body.contains("name=\"rd\" value=\"http://127.0.0.1/x\""),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("/auth/setup"),
        "no account yet: the page points at setup"
    );
    assert!(
        r.body.contains("<label for=\"f-identifier\">")
            && r.body.contains("autocomplete=\"current-password\"")
    );
}
