//! API tokens on the account page in a real browser (Chromium, scripts on): a person makes a
//! token, sees it once with a working copy button, a script uses it against the app behind
//! the gateway, and the person revokes it on the same page, which ends it for the script.

use std::time::{Duration, Instant};

use crate::support::browser::{Browser, Viewport};
use crate::support::TestServer;

const OWNER_PASSWORD: &str = "owner-password-1";

#[test]
fn a_person_makes_a_token_copies_it_once_and_revokes_it() {
    let s = TestServer::start(
        "[ui]\ntitle = \"Example Corp\"\n[[routes]]\npath = \"/\"\nupstream = \"whoami\"\npolicy = \"authenticated\"\n",
    );
    s.setup_owner();
    let b = Browser::with_scripts(Viewport::DESKTOP);
    b.goto(&s.url("/auth/login"));
    b.fill("Email or username", "owner");
    b.fill("Password", OWNER_PASSWORD);
    b.click("Sign in");
    assert!(b.title().starts_with("Your account"), "{}", b.title());

    b.fill("Name of the new token", "backup <script>");
    b.click("Create token");
    b.wait_for_text("Copy it now");
    let token = b.field_value("The new token");
    assert!(token.starts_with("agt_") && token.len() == 47, "{token}");
    // The copy button is there (the script showed it) and says what happened.
    b.click("Copy");
    let deadline = Instant::now() + Duration::from_secs(20);
    let said = loop {
        let text = b.text();
        if text.contains("Copied.") || text.contains("Could not copy") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the copy button said nothing: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(said.contains("Copied."), "{said}");

    // A script uses it.
    let mut script = s.client();
    let bearer = format!("Bearer {token}");
    let r = script.get_with("/reports", &[("authorization", bearer.as_str())]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("owner"), "{}", r.body);

    // Back on the account page it is listed by name (escaped), never with its secret.
    b.goto(&s.url("/auth/"));
    let text = b.text();
    assert!(text.contains("backup <script>"), "{text}");
    assert!(!text.contains(&token[4..]), "the secret is shown again");
    b.click("Revoke");
    b.wait_for_text("revoked");
    assert!(!b.text().contains("backup <script>"), "{}", b.text());
    let r = script.get_with("/reports", &[("authorization", bearer.as_str())]);
    assert_eq!(r.status, 401, "{}", r.body);
}
