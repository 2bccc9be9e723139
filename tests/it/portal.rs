//! The portal in a real browser (Chromium, JavaScript off), used as a person would: fields by
//! their labels, buttons and links by their text, results read off the screen, at desktop and
//! phone widths. Setup, the account page, signing out, every registration mode, a forgotten
//! password, and an administrator approving and inviting.

use crate::support::browser::{Browser, Viewport};
use crate::support::smtp::{link_in, SmtpSink};
use crate::support::TestServer;

const OWNER_PASSWORD: &str = "owner-password-1";

/// A page a person can use on this screen: no sideways scrolling, a title naming the site.
fn fits(b: &Browser, site: &str) {
    assert!(
        !b.has_horizontal_scroll(),
        "sideways scrolling on {}",
        b.url()
    );
    assert!(b.title().ends_with(site), "{}: {}", b.url(), b.title());
}

fn sign_in(b: &Browser, s: &TestServer, who: &str, password: &str) {
    b.goto(&s.url("/auth/login"));
    b.fill("Email or username", who);
    b.fill("Password", password);
    b.click("Sign in");
}

#[test]
fn setup_then_the_account_page_on_a_phone_and_a_desktop() {
    let s = TestServer::start(
        "[ui]\ntitle = \"Example Corp\"\n[[routes]]\npath = \"/\"\nupstream = \"whoami\"\npolicy = \"authenticated\"\n",
    );
    for (viewport, first) in [(Viewport::PHONE, true), (Viewport::DESKTOP, false)] {
        let b = Browser::new(viewport);
        if first {
            // The login page of a fresh site points to setup.
            b.goto(&s.url("/auth/login"));
            fits(&b, "Example Corp");
            b.click_link("No account exists yet: set up this site");
            fits(&b, "Example Corp");
            b.fill("Email", "owner@example.com");
            b.fill("Username", "owner");
            b.fill("Password", "short");
            b.click("Create owner account");
            let a = b.aria("Password");
            assert!(a.invalid, "{a:?}");
            assert!(a.description.contains("at least 8 characters"), "{a:?}");
            assert_eq!(b.field_value("Email"), "owner@example.com");
            b.fill("Password", OWNER_PASSWORD);
            b.click("Create owner account");
        } else {
            sign_in(&b, &s, "owner", OWNER_PASSWORD);
        }
        assert!(b.title().starts_with("Your account"), "{}", b.title());
        fits(&b, "Example Corp");
        let text = b.text();
        assert!(
            text.contains("Signed in as owner") && text.contains("This device"),
            "{text}"
        );
        assert!(
            text.contains("HeadlessChrome on Linux") || text.contains("Chrome on Linux"),
            "{text}"
        );
    }
}

#[test]
fn change_password_in_place_end_another_session_and_sign_out_for_good() {
    let s = TestServer::start(
        "[[routes]]\npath = \"/\"\nupstream = \"whoami\"\npolicy = \"authenticated\"\n",
    );
    // Only the two browsers below are signed in.
    let mut api = s.setup_owner();
    assert_eq!(api.send_form("/auth/logout", &[]).status, 303);
    let laptop = Browser::new(Viewport::DESKTOP);
    let phone = Browser::new(Viewport::PHONE);
    sign_in(&laptop, &s, "owner", OWNER_PASSWORD);
    sign_in(&phone, &s, "owner", OWNER_PASSWORD);
    fits(&phone, "authgate");

    // A wrong current password: the account page again, the problem at the field.
    laptop.fill("Current password", "not my password");
    laptop.fill("New password", "a brand new password");
    laptop.click("Change password");
    let a = laptop.aria("Current password");
    assert!(
        a.invalid && a.description.contains("not your current password"),
        "{a:?}"
    );
    assert!(laptop.title().starts_with("Your account"));
    // The other device is still signed in: nothing changed.
    phone.goto(&s.url("/auth/"));
    assert!(phone.title().starts_with("Your account"));

    // End the phone's session from the laptop (the laptop itself is first, then the phone).
    laptop.goto(&s.url("/auth/"));
    laptop.click("End session");
    assert!(
        laptop.text().contains("That session has ended."),
        "{}",
        laptop.text()
    );
    phone.goto(&s.url("/auth/"));
    assert!(phone.title().starts_with("Sign in"), "{}", phone.title());

    // Now the password: success is said on the page.
    laptop.fill("Current password", OWNER_PASSWORD);
    laptop.fill("New password", "a brand new password");
    laptop.click("Change password");
    assert!(
        laptop.text().contains("Your password is changed."),
        "{}",
        laptop.text()
    );

    // The app shows who is signed in; after signing out, Back shows nobody.
    laptop.goto(&s.url("/app/page"));
    assert!(
        laptop.text().contains("remote-user: owner"),
        "{}",
        laptop.text()
    );
    laptop.goto(&s.url("/auth/"));
    laptop.click("Sign out");
    assert!(
        laptop.text().contains("You have signed out."),
        "{}",
        laptop.text()
    );
    laptop.back();
    laptop.back();
    assert!(
        !laptop.text().contains("remote-user: owner"),
        "{}",
        laptop.text()
    );
    assert!(laptop.title().starts_with("Sign in"), "{}", laptop.title());
}

