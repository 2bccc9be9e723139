//! The pages before and around signing in: login, register, setup, forgot and reset password,
//! email confirmation, and signing out.

use http::StatusCode;

use super::{
    alert, button_form, done, esc, hidden, links_list, page, passkey_button, passkey_script,
    query_value, rd_query, username_for_managers, Field, NextStep, Page, Problem, Site, Width,
};
use crate::config::{FieldMode, Registration};

/// Values a form shows again after a failed post (never a password).
#[derive(Default, Debug, Clone)]
pub struct FormValues {
    pub identifier: String,
    pub email: String,
    pub username: String,
    pub full_name: String,
    pub first_name: String,
    pub last_name: String,
    pub rd: String,
    /// A mailed token (reset, verification), carried in a hidden field.
    pub token: String,
    /// An invite code, carried in the registration form's action.
    pub invite: String,
}

/// `GET /login`: providers, the password form, and the ways onward. `notice` is a success
/// message (after signing out, after a reset).
pub fn login(
    site: &Site,
    values: &FormValues,
    problem: Option<&Problem>,
    notice: Option<&str>,
    status: StatusCode,
) -> Page {
    let native = site.native_signin;
    let mut body = done(notice);
    body.push_str(&alert(problem));
    if let Some(NextStep::ResendVerification { identifier }) = problem.and_then(|p| p.next.as_ref())
    {
        if site.mail {
            body.push_str(&button_form(
                &format!("{}/resend-verification", site.prefix),
                &hidden("identifier", identifier),
                "Send the confirmation email again",
                "secondary",
            ));
        }
    }
    let providers = &site.providers;
    if !providers.is_empty() {
        let rd = rd_query(&values.rd);
        body.push_str("<div class=\"providers\">");
        for p in providers {
            body.push_str(&format!(
                "<a class=\"button secondary\" href=\"{}\">Sign in with {}</a>",
                site.href(&format!("/oauth/{}{rd}", p.name)),
                esc(&p.display_name)
            ));
        }
        body.push_str("</div>");
    }
    if !native {
        // Password sign-in is for the owner only: kept out of the way.
        body.push_str("<details><summary>Owner sign-in with a password</summary>");
    } else if !providers.is_empty() {
        body.push_str("<p class=\"or\">or with your password</p>");
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">",
        site.href("/login")
    ));
    body.push_str(
        &Field::new("identifier", "Email or username", "text", "username")
            .value(&values.identifier)
            .html(problem),
    );
    body.push_str(
        &Field::new("password", "Password", "password", "current-password").html(problem),
    );
    body.push_str(
        "<label class=\"check\"><input type=\"checkbox\" name=\"remember\" value=\"on\"> Keep me signed in</label>",
    );
    body.push_str(&hidden("rd", &values.rd));
    body.push_str("<button type=\"submit\">Sign in</button></form>");
    if !native {
        body.push_str("</details>");
    }
    if site.passkeys {
        let next = format!("{}/2fa{}", site.prefix, rd_query(&values.rd));
        body.push_str(&passkey_button(
            site,
            "login",
            "Sign in with a passkey",
            &next,
            "",
        ));
        body.push_str(&passkey_script());
    }
    let rd = rd_query(&values.rd);
    let mut links = Vec::new();
    if site.mail && native {
        links.push((
            format!("{}/forgot-password", site.prefix),
            "Forgot your password?",
        ));
    }
    if !site.owner_exists {
        links.push((
            format!("{}/setup{rd}", site.prefix),
            "No account exists yet: set up this site",
        ));
    } else if site.registration != Registration::Closed && native {
        links.push((format!("{}/register{rd}", site.prefix), "Create an account"));
    }
    body.push_str(&links_list(&links));
    page(site, status, "Sign in", Width::Narrow, &body)
}

/// The fields of a new account (registration and setup), then the password.
fn account_fields(site: &Site, values: &FormValues, problem: Option<&Problem>) -> String {
    let f = &site.fields;
    let mut form = Field::new("email", "Email", "email", "email")
        .value(&values.email)
        .html(problem);
    for (mode, label, name, value, auto) in [
        (
            f.username,
            "Username",
            "username",
            &values.username,
            "username",
        ),
        (
            f.full_name,
            "Full name",
            "fullName",
            &values.full_name,
            "name",
        ),
        (
            f.first_name,
            "First name",
            "firstName",
            &values.first_name,
            "given-name",
        ),
        (
            f.last_name,
            "Last name",
            "lastName",
            &values.last_name,
            "family-name",
        ),
    ] {
        if mode != FieldMode::Off {
            let mut field = Field::new(name, label, "text", auto).value(value);
            if mode == FieldMode::Optional {
                field = field.optional();
            }
            form.push_str(&field.html(problem));
        }
    }
    form.push_str(
        &Field::new("password", "Password", "password", "new-password")
            .hint(format!("At least {} characters.", site.password_min_length))
            .html(problem),
    );
    form
}

