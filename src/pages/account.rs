//! The account page: who you are, your profile, your password, where you are signed in, and
//! the providers you sign in with.

use http::StatusCode;

use super::describe::{ago, browser, date};
use super::tokens::Whose;
use super::{
    alert, button_form, done, esc, hidden, page, passkey_button, passkey_script,
    username_for_managers, Field, Page, Problem, Site, Width,
};
use crate::config::FieldMode;
use crate::store::{IdentityRecord, SessionRecord, UserRecord};

/// One of the user's sessions, as the page lists it.
#[derive(Debug, Clone)]
pub struct SessionLine {
    /// The id the API names it by (never the secret).
    pub public_id: String,
    /// The session of this request.
    pub current: bool,
    pub record: SessionRecord,
}

/// Everything the account page shows, read by the caller.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub user: UserRecord,
    /// The name the gateway sends upstream.
    pub display_name: String,
    /// This device first, then the most recently active.
    pub sessions: Vec<SessionLine>,
    pub linked: Vec<IdentityRecord>,
    pub now: i64,
    /// An authenticator app is set up.
    pub totp: bool,
    /// Recovery codes not used yet.
    pub recovery_left: usize,
    /// The user's passkeys.
    pub passkeys: Vec<crate::store::PasskeyRecord>,
    /// The user's API tokens.
    pub tokens: Vec<crate::store::ApiTokenRecord>,
    /// The role and groups a new token may be limited to (the user's own).
    pub token_groups: Vec<String>,
}

/// The form a problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Profile,
    Password,
    TwoFactor,
    Tokens,
}

/// Order sessions for the page: this device first, then by last activity.
pub fn ordered(mut lines: Vec<SessionLine>) -> Vec<SessionLine> {
    lines.sort_by(|a, b| {
        b.current
            .cmp(&a.current)
            .then(b.record.last_seen.cmp(&a.record.last_seen))
    });
    lines
}

fn session_item(site: &Site, line: &SessionLine, now: i64) -> String {
    let s = &line.record;
    let mut meta = Vec::new();
    if let Some(ip) = s.ip.as_deref().filter(|ip| !ip.is_empty()) {
        meta.push(esc(ip));
    }
    meta.push(if line.current {
        "active now".to_string()
    } else {
        format!("active {}", ago(s.last_seen, now))
    });
    meta.push(format!("signed in {}", date(s.created_at)));
    // This device signs out with the buttons at the end of the page.
    let action = if line.current {
        String::new()
    } else {
        button_form(
            &format!("{}/sessions/{}/end", site.prefix, line.public_id),
            "",
            "End session",
            "secondary small",
        )
    };
    format!(
        "<li><div><strong>{}</strong>{}<div class=\"meta\">{}</div></div>{action}</li>",
        esc(&browser(s.user_agent.as_deref())),
        if line.current {
            "<span class=\"chip\">This device</span>"
        } else {
            ""
        },
        meta.join(" · "),
    )
}

fn profile_form(site: &Site, user: &UserRecord, problem: Option<&Problem>) -> String {
    let f = &site.fields;
    let mut fields = String::new();
    for (mode, label, name, value, auto) in [
        (
            f.username,
            "Username",
            "username",
            &user.username,
            "username",
        ),
        (
            f.full_name,
            "Full name",
            "fullName",
            &user.full_name,
            "name",
        ),
        (
            f.first_name,
            "First name",
            "firstName",
            &user.first_name,
            "given-name",
        ),
        (
            f.last_name,
            "Last name",
            "lastName",
            &user.last_name,
            "family-name",
        ),
    ] {
        if mode == FieldMode::Off {
            continue;
        }
        let mut field = Field::new(name, label, "text", auto).value(value.as_deref().unwrap_or(""));
        if mode == FieldMode::Optional {
            field = field.optional();
        }
        fields.push_str(&field.html(problem));
    }
    if fields.is_empty() {
        return String::new();
    }
    format!(
        "<h2 id=\"profile\">Profile</h2>{}<form method=\"post\" action=\"{}\">{fields}<button type=\"submit\" class=\"secondary\">Save profile</button></form>",
        alert(problem),
        site.href("/profile"),
    )
}