#[test]
fn registering_in_each_mode_says_what_happens_next() {
    let smtp = SmtpSink::start();
    // (registration mode and extra config) → what the person sees after "Create account"
    let cases = [
        ("open", "", "Your account"),
        ("approval", "", "waiting for an administrator's approval"),
        (
            "open",
            "require_email_verification = true\n",
            "We sent a link to new@example.com",
        ),
    ];
    for (mode, extra, shows) in cases {
        let s = TestServer::start(&format!(
            "[auth]\nregistration = \"{mode}\"\n{extra}{}",
            smtp.config()
        ));
        s.setup_owner();
        let b = Browser::new(Viewport::PHONE);
        b.goto(&s.url("/auth/login"));
        b.click_link("Create an account");
        fits(&b, "authgate");
        b.fill("Email", "new@example.com");
        b.fill("Password", "new person password");
        b.click("Create account");
        assert!(
            b.text().contains(shows) || b.title().contains(shows),
            "{mode} {extra}: {}",
            b.text()
        );
        fits(&b, "authgate");
        if !extra.is_empty() {
            // The mail that page speaks of arrived, and its link confirms the address.
            let (link, _) = link_in(&smtp.wait_for("new@example.com", 1), "/auth/verify-email");
            b.goto(&link);
            b.click("Confirm my address");
            assert!(
                b.text().contains("Your email address is confirmed"),
                "{}",
                b.text()
            );
        }
    }
    for (mode, says) in [
        ("invite", "You need an invitation"),
        ("closed", "does not take new registrations"),
    ] {
        let s = TestServer::start(&format!("[auth]\nregistration = \"{mode}\"\n"));
        s.setup_owner();
        let b = Browser::new(Viewport::DESKTOP);
        b.goto(&s.url("/auth/register"));
        assert!(b.text().contains(says), "{mode}: {}", b.text());
    }
}

#[test]
fn a_forgotten_password_is_reset_by_mail_and_a_used_link_offers_a_new_one() {
    let smtp = SmtpSink::start();
    let s = TestServer::start(&format!(
        "[ui]\ntitle = \"Example Corp\"\n{}",
        smtp.config()
    ));
    s.setup_owner();
    let b = Browser::new(Viewport::PHONE);
    b.goto(&s.url("/auth/login"));
    b.click_link("Forgot your password?");
    fits(&b, "Example Corp");
    b.fill("Email", "owner@example.com");
    b.click("Send link");
    assert!(b.text().contains("we have sent it a link"), "{}", b.text());
    let mail = smtp.wait_for("owner@example.com", 1);
    assert!(mail
        .header("subject")
        .is_some_and(|s| s.contains("Example Corp")));
    let (link, _) = link_in(&mail, "/auth/reset-password");
    b.goto(&link);
    fits(&b, "Example Corp");
    b.fill("New password", "my new password 1");
    b.click("Set new password");
    assert!(
        b.text().contains("Your new password is set"),
        "{}",
        b.text()
    );
    sign_in(&b, &s, "owner", "my new password 1");
    assert!(b.title().starts_with("Your account"), "{}", b.title());

    // The link again: used, so it says so and leads to a new one.
    b.goto(&link);
    assert!(
        b.text().contains("expired or was already used"),
        "{}",
        b.text()
    );
    b.click_link("Send me a new link");
    assert!(
        b.title().starts_with("Forgot your password?"),
        "{}",
        b.title()
    );
    b.click_link("Back to sign in");
    assert!(b.title().starts_with("Sign in"));
}

