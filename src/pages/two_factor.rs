//! Two-step verification pages: the code after the password, setting up an authenticator app,
//! and the recovery codes shown once.

use http::StatusCode;

use super::{
    alert, esc, hidden, links_list, page, passkey_button, passkey_script, Field, Page, Problem,
    Site, Width,
};
use crate::auth::totp::Enrolment;

/// `GET /2fa`: the second step of signing in; `passkey`: the user has one to use instead.
pub fn verify(
    site: &Site,
    rd: &str,
    passkey: bool,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Page {
    let mut body = format!(
        "{}<p>Enter the 6-digit code your authenticator app shows. Lost your phone? Enter one of your recovery codes instead.</p>\
         <form method=\"post\" action=\"{}\">{}{}<button type=\"submit\">Verify</button></form>{}",
        alert(problem),
        site.href("/2fa/verify"),
        Field::new("code", "Code", "text", "one-time-code")
            .hint("6 digits from the app, or a recovery code such as ABCDE-FGHJK.")
            .html(problem),
        hidden("rd", rd),
        links_list(&[(format!("{}/logout", site.prefix), "Sign in as someone else")]),
    );
    if passkey && site.passkeys {
        let next = format!("{}/2fa{}", site.prefix, super::rd_query(rd));
        body.push_str(&passkey_button(site, "second", "Use a passkey", &next, ""));
        body.push_str(&passkey_script());
    }
    page(site, status, "Two-step verification", Width::Narrow, &body)
}

/// The QR code as it goes inline in a page (without its XML declaration).
fn inline_svg(svg: &str) -> &str {
    svg.find("<svg").map_or("", |at| &svg[at..])
}

/// `GET /2fa/setup`: start, or (with `enrolment`) scan and confirm. `required`: the site
/// requires a second factor of this account before anything else.
pub fn setup(
    site: &Site,
    enrolment: Option<&Enrolment>,
    required: bool,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Page {
    let mut body = String::new();
    if required {
        body.push_str("<p role=\"status\">This site requires two-step verification for your account. Set it up to continue.</p>");
    }
    body.push_str(&alert(problem));
    match enrolment {
        None => body.push_str(&format!(
            "<p>An authenticator app (such as Aegis, Google Authenticator, 1Password or Bitwarden) shows a new 6-digit code every 30 seconds. After your password, you enter the code.</p>\
             <form method=\"post\" action=\"{}\"><button type=\"submit\">Set up an authenticator app</button></form>",
            site.href("/2fa/totp/setup")
        )),
        Some(e) => body.push_str(&format!(
            "<p>1. Scan this code with your authenticator app.</p><div class=\"qr\" role=\"img\" aria-label=\"QR code for the authenticator app\">{}</div>\
             <p class=\"muted\">Cannot scan it? Enter this key in the app by hand: <span class=\"copy\">{}</span></p>\
             <p>2. Enter the code the app shows now.</p>\
             <form method=\"post\" action=\"{}\">{}<button type=\"submit\">Turn on two-step verification</button></form>",
            inline_svg(&e.qr_svg),
            esc(&e.secret_base32),
            site.href("/2fa/totp/confirm"),
            Field::new("code", "Code from the app", "text", "one-time-code").html(problem),
        )),
    }
    if !required {
        body.push_str(&links_list(&[(
            format!("{}/", site.prefix),
            "Back to your account",
        )]));
    }
    page(
        site,
        status,
        "Set up two-step verification",
        Width::Narrow,
        &body,
    )
}

/// The recovery codes, shown once, with where to go on.
pub fn recovery_codes(site: &Site, codes: &[String], onward: &str) -> Page {
    let mut list = String::from("<ul class=\"codes\">");
    for c in codes {
        list.push_str(&format!("<li><code>{}</code></li>", esc(c)));
    }
    list.push_str("</ul>");
    let body = format!(
        "<p role=\"status\">Two-step verification is on. If you lose your phone, each of these codes signs you in once. Print them or keep them in a password manager: they are not shown again.</p>{list}{}",
        links_list(&[(onward.to_string(), "Continue")]),
    );
    page(
        site,
        StatusCode::OK,
        "Your recovery codes",
        Width::Narrow,
        &body,
    )
}