/// `GET /register`.
pub fn register(
    site: &Site,
    values: &FormValues,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Page {
    let heading = "Create an account";
    let mut body = alert(problem);
    let sign_in = (
        format!("{}/login{}", site.prefix, rd_query(&values.rd)),
        "Already have an account? Sign in",
    );
    if !site.owner_exists {
        body.push_str("<p>This site has no owner yet, so nobody can register.</p>");
        body.push_str(&links_list(&[(
            format!("{}/setup", site.prefix),
            "Set up this site",
        )]));
        return page(site, status, heading, Width::Narrow, &body);
    }
    match site.registration {
        Registration::Closed => body.push_str(
            "<p>This site does not take new registrations. If you need an account, ask an administrator.</p>",
        ),
        Registration::Invite if values.invite.is_empty() => body.push_str(
            "<p>You need an invitation to register here. Open the link you were sent, or ask an administrator for one.</p>",
        ),
        mode => {
            if mode == Registration::Approval && values.invite.is_empty() {
                body.push_str("<p class=\"muted\">An administrator approves new accounts before they can sign in.</p>");
            }
            let action = if values.invite.is_empty() {
                "/register".to_string()
            } else {
                format!("/register?invite={}", query_value(&values.invite))
            };
            body.push_str(&format!(
                "<form method=\"post\" action=\"{}\">{}{}<button type=\"submit\">Create account</button></form>",
                site.href(&action),
                account_fields(site, values, problem),
                hidden("rd", &values.rd),
            ));
        }
    }
    body.push_str(&links_list(&[sign_in]));
    page(site, status, heading, Width::Narrow, &body)
}

/// What happened to a registration that did not sign the person in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// An administrator must approve the account.
    pub needs_approval: bool,
    /// A confirmation mail went to the address.
    pub mail_sent: bool,
}

/// The page after a registration that did not sign in: it says what happens next.
pub fn registered(site: &Site, email: &str, outcome: Registered) -> Page {
    let mut body = String::new();
    let heading = if outcome.mail_sent {
        body.push_str(&format!(
            "<p role=\"status\">We sent a link to <strong>{}</strong>. Open it to confirm your address.</p>",
            esc(email)
        ));
        if outcome.needs_approval {
            body.push_str("<p>An administrator also needs to approve your account. You can sign in once both are done.</p>");
        } else {
            body.push_str("<p>Then you can sign in.</p>");
        }
        body.push_str("<p class=\"muted\">No mail after a few minutes? Look in your spam folder, or send it again.</p>");
        body.push_str(&button_form(
            &format!("{}/resend-verification", site.prefix),
            &hidden("email", email),
            "Send the email again",
            "secondary",
        ));
        "Check your email"
    } else {
        body.push_str("<p role=\"status\">Your account is waiting for an administrator's approval. You can sign in once it is approved.</p>");
        "Account created"
    };
    body.push_str(&links_list(&[(
        format!("{}/login", site.prefix),
        "Go to sign in",
    )]));
    page(site, StatusCode::CREATED, heading, Width::Narrow, &body)
}

/// `GET /setup`. `needs_code`: the visitor is not on the gateway's own machine, so the form
/// asks for the setup code from the log.
pub fn setup(
    site: &Site,
    values: &FormValues,
    problem: Option<&Problem>,
    status: StatusCode,
    needs_code: bool,
) -> Page {
    let heading = format!("Set up {}", site.brand.title);
    let mut body = alert(problem);
    if site.owner_exists {
        body.push_str("<p>This site is already set up.</p>");
        body.push_str(&links_list(&[(
            format!("{}/login", site.prefix),
            "Sign in",
        )]));
        return page(site, status, &heading, Width::Narrow, &body);
    }
    body.push_str("<p class=\"muted\">Create the owner account. The owner runs this site: approves people, invites them and changes settings.</p>");
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">",
        site.href("/setup")
    ));
    if needs_code {
        // The code comes first: without it nothing else matters.
        body.push_str(
            &Field::new("setupCode", "Setup code", "text", "one-time-code")
                .hint("You are not on the gateway's own machine, so setup needs the one-time code from the gateway's log. `authgate setup-code` on its host prints it too.")
                .html(problem),
        );
    }
    body.push_str(&account_fields(site, values, problem));
    body.push_str(&hidden("rd", &values.rd));
    body.push_str("<button type=\"submit\">Create owner account</button></form>");
    page(site, status, &heading, Width::Narrow, &body)
}

/// `GET /forgot-password`.
pub fn forgot_password(site: &Site, problem: Option<&Problem>, status: StatusCode) -> Page {
    let mut body = alert(problem);
    if !site.mail {
        body.push_str("<p>This site cannot send email, so passwords cannot be reset here. Ask an administrator to help you.</p>");
    } else {
        body.push_str(&format!(
            "<p class=\"muted\">Enter the email address of your account and we will send you a link to choose a new password.</p>\
             <form method=\"post\" action=\"{}\">{}<button type=\"submit\">Send link</button></form>",
            site.href("/forgot-password"),
            Field::new("email", "Email", "email", "email").html(problem)
        ));
    }
    body.push_str(&links_list(&[(
        format!("{}/login", site.prefix),
        "Back to sign in",
    )]));
    page(site, status, "Forgot your password?", Width::Narrow, &body)
}

