//! What every page promises: escaped values, the site's name in the title, fields tied to
//! their labels, hints and problems, and nothing that needs JavaScript or an inline style.

use std::collections::BTreeMap;

use http::StatusCode;

use super::account::{ordered, AccountView, Section, SessionLine};
use super::auth::{login, register, registered, reset_password, FormValues, Registered};
use super::*;
use crate::config::{FieldMode, ProfileFields, Registration};
use crate::store::{ApiTokenRecord, Role, SessionRecord, UserRecord, UserStatus};

pub(super) fn site() -> Site {
    Site {
        prefix: "/auth".into(),
        brand: Brand {
            title: "Example <Corp>".into(),
            logo_url: Some("/auth/assets/logo?v=1".into()),
            style_url: "/auth/assets/style.css?v=1".into(),
            icon_url: "/auth/assets/icon?v=1".into(),
            help_text: Some("Ask Sam at desk 4".into()),
        },
        providers: vec![ProviderLink {
            name: "google".into(),
            display_name: "Google".into(),
        }],
        mail: true,
        native_signin: true,
        registration: Registration::Open,
        owner_exists: true,
        password_min_length: 8,
        fields: ProfileFields {
            username: FieldMode::Optional,
            full_name: FieldMode::Off,
            first_name: FieldMode::Off,
            last_name: FieldMode::Off,
        },
        passkeys: false,
    }
}

#[test]
fn pages_escape_values_name_the_site_and_need_nothing_inline() {
    let values = FormValues {
        identifier: "\"><script>alert(1)</script>".into(),
        rd: "https://a.example.com/?\"><x".into(),
        ..FormValues::default()
    };
    let p = login(&site(), &values, None, None, StatusCode::OK);
    let html = &p.html;
    assert!(
        !html.contains("<script>") && !html.contains("\"><x"),
        "{html}"
    );
    assert!(html.contains("&quot;&gt;&lt;script&gt;"));
    assert!(
        html.contains("<title>Sign in · Example &lt;Corp&gt;</title>"),
        "{html}"
    );
    assert!(html.contains("<img src=\"/auth/assets/logo?v=1\" alt=\"\">"));
    assert!(html.contains("Ask Sam at desk 4"));
    assert!(html.contains("href=\"/auth/oauth/google?rd=https%3A%2F%2Fa.example.com"));
    // Styled by the same-origin stylesheet only: no style attribute or element, no script.
    for inline in [" style=", "<style", "<script", " on"] {
        assert!(!html.contains(inline), "{inline} in {html}");
    }
    let csp = Page::csp();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"));
}

#[test]
fn fields_are_tied_to_their_label_hint_and_problem() {
    let mut fields = BTreeMap::new();
    fields.insert(
        "password".to_string(),
        "Must be at least 8 characters.".to_string(),
    );
    let problem = Problem {
        summary: "Please correct the marked fields.".into(),
        fields,
        next: None,
    };
    let values = FormValues {
        email: "new@example.com".into(),
        ..FormValues::default()
    };
    let html = register(&site(), &values, Some(&problem), StatusCode::BAD_REQUEST).html;
    assert!(
        html.contains("<label for=\"f-password\">Password</label>"),
        "{html}"
    );
    assert!(
        html.contains("id=\"f-password\" name=\"password\" type=\"password\" value=\"\" autocomplete=\"new-password\" required aria-invalid=\"true\" aria-describedby=\"f-password-hint f-password-error\""),
        "{html}"
    );
    assert!(html.contains(
        "<p class=\"field-error\" id=\"f-password-error\">Must be at least 8 characters.</p>"
    ));
    assert!(html.contains("<div class=\"alert\" role=\"alert\">"));
    // The email is kept, an optional field says so, the password never comes back.
    assert!(html.contains("value=\"new@example.com\""));
    assert!(html.contains("Username <span class=\"muted\">(optional)</span>"));
    let email_field = html.split("id=\"f-email\"").nth(1).unwrap_or("");
    assert!(!email_field
        .split('>')
        .next()
        .unwrap_or("")
        .contains("aria-invalid"));
}

#[test]
fn password_forms_name_the_account_for_password_managers() {
    let values = FormValues {
        token: "tok".into(),
        ..FormValues::default()
    };
    let html = reset_password(&site(), &values, "a@example.com", None, StatusCode::OK).html;
    assert!(html.contains(
        "<input type=\"text\" name=\"username\" value=\"a@example.com\" autocomplete=\"username\" hidden readonly>"
    ));
    let view = account_view();
    let html = account::account(&site(), &view, None, None, StatusCode::OK).html;
    assert!(
        html.contains("value=\"m@example.com\" autocomplete=\"username\" hidden"),
        "{html}"
    );
}

