//! The HTML pages for people in a browser: login, register, setup and the account page.
//! Self-contained (no external assets, no JavaScript), every value escaped, a strict
//! `Content-Security-Policy` that allows only the page's own stylesheet.

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::StatusCode;
use sha2::{Digest, Sha256};

use crate::auth::session;
use crate::auth::session_cache::LiveSession;
use crate::config::{FieldMode, ProfileFields, Registration};
use crate::store::{IdentityRecord, SessionKey, SessionRecord};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f;background:#fafafa}\
h1{font-size:1.5rem}form{display:grid;gap:.75rem;margin:1rem 0}label{display:grid;gap:.25rem;font-weight:600}\
input{font:inherit;padding:.5rem;border:1px solid #888;border-radius:4px}label.check{display:flex;gap:.5rem;font-weight:400}\
button{font:inherit;padding:.6rem;border:0;border-radius:4px;background:#1f5fbf;color:#fff;cursor:pointer}\
button.secondary{background:#555}.error{background:#fde8e8;border:1px solid #c33;padding:.75rem;border-radius:4px}\
.note{color:#555}table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{text-align:left;padding:.3rem;border-bottom:1px solid #ddd}\
a.button{display:block;text-align:center;padding:.6rem;border-radius:4px;background:#333;color:#fff;text-decoration:none;margin:.5rem 0}\
form.inline{display:inline;margin:0 0 0 .5rem}form.inline button{padding:.2rem .6rem;background:#555}\
:focus{outline:3px solid #f5a623}";

/// Escape text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Unix seconds as RFC 3339 UTC text (empty if out of range).
fn when(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A finished page: what the API answers a browser with.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: StatusCode,
    /// The whole document.
    pub html: String,
}

impl Page {
    /// The `Content-Security-Policy` every page is served with.
    pub fn csp() -> &'static str {
        csp()
    }
}

/// A sign-in provider as the pages show it.
#[derive(Debug, Clone)]
pub struct ProviderLink {
    pub name: String,
    pub display_name: String,
}

/// What the pages need to know about the gateway, read by the caller for each page.
#[derive(Debug, Clone)]
pub struct Site {
    pub prefix: String,
    pub providers: Vec<ProviderLink>,
    /// Mail is configured (forgot-password is offered).
    pub mail: bool,
    pub native_signin: bool,
    pub registration: Registration,
    pub owner_exists: bool,
    pub password_min_length: usize,
    pub fields: ProfileFields,
}

/// `Content-Security-Policy` for every page: nothing but the inline stylesheet above.
fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; base-uri 'none'; frame-ancestors 'none'"
        )
    })
}

/// A complete page response.
pub fn page(status: StatusCode, title: &str, body: &str) -> Page {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\n<body><main>\n{body}\n</main></body></html>\n",
        title = esc(title),
    );
    Page { status, html }
}

/// Values a form shows again after a failed post (never the password).
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

fn error_box(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default()
}

fn hidden_rd(rd: &str) -> String {
    if rd.is_empty() {
        String::new()
    } else {
        format!("<input type=\"hidden\" name=\"rd\" value=\"{}\">", esc(rd))
    }
}

fn text_input(
    label: &str,
    name: &str,
    kind: &str,
    value: &str,
    required: bool,
    autocomplete: &str,
) -> String {
    format!(
        "<label>{label}<input type=\"{kind}\" name=\"{name}\" value=\"{value}\" autocomplete=\"{autocomplete}\"{req}></label>",
        label = esc(label),
        value = esc(value),
        req = if required { " required" } else { "" },
    )
}

/// `GET /login`.
pub fn login(site: &Site, values: &FormValues, error: Option<&str>, status: StatusCode) -> Page {
    let prefix = &site.prefix;
    let native = site.native_signin;
    let mut body = format!("<h1>Sign in</h1>{}", error_box(error));
    let providers = &site.providers;
    if !providers.is_empty() {
        let rd = if values.rd.is_empty() {
            String::new()
        } else {
            format!(
                "?rd={}",
                form_urlencoded::byte_serialize(values.rd.as_bytes()).collect::<String>()
            )
        };
        body.push_str("<div class=\"providers\">");
        for p in providers {
            body.push_str(&format!(
                "<a class=\"button\" href=\"{}/oauth/{}{}\">Sign in with {}</a>",
                esc(prefix),
                esc(&p.name),
                esc(&rd),
                esc(&p.display_name)
            ));
        }
        body.push_str("</div>");
    }
    if !native {
        // Password sign-in is for the owner only: kept out of the way.
        body.push_str("<details><summary>Owner sign-in with a password</summary>");
    } else if !providers.is_empty() {
        body.push_str("<p class=\"note\">or with your password:</p>");
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}/login\">",
        esc(prefix)
    ));
    body.push_str(&text_input(
        "Email or username",
        "identifier",
        "text",
        &values.identifier,
        true,
        "username",
    ));
    body.push_str(&text_input(
        "Password",
        "password",
        "password",
        "",
        true,
        "current-password",
    ));
    body.push_str("<label class=\"check\"><input type=\"checkbox\" name=\"remember\" value=\"on\"> Keep me signed in</label>");
    body.push_str(&hidden_rd(&values.rd));
    body.push_str("<button type=\"submit\">Sign in</button></form>");
    if !native {
        body.push_str("</details>");
    }
    if site.mail && native {
        body.push_str(&format!(
            "<p class=\"note\"><a href=\"{}/forgot-password\">Forgot your password?</a></p>",
            esc(prefix)
        ));
    }
    let rd_query = rd_query(&values.rd);
    if !site.owner_exists {
        body.push_str(&format!(
            "<p class=\"note\">No account exists yet: <a href=\"{}/setup{}\">create the owner account</a>.</p>",
            esc(prefix),
            esc(&rd_query)
        ));
    } else if site.registration != Registration::Closed && native {
        body.push_str(&format!(
            "<p class=\"note\">No account? <a href=\"{}/register{}\">Register</a>.</p>",
            esc(prefix),
            esc(&rd_query)
        ));
    }
    page(status, "Sign in", &body)
}