/// The page after asking for a reset link.
pub fn reset_link_sent(site: &Site) -> Page {
    let body = format!(
        "<p role=\"status\">If an account exists for this address, we have sent it a link to choose a new password. The link works for 30 minutes, once.</p>\
         <p class=\"muted\">No mail after a few minutes? Look in your spam folder, or ask again.</p>{}",
        links_list(&[
            (format!("{}/forgot-password", site.prefix), "Ask for another link"),
            (format!("{}/login", site.prefix), "Back to sign in"),
        ])
    );
    page(
        site,
        StatusCode::OK,
        "Check your email",
        Width::Narrow,
        &body,
    )
}

/// A mailed link that is unknown, used or expired: say so and offer the way forward.
pub fn link_expired(site: &Site, reset: bool, status: StatusCode) -> Page {
    let mut body = String::from(
        "<div class=\"alert\" role=\"alert\"><p>This link has expired or was already used.</p></div>",
    );
    if reset {
        body.push_str(
            "<p>Links to reset a password work once, for 30 minutes. Ask for a new one.</p>",
        );
        body.push_str(&links_list(&[
            (
                format!("{}/forgot-password", site.prefix),
                "Send me a new link",
            ),
            (format!("{}/login", site.prefix), "Back to sign in"),
        ]));
    } else {
        body.push_str(
            "<p>Sign in to send yourself a new confirmation link, or ask an administrator.</p>",
        );
        body.push_str(&links_list(&[(
            format!("{}/login", site.prefix),
            "Go to sign in",
        )]));
    }
    page(site, status, "Link no longer valid", Width::Narrow, &body)
}

/// `GET /reset-password?token=`; `account` is the address the link is for (for password
/// managers).
pub fn reset_password(
    site: &Site,
    values: &FormValues,
    account: &str,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Page {
    let body = format!(
        "{}<form method=\"post\" action=\"{}\">{}{}{}<button type=\"submit\">Set new password</button></form>",
        alert(problem),
        site.href("/reset-password"),
        hidden("token", &values.token),
        username_for_managers(account),
        Field::new("password", "New password", "password", "new-password")
            .hint(format!("At least {} characters.", site.password_min_length))
            .html(problem),
    );
    page(site, status, "Choose a new password", Width::Narrow, &body)
}

/// `GET /verify-email?token=`: a button, so that link scanners fetching the URL confirm nothing.
pub fn verify_email(
    site: &Site,
    values: &FormValues,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Page {
    let body = format!(
        "{}<p>One more step: press the button to confirm your email address.</p>\
         <form method=\"post\" action=\"{}\">{}<button type=\"submit\">Confirm my address</button></form>",
        alert(problem),
        site.href("/verify-email"),
        hidden("token", &values.token),
    );
    page(
        site,
        status,
        "Confirm your email address",
        Width::Narrow,
        &body,
    )
}

/// Asked when another site sent the browser to the logout address: a button signs out (a
/// same-origin post), so a link or an image elsewhere cannot.
pub fn confirm_logout(site: &Site, rd: &str) -> Page {
    let body = format!(
        "<p>Another site sent you here to sign out of {}.</p>\
         <form method=\"post\" action=\"{}\">{}<button type=\"submit\">Sign out</button></form>{}",
        esc(&site.brand.title),
        site.href("/logout"),
        hidden("rd", rd),
        links_list(&[(format!("{}/", site.prefix), "Stay signed in")]),
    );
    page(site, StatusCode::OK, "Sign out?", Width::Narrow, &body)
}

/// A page for anything else that went wrong, with a way onward.
pub fn problem_page(site: &Site, status: StatusCode, problem: &Problem, signed_in: bool) -> Page {
    let heading = match status {
        StatusCode::NOT_FOUND => "Page not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::UNAUTHORIZED => "Please sign in",
        s if s.is_server_error() => "Something went wrong on our side",
        _ => "That did not work",
    };
    let onward = if signed_in {
        (format!("{}/", site.prefix), "Go to your account")
    } else {
        (format!("{}/login", site.prefix), "Go to sign in")
    };
    let body = format!("{}{}", alert(Some(problem)), links_list(&[onward]));
    page(site, status, heading, Width::Narrow, &body)
}

/// After a provider sign-in under `SameSite=Strict`: a same-site page that continues to `to`
/// (a redirect would still belong to the provider's cross-site navigation and arrive without
/// the new cookie).
pub fn continue_to(site: &Site, to: &str) -> Page {
    let to = esc(to);
    let body = format!(
        "<meta http-equiv=\"refresh\" content=\"0;url={to}\"><p>You are signed in.</p>\
         <p><a class=\"button\" href=\"{to}\">Continue</a></p>"
    );
    page(site, StatusCode::OK, "Signed in", Width::Narrow, &body)
}