#[test]
fn registration_outcomes_say_what_happens_next() {
    // (approval needed, mail sent) → words the page must contain
    let cases = [
        ((true, false), "waiting for an administrator"),
        (
            (false, true),
            "We sent a link to <strong>n@example.com</strong>",
        ),
        ((true, true), "also needs to approve"),
    ];
    for ((needs_approval, mail_sent), words) in cases {
        let html = registered(
            &site(),
            "n@example.com",
            Registered {
                needs_approval,
                mail_sent,
            },
        )
        .html;
        assert!(html.contains(words), "{needs_approval} {mail_sent}: {html}");
        assert_eq!(html.contains("Send the email again"), mail_sent);
    }
}

fn account_view() -> AccountView {
    let mut user = UserRecord::new("u1", "m@example.com", Role::User, UserStatus::Active, 0);
    user.password_hash = Some("hash".into());
    let session = |last_seen: i64, ua: &str| SessionRecord {
        user_id: "u1".into(),
        created_at: 1_000,
        expires_at: 100_000,
        last_seen,
        indexed_expiry: 100_000,
        remember: false,
        ip: Some("10.0.0.5".into()),
        user_agent: Some(ua.into()),
        amr: Vec::new(),
        stage: crate::store::SessionStage::Complete,
    };
    let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
    let firefox =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
    AccountView {
        user,
        display_name: "m@example.com".into(),
        sessions: ordered(vec![
            SessionLine {
                public_id: "aaaa".into(),
                current: false,
                record: session(9_820, firefox),
            },
            SessionLine {
                public_id: "bbbb".into(),
                current: true,
                record: session(5_000, chrome),
            },
        ]),
        linked: Vec::new(),
        now: 10_000,
        totp: false,
        recovery_left: 0,
        passkeys: Vec::new(),
        tokens: Vec::new(),
        token_groups: vec!["user".into(), "git".into()],
    }
}

#[test]
fn the_account_page_lists_sessions_in_words_this_device_first() {
    let html = account::account(
        &site(),
        &account_view(),
        Some("Your profile is saved."),
        None,
        StatusCode::OK,
    )
    .html;
    let chrome = html.find("Chrome on Linux").unwrap_or(usize::MAX);
    let firefox = html.find("Firefox on Windows 10").unwrap_or(usize::MAX);
    assert!(chrome < firefox && firefox != usize::MAX, "{html}");
    assert!(html.contains("10.0.0.5 · active 3 minutes ago"), "{html}");
    assert!(html.contains("action=\"/auth/sessions/aaaa/end\""));
    assert!(
        !html.contains("/auth/sessions/bbbb/end"),
        "this device signs out instead"
    );
    assert!(html.contains("role=\"status\"><p>Your profile is saved.</p>"));
    assert!(
        !html.contains("Mozilla/5.0"),
        "raw user agents are not shown"
    );
}

#[test]
fn a_problem_is_shown_at_its_own_form_only() {
    let mut fields = BTreeMap::new();
    fields.insert(
        "currentPassword".to_string(),
        "This is not your current password.".to_string(),
    );
    let problem = Problem {
        summary: "Your password was not changed.".into(),
        fields,
        next: None,
    };
    let html = account::account(
        &site(),
        &account_view(),
        None,
        Some((Section::Password, &problem)),
        StatusCode::UNAUTHORIZED,
    )
    .html;
    let password = html.split("id=\"password\"").nth(1).unwrap_or("");
    assert!(
        password.contains("Your password was not changed."),
        "{html}"
    );
    assert!(password.contains("aria-invalid=\"true\" aria-describedby=\"f-currentPassword-error\""));
    let profile = html.split("id=\"profile\"").nth(1).unwrap_or("");
    let profile = profile.split("id=\"password\"").next().unwrap_or("");
    assert!(!profile.contains("alert"), "{profile}");
}

fn token(id: &str, name: &str, groups: Option<&[&str]>, expires_at: Option<i64>) -> ApiTokenRecord {
    ApiTokenRecord {
        id: id.into(),
        user_id: "u1".into(),
        name: name.into(),
        prefix: "agt_AbCdEf".into(),
        groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
        created_at: 1_000,
        expires_at,
        last_used_at: None,
    }
}