fn rd_query(rd: &str) -> String {
    if rd.is_empty() {
        String::new()
    } else {
        format!(
            "?rd={}",
            form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        )
    }
}

fn account_form(site: &Site, action: &str, values: &FormValues, button: &str) -> String {
    let f = &site.fields;
    let mut form = format!(
        "<form method=\"post\" action=\"{}{}\">",
        esc(&site.prefix),
        esc(action)
    );
    form.push_str(&text_input(
        "Email",
        "email",
        "email",
        &values.email,
        true,
        "email",
    ));
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
            form.push_str(&text_input(
                label,
                name,
                "text",
                value,
                mode == FieldMode::Required,
                auto,
            ));
        }
    }
    form.push_str(&text_input(
        "Password",
        "password",
        "password",
        "",
        true,
        "new-password",
    ));
    form.push_str(&format!(
        "<p class=\"note\">At least {} characters.</p>",
        site.password_min_length
    ));
    form.push_str(&hidden_rd(&values.rd));
    form.push_str(&format!(
        "<button type=\"submit\">{}</button></form>",
        esc(button)
    ));
    form
}

/// `GET /register`.
pub fn register(site: &Site, values: &FormValues, error: Option<&str>, status: StatusCode) -> Page {
    let mut body = format!("<h1>Create an account</h1>{}", error_box(error));
    if !site.owner_exists {
        body.push_str(&format!(
            "<p>This gateway has no owner yet, so nobody can register. \
             <a href=\"{}/setup\">Set it up</a> first.</p>",
            esc(&site.prefix)
        ));
        return page(status, "Create an account", &body);
    }
    match site.registration {
        Registration::Closed => body.push_str("<p>Registration is closed on this site.</p>"),
        Registration::Invite if values.invite.is_empty() => {
            body.push_str("<p>Registration needs an invitation: open the link you were sent.</p>")
        }
        mode => {
            if mode == Registration::Approval {
                body.push_str("<p class=\"note\">New accounts need an administrator's approval before they can sign in.</p>");
            }
            let action = if values.invite.is_empty() {
                "/register".to_string()
            } else {
                let code: String =
                    form_urlencoded::byte_serialize(values.invite.as_bytes()).collect();
                format!("/register?invite={code}")
            };
            body.push_str(&account_form(site, &action, values, "Create account"));
        }
    }
    body.push_str(&format!(
        "<p class=\"note\">Already registered? <a href=\"{}/login{}\">Sign in</a>.</p>",
        esc(&site.prefix),
        esc(&rd_query(&values.rd))
    ));
    page(status, "Create an account", &body)
}