fn password_form(site: &Site, user: &UserRecord, problem: Option<&Problem>) -> String {
    let mut out = String::from("<h2 id=\"password\">Password</h2>");
    if user.password_hash.is_none() {
        out.push_str("<p>You sign in with a provider, so this account has no password.</p>");
        if site.mail {
            out.push_str(&format!(
                "<p><a href=\"{}\">Set a password by email</a></p>",
                site.href("/forgot-password")
            ));
        }
        return out;
    }
    out.push_str(&alert(problem));
    out.push_str(&format!(
        "<form method=\"post\" action=\"{}\">{}{}{}<p class=\"hint\">Changing it signs you out everywhere else.</p>\
         <button type=\"submit\" class=\"secondary\">Change password</button></form>",
        site.href("/change-password"),
        username_for_managers(&user.email),
        Field::new("currentPassword", "Current password", "password", "current-password").html(problem),
        Field::new("newPassword", "New password", "password", "new-password")
            .hint(format!("At least {} characters.", site.password_min_length))
            .html(problem),
    ));
    out
}

fn two_factor(site: &Site, view: &AccountView, problem: Option<&Problem>) -> String {
    let mut out = String::from("<h2 id=\"two-factor\">Two-step verification</h2>");
    if !view.totp {
        out.push_str(&format!(
            "<p>Off. With it on, signing in also asks for a code from an app on your phone.</p>\
             <form method=\"post\" action=\"{}\"><button type=\"submit\" class=\"secondary\">Set up an authenticator app</button></form>",
            site.href("/2fa/totp/setup")
        ));
        return out;
    }
    out.push_str(&format!(
        "<p>On: an authenticator app · {} recovery {} left.</p>{}",
        view.recovery_left,
        if view.recovery_left == 1 {
            "code"
        } else {
            "codes"
        },
        alert(problem)
    ));
    let password = Field::new("password", "Your password", "password", "current-password");
    out.push_str(&format!(
        "<form method=\"post\" action=\"{}\">{}{}<div class=\"row\">\
         <button type=\"submit\" class=\"secondary\" formaction=\"{}\">New recovery codes</button>\
         <button type=\"submit\" class=\"danger\">Turn off</button></div></form>",
        site.href("/2fa/totp/remove"),
        username_for_managers(&view.user.email),
        password.html(problem),
        site.href("/2fa/recovery-codes"),
    ));
    out
}

fn passkeys(site: &Site, view: &AccountView) -> String {
    if !site.passkeys {
        return String::new();
    }
    let mut out = String::from(
        "<h2 id=\"passkeys\">Passkeys</h2><p>A passkey signs you in with your fingerprint, face or device PIN instead of a password, and counts as two-step verification.</p>",
    );
    if !view.passkeys.is_empty() {
        out.push_str("<ul class=\"items\">");
        for p in &view.passkeys {
            let used = p
                .last_used_at
                .map(|t| format!("used {}", ago(t, view.now)))
                .unwrap_or_else(|| "not used yet".into());
            out.push_str(&format!(
                "<li><div><strong>{}</strong><div class=\"meta\">added {} · {used}</div></div>{}</li>",
                esc(&p.name),
                date(p.created_at),
                button_form(
                    &format!("{}/passkeys/{}/delete", site.prefix, p.id),
                    "",
                    "Delete",
                    "danger small"
                ),
            ));
        }
        out.push_str("</ul>");
    }
    out.push_str(&format!(
        "<div data-passkey-only hidden><div class=\"field\"><label for=\"f-passkey-name\">Name of the new passkey</label>\
         <input id=\"f-passkey-name\" type=\"text\" value=\"\" autocomplete=\"off\" placeholder=\"Laptop\"></div></div>{}{}",
        passkey_button(
            site,
            "register",
            "Add a passkey",
            &format!("{}/?done=passkey-added", site.prefix),
            "f-passkey-name"
        ),
        passkey_script(),
    ));
    out
}