#[test]
fn the_account_page_lists_tokens_escaped_with_their_access_expiry_and_a_revoke_button() {
    let mut view = account_view();
    view.tokens = vec![
        token("t1", "<b>ci</b> & \"deploy\"", None, None),
        token("t2", "git", Some(&["git"]), Some(5_000)),
        ApiTokenRecord {
            last_used_at: Some(9_400),
            ..token("t3", "backup", Some(&[]), Some(1_000_000))
        },
    ];
    let html = account::account(&site(), &view, None, None, StatusCode::OK).html;
    let tokens = html.split("id=\"tokens\"").nth(1).unwrap_or("");
    assert!(
        tokens.contains("<strong>&lt;b&gt;ci&lt;/b&gt; &amp; &quot;deploy&quot;</strong>"),
        "{tokens}"
    );
    assert!(!html.contains("<b>ci</b>"));
    for words in [
        "<code>agt_AbCdEf…</code> · all your access · created 1 Jan 1970 · never expires · never used",
        "only git",
        "<span class=\"chip pending\">expired</span>",
        "signing in only (no role or group)",
        "expires 12 Jan 1970 · last used 10 minutes ago",
        "action=\"/auth/tokens/t1/revoke\"",
        // The form: posted as a form, 90 days unless chosen otherwise, limited by ticking.
        "<form method=\"post\" action=\"/auth/tokens/new\">",
        "<option value=\"90d\" selected>In 90 days</option>",
        "<option value=\"never\">Never</option>",
        "name=\"groups\" value=\"git\"> git</label>",
    ] {
        assert!(tokens.contains(words), "{words} in {tokens}");
    }
}

#[test]
fn a_token_problem_is_shown_at_its_field_in_the_token_form() {
    let mut fields = BTreeMap::new();
    fields.insert(
        "groups".to_string(),
        "\"ops\" is not among them.".to_string(),
    );
    let problem = Problem {
        summary: "The token was not created.".into(),
        fields,
        next: None,
    };
    let html = account::account(
        &site(),
        &account_view(),
        None,
        Some((Section::Tokens, &problem)),
        StatusCode::BAD_REQUEST,
    )
    .html;
    let tokens = html.split("id=\"tokens\"").nth(1).unwrap_or("");
    assert!(tokens.contains("The token was not created."), "{tokens}");
    assert!(
        tokens.contains("<fieldset class=\"field\" id=\"f-groups\" aria-describedby=\"f-groups-hint f-groups-error\">"),
        "{tokens}"
    );
    assert!(tokens.contains("value=\"user\" aria-invalid=\"true\">"));
    assert!(tokens.contains(
        "<p class=\"field-error\" id=\"f-groups-error\">&quot;ops&quot; is not among them.</p>"
    ));
    let before = html.split("id=\"tokens\"").next().unwrap_or("");
    assert!(
        !before.contains("alert"),
        "the problem is at the token form only"
    );
}

#[test]
fn a_new_token_is_shown_once_to_copy_by_a_script_the_csp_allows() {
    let new = tokens::Created {
        name: "ci <runner>".into(),
        token: "agt_secretsecret\"><x".into(),
        groups: Some(vec!["git".into()]),
        expires_at: Some(86_400 * 90),
    };
    let p = tokens::created(
        &site(),
        "Your new token",
        &new,
        tokens::Whose::Yours,
        ("/auth/#tokens".into(), "Back to your account"),
    );
    let html = &p.html;
    assert_eq!(p.status, StatusCode::CREATED);
    assert_eq!(html.matches("agt_secretsecret").count(), 1, "{html}");
    assert!(html.contains(
        "<input id=\"f-token\" class=\"copy\" type=\"text\" readonly value=\"agt_secretsecret&quot;&gt;&lt;x\""
    ));
    assert!(html.contains("Copy it now: it will not be shown again."));
    assert!(html.contains("ci &lt;runner&gt;") && !html.contains("<runner>"));
    assert!(
        html.contains("<dd>only git</dd><dt>Expires</dt><dd>1 Apr 1970</dd>"),
        "{html}"
    );
    assert!(html.contains("href=\"/auth/#tokens\">Back to your account</a>"));
    // Without the script the button stays hidden; the script is allowed by its hash.
    assert!(html.contains("<div data-copy-only hidden><button type=\"button\""));
    let script = html
        .split("<script>")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .unwrap_or_default();
    assert_eq!(script, COPY_SCRIPT);
    let csp = Page::csp();
    assert!(
        csp.contains(&format!("'sha256-{}'", script_hash(script))),
        "{csp}"
    );
    assert!(csp.contains(&format!("'sha256-{}'", script_hash(PASSKEY_SCRIPT))));
    for inline in [" style=", "<style", " onclick", " onload"] {
        assert!(!html.contains(inline), "{inline} in {html}");
    }
}