/// `GET /setup`. `needs_code`: the visitor is not on the gateway's own machine, so the form
/// asks for the setup code from the log.
pub fn setup(
    site: &Site,
    values: &FormValues,
    error: Option<&str>,
    status: StatusCode,
    needs_code: bool,
) -> Page {
    let mut body = format!("<h1>Set up authgate</h1>{}", error_box(error));
    if site.owner_exists {
        body.push_str(&format!(
            "<p>This gateway is already set up. <a href=\"{}/login\">Sign in</a>.</p>",
            esc(&site.prefix)
        ));
    } else {
        body.push_str(
            "<p class=\"note\">Create the owner account. The owner administers this gateway.</p>",
        );
        let mut form = account_form(site, "/setup", values, "Create owner account");
        if needs_code {
            let field = format!(
                "{}<p class=\"note\">You are not on the gateway's own machine, so setup needs the \
                 one-time setup code. It is in the gateway's log since it started, and \
                 <code>authgate setup-code</code> prints it on the gateway's host.</p>",
                text_input("Setup code", "setupCode", "text", "", true, "one-time-code")
            );
            // The code comes first: without it nothing else matters.
            if let Some(at) = form.find('>') {
                form.insert_str(at + 1, &field);
            }
        }
        body.push_str(&form);
    }
    page(status, "Set up authgate", &body)
}

/// `GET /forgot-password`.
pub fn forgot_password(site: &Site, error: Option<&str>, status: StatusCode) -> Page {
    let prefix = esc(&site.prefix);
    let mut body = format!("<h1>Forgot your password?</h1>{}", error_box(error));
    if !site.mail {
        body.push_str(
            "<p>Password reset by email is not available on this site. Ask an administrator.</p>",
        );
    } else {
        body.push_str(&format!(
            "<p class=\"note\">Enter your email address and we will send you a link to choose a new password.</p>\
             <form method=\"post\" action=\"{prefix}/forgot-password\">{}<button type=\"submit\">Send link</button></form>",
            text_input("Email", "email", "email", "", true, "email")
        ));
    }
    page(status, "Forgot your password?", &body)
}

/// `GET /reset-password?token=`.
pub fn reset_password(
    site: &Site,
    values: &FormValues,
    error: Option<&str>,
    status: StatusCode,
) -> Page {
    let prefix = esc(&site.prefix);
    let body = format!(
        "<h1>Choose a new password</h1>{}<form method=\"post\" action=\"{prefix}/reset-password\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\">{}<p class=\"note\">At least {} characters.</p>\
         <button type=\"submit\">Set password</button></form>",
        error_box(error),
        esc(&values.token),
        text_input("New password", "password", "password", "", true, "new-password"),
        site.password_min_length,
    );
    page(status, "Choose a new password", &body)
}

/// `GET /verify-email?token=`: a button, so that link scanners fetching the URL confirm nothing.
pub fn verify_email(
    site: &Site,
    values: &FormValues,
    error: Option<&str>,
    status: StatusCode,
) -> Page {
    let body = format!(
        "<h1>Confirm your email address</h1>{}<form method=\"post\" action=\"{}/verify-email\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\"><button type=\"submit\">Confirm</button></form>",
        error_box(error),
        esc(&site.prefix),
        esc(&values.token),
    );
    page(status, "Confirm your email address", &body)
}

/// Asked when another site sent the browser to the logout address: a button signs out (a
/// same-origin post), so a link or an image elsewhere cannot.
pub fn confirm_logout(site: &Site, rd: &str) -> Page {
    let body = format!(
        "<h1>Sign out?</h1><p>Another site sent you here to sign out.</p>\
         <form method=\"post\" action=\"{}/logout\">{}<button type=\"submit\">Sign out</button></form>\
         <p><a href=\"{}/\">Stay signed in</a></p>",
        esc(&site.prefix),
        hidden_rd(rd),
        esc(&site.prefix),
    );
    page(StatusCode::OK, "Sign out?", &body)
}

/// A short page with a message and a link to the login page.
pub fn notice(site: &Site, status: StatusCode, title: &str, message: &str) -> Page {
    let body = format!(
        "<h1>{}</h1><p role=\"status\">{}</p><p><a href=\"{}/login\">Sign in</a></p>",
        esc(title),
        esc(message),
        esc(&site.prefix)
    );
    page(status, title, &body)
}