fn tokens(site: &Site, view: &AccountView, problem: Option<&Problem>) -> String {
    format!(
        "<h2 id=\"tokens\">API tokens</h2><p>A token lets a script, a command-line tool or an app reach what you may reach, without your password. Revoke one as soon as it is no longer needed.</p>{}<h3>New token</h3>{}",
        super::tokens::list(site, &view.tokens, "/tokens", Whose::Yours, view.now),
        super::tokens::form(site, "/tokens/new", &view.token_groups, Whose::Yours, problem),
    )
}

fn providers(site: &Site, linked: &[IdentityRecord]) -> String {
    if site.providers.is_empty() {
        return String::new();
    }
    let mut out = String::from("<h2 id=\"providers\">Sign-in providers</h2><ul class=\"items\">");
    for p in &site.providers {
        let (state, action) = match linked.iter().find(|i| i.provider == p.name) {
            Some(i) => (
                format!(
                    "Linked{}",
                    i.email
                        .as_deref()
                        .map(|e| format!(" as {}", esc(e)))
                        .unwrap_or_default()
                ),
                button_form(
                    &format!("{}/unlink", site.prefix),
                    &hidden("provider", &p.name),
                    "Unlink",
                    "secondary small",
                ),
            ),
            None => (
                "Not linked".to_string(),
                format!(
                    "<a class=\"button secondary small\" href=\"{}\">Link</a>",
                    site.href(&format!("/oauth/{}?link=1", p.name))
                ),
            ),
        };
        out.push_str(&format!(
            "<li><div><strong>{}</strong><div class=\"meta\">{state}</div></div>{action}</li>",
            esc(&p.display_name)
        ));
    }
    out.push_str("</ul>");
    out
}

/// `GET /` (the account page). `notice`: what the last action did; `problem`: what went
/// wrong with one of its forms (shown at that form, with the page's status).
pub fn account(
    site: &Site,
    view: &AccountView,
    notice: Option<&str>,
    problem: Option<(Section, &Problem)>,
    status: StatusCode,
) -> Page {
    let u = &view.user;
    let at = |section| problem.filter(|(s, _)| *s == section).map(|(_, p)| p);
    let mut body = done(notice);
    body.push_str(&format!(
        "<p>Signed in as <strong>{}</strong></p><dl class=\"facts\"><dt>Email</dt><dd>{}{}</dd>\
         <dt>Role</dt><dd>{}</dd>{}</dl>",
        esc(&view.display_name),
        esc(&u.email),
        if u.email_verified {
            ""
        } else {
            " <span class=\"chip pending\">not confirmed</span>"
        },
        esc(u.role.as_str()),
        if u.groups.is_empty() {
            String::new()
        } else {
            format!("<dt>Groups</dt><dd>{}</dd>", esc(&u.groups.join(", ")))
        },
    ));
    if matches!(
        u.role,
        crate::store::Role::Owner | crate::store::Role::Admin
    ) {
        body.push_str(&format!(
            "<p><a href=\"{}\">Administration: people, invitations, settings</a></p>",
            site.href("/admin/users")
        ));
    }
    body.push_str(&profile_form(site, u, at(Section::Profile)));
    body.push_str(&password_form(site, u, at(Section::Password)));
    body.push_str(&two_factor(site, view, at(Section::TwoFactor)));
    body.push_str(&passkeys(site, view));
    body.push_str("<h2 id=\"sessions\">Where you are signed in</h2><ul class=\"items\">");
    for line in &view.sessions {
        body.push_str(&session_item(site, line, view.now));
    }
    body.push_str("</ul>");
    body.push_str(&tokens(site, view, at(Section::Tokens)));
    body.push_str(&providers(site, &view.linked));
    body.push_str(&format!(
        "<h2>Sign out</h2><div class=\"row\">{}{}</div>",
        button_form(&format!("{}/logout", site.prefix), "", "Sign out", ""),
        button_form(
            &format!("{}/logout-all", site.prefix),
            "",
            "Sign out everywhere",
            "secondary"
        ),
    ));
    page(site, status, "Your account", Width::Wide, &body)
}