#[test]
fn an_administrator_approves_a_registration_and_invites_a_colleague() {
    let s = TestServer::start("[auth]\nregistration = \"approval\"\n");
    s.setup_owner();
    // Someone registers and must wait.
    let newcomer = Browser::new(Viewport::PHONE);
    newcomer.goto(&s.url("/auth/register"));
    newcomer.fill("Email", "pat@example.com");
    newcomer.fill("Password", "pat's own password");
    newcomer.click("Create account");
    sign_in(&newcomer, &s, "pat@example.com", "pat's own password");
    assert!(
        newcomer
            .text()
            .contains("waiting for an administrator's approval"),
        "{}",
        newcomer.text()
    );

    // The owner finds them from the account page and approves them.
    let owner = Browser::new(Viewport::DESKTOP);
    sign_in(&owner, &s, "owner", OWNER_PASSWORD);
    owner.click_link("Administration: people, invitations, settings");
    let people = owner.text();
    assert!(
        people.contains("pat@example.com") && people.contains("waiting for approval"),
        "{people}"
    );
    owner.click("Approve");
    assert!(
        owner.text().contains("The account is approved"),
        "{}",
        owner.text()
    );
    sign_in(&newcomer, &s, "pat@example.com", "pat's own password");
    assert!(
        newcomer.title().starts_with("Your account"),
        "{}",
        newcomer.title()
    );

    // An invitation for a colleague, used in another browser.
    owner.click_link("Invitations");
    owner.fill("Groups", "media");
    owner.click("Create invitation");
    let link = owner.field_value("Invitation link");
    assert!(link.contains("/auth/register?invite="), "{link}");
    let colleague = Browser::new(Viewport::SMALL_PHONE);
    colleague.goto(&link);
    fits(&colleague, "authgate");
    colleague.fill("Email", "sam@example.com");
    colleague.fill("Password", "sam's own password");
    colleague.click("Create account");
    assert!(
        colleague.title().starts_with("Your account"),
        "{}",
        colleague.text()
    );
    assert!(colleague.text().contains("media"), "{}", colleague.text());

    // The owner sees both, edits one, and the admin pages fit a phone too.
    owner.click_link("People");
    owner.click_link("sam@example.com");
    owner.fill("Groups", "media, family");
    owner.click("Save changes");
    assert!(owner.text().contains("Changes saved."), "{}", owner.text());
    let admin_on_phone = Browser::new(Viewport::SMALL_PHONE);
    sign_in(&admin_on_phone, &s, "owner", OWNER_PASSWORD);
    for page in [
        "/auth/admin/users",
        "/auth/admin/invites",
        "/auth/admin/audit",
        "/auth/admin/settings",
    ] {
        admin_on_phone.goto(&s.url(page));
        fits(&admin_on_phone, "authgate");
    }
}

/// Not a check: renders every page, light and dark, into `docs/screenshots/` (or
/// `$SCREENSHOTS_DIR`) for the README. Run by `scripts/screenshots.sh`.
#[test]
#[ignore = "renders the documentation's screenshots; run by scripts/screenshots.sh"]
fn render_screenshots() {
    let dir = std::env::var_os("SCREENSHOTS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
        });
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let smtp = SmtpSink::start();
    let s = TestServer::start(&format!(
        "[ui]\ntitle = \"Example Corp\"\nhelp_text = \"Trouble signing in? Write to it@example.com.\"\n\
         [auth]\nregistration = \"approval\"\n[auth.fields]\nfull_name = \"optional\"\n{}\
         [[routes]]\npath = \"/\"\nupstream = \"whoami\"\npolicy = \"authenticated\"\n",
        smtp.config()
    ));
    let phone = Viewport {
        pixel_ratio: 2.0,
        ..Viewport::PHONE
    };
    let desktop = Browser::new(Viewport::DESKTOP);
    let small = Browser::new(phone);
    let shoot = |b: &Browser, name: &str| {
        for (dark, suffix) in [(false, "light"), (true, "dark")] {
            b.set_dark(dark);
            b.screenshot_png(&dir.join(format!("{name}-{suffix}.png")));
        }
        b.set_dark(false);
    };
    desktop.goto(&s.url("/auth/setup"));
    shoot(&desktop, "setup");
    desktop.fill("Email", "owner@example.com");
    desktop.fill("Username", "owner");
    desktop.fill("Full name", "Olive Owner");
    desktop.fill("Password", OWNER_PASSWORD);
    desktop.click("Create owner account");
    small.goto(&s.url("/auth/register"));
    small.fill("Email", "pat@example.com");
    small.fill("Full name", "Pat Example");
    small.fill("Password", "pat's own password");
    small.click("Create account");
    shoot(&small, "registered-phone");
    small.goto(&s.url("/auth/login"));
    small.fill("Email or username", "pat@example.com");
    small.fill("Password", "not pat's password");
    small.click("Sign in");
    shoot(&small, "login-error-phone");
    desktop.goto(&s.url("/auth/"));
    shoot(&desktop, "account");
    desktop.fill("Current password", "wrong");
    desktop.fill("New password", "short");
    desktop.click("Change password");
    shoot(&desktop, "change-password-error");
    for (path, name) in [
        ("/auth/admin/users", "admin-people"),
        ("/auth/admin/settings", "admin-settings"),
    ] {
        desktop.goto(&s.url(path));
        shoot(&desktop, name);
    }
    desktop.goto(&s.url("/auth/admin/invites"));
    desktop.click("Create invitation");
    shoot(&desktop, "admin-invitation");
    desktop.goto(&s.url("/auth/"));
    desktop.fill("Name of the new token", "nightly backup");
    desktop.click("Create token");
    shoot(&desktop, "token-created");
    desktop.goto(&s.url("/auth/admin/service-accounts"));
    shoot(&desktop, "admin-service-accounts");
    let signed_out = Browser::new(Viewport::DESKTOP);
    signed_out.goto(&s.url("/auth/login"));
    shoot(&signed_out, "login");
    signed_out.goto(&s.url("/auth/reset-password?token=used"));
    shoot(&signed_out, "link-expired");
    small.goto(&s.url("/auth/forgot-password"));
    shoot(&small, "forgot-phone");
}