fn session_row(key: &SessionKey, s: &SessionRecord, current: bool) -> String {
    let when = when(s.last_seen);
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&when),
        esc(s.ip.as_deref().unwrap_or("")),
        esc(s.user_agent.as_deref().unwrap_or("")),
        if current {
            "this device".to_string()
        } else {
            esc(&session::public_id(key)[..8])
        }
    )
}

/// `GET /` (the account page) for a logged-in user, with their live sessions and linked
/// provider identities (read by the caller, so a storage failure is an error page, never an
/// empty list).
pub fn account(
    site: &Site,
    auth: &LiveSession,
    sessions: &[(SessionKey, SessionRecord)],
    linked: &[IdentityRecord],
    notice: Option<&str>,
) -> Page {
    let prefix = esc(&site.prefix);
    let u = &auth.user;
    let mut body = String::from("<h1>Your account</h1>");
    if let Some(n) = notice {
        body.push_str(&format!("<p class=\"note\" role=\"status\">{}</p>", esc(n)));
    }
    body.push_str(&format!(
        "<p>Signed in as <strong>{}</strong>{}.</p><table><tr><th>Email</th><td>{}</td></tr>\
         <tr><th>Name</th><td>{}</td></tr><tr><th>Role</th><td>{}</td></tr><tr><th>Groups</th><td>{}</td></tr></table>",
        esc(auth.identity.user_header()),
        if u.username.is_some() { format!(" ({})", esc(&u.email)) } else { String::new() },
        esc(&u.email),
        esc(auth.identity.name.as_deref().unwrap_or("")),
        esc(u.role.as_str()),
        esc(&u.groups.join(", ")),
    ));
    let mut rows = String::new();
    for (key, s) in sessions {
        rows.push_str(&session_row(key, s, *key == auth.key));
    }
    body.push_str(&format!(
        "<h2>Sessions</h2><table><tr><th>Last seen</th><th>IP</th><th>Browser</th><th></th></tr>{rows}</table>"
    ));
    let providers = &site.providers;
    if !providers.is_empty() {
        body.push_str("<h2>Sign-in providers</h2><table>");
        for p in providers {
            let row = match linked.iter().find(|i| i.provider == p.name) {
                Some(i) => format!(
                    "linked{} <form method=\"post\" action=\"{prefix}/unlink\" class=\"inline\">\
                     <input type=\"hidden\" name=\"provider\" value=\"{}\">\
                     <button type=\"submit\">Unlink</button></form>",
                    i.email
                        .as_deref()
                        .map(|e| format!(" ({})", esc(e)))
                        .unwrap_or_default(),
                    esc(&p.name)
                ),
                None => format!(
                    "<a href=\"{prefix}/oauth/{}?link=1\">Link</a>",
                    esc(&p.name)
                ),
            };
            body.push_str(&format!(
                "<tr><th>{}</th><td>{row}</td></tr>",
                esc(&p.display_name)
            ));
        }
        body.push_str("</table>");
    }
    body.push_str(&format!(
        "<h2>Change password</h2><form method=\"post\" action=\"{prefix}/change-password\">{}{}\
         <button type=\"submit\">Change password</button></form>",
        text_input(
            "Current password",
            "currentPassword",
            "password",
            "",
            true,
            "current-password"
        ),
        text_input(
            "New password",
            "newPassword",
            "password",
            "",
            true,
            "new-password"
        ),
    ));
    body.push_str(&format!(
        "<form method=\"post\" action=\"{prefix}/logout\"><button type=\"submit\">Sign out</button></form>\
         <form method=\"post\" action=\"{prefix}/logout-all\"><button type=\"submit\" class=\"secondary\">Sign out everywhere</button></form>"
    ));
    page(StatusCode::OK, "Your account", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_values_and_set_a_strict_csp() {
        let r = page(
            StatusCode::OK,
            "<t>",
            &format!("<p>{}</p>", esc("\"><script>alert(1)</script>")),
        );
        let body = &r.html;
        assert!(!body.contains("<script>"), "{body}");
        assert!(body.contains("&lt;t&gt;"));
        let policy = Page::csp();
        assert!(
            policy.starts_with("default-src 'none'; style-src 'sha256-"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe"));
    }

    #[test]
    fn hidden_rd_is_escaped() {
        let h = hidden_rd("https://a.example.com/?\"><x");
        assert!(h.contains("&quot;&gt;&lt;x") && !h.contains("\"><x"), "{h}");
        assert_eq!(rd_query("https://a/b?c"), "?rd=https%3A%2F%2Fa%2Fb%3Fc");
    }
}
