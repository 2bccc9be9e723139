//! The administration pages under `{prefix}/admin/`: people, service accounts, invitations,
//! the audit log and the settings. Plain forms that post to the gateway's own API.

use http::StatusCode;

use super::describe::{ago, date, moment};
use super::tokens::{self, Whose};
use super::{
    alert, button_form, done, esc, hidden, links_list, page, query_value, select, Field, Page,
    Problem, Site, Width,
};
use crate::config::Registration;
use crate::store::{ApiTokenRecord, AuditRecord, InviteRecord, Role, UserRecord, UserStatus};

/// The admin section a page belongs to (its tab).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Users,
    ServiceAccounts,
    Invites,
    Audit,
    Settings,
}

fn tabs(site: &Site, current: Tab) -> String {
    let mut out = String::from("<nav class=\"tabs\" aria-label=\"Administration\">");
    for (tab, path, text) in [
        (Tab::Users, "/admin/users", "People"),
        (
            Tab::ServiceAccounts,
            "/admin/service-accounts",
            "Service accounts",
        ),
        (Tab::Invites, "/admin/invites", "Invitations"),
        (Tab::Audit, "/admin/audit", "Audit log"),
        (Tab::Settings, "/admin/settings", "Settings"),
    ] {
        out.push_str(&format!(
            "<a href=\"{}\"{}>{text}</a>",
            site.href(path),
            if tab == current {
                " aria-current=\"page\""
            } else {
                ""
            }
        ));
    }
    out.push_str(&format!(
        "<a href=\"{}\">Your account</a></nav>",
        site.href("/")
    ));
    out
}

fn admin_page(site: &Site, tab: Tab, heading: &str, status: StatusCode, body: &str) -> Page {
    let body = format!("{}{body}", tabs(site, tab));
    page(site, status, heading, Width::Wide, &body)
}

fn status_chip(status: UserStatus) -> &'static str {
    match status {
        UserStatus::Active => "",
        UserStatus::Pending => "<span class=\"chip pending\">waiting for approval</span>",
        UserStatus::Disabled => "<span class=\"chip\">disabled</span>",
    }
}

fn display_name(u: &UserRecord) -> String {
    u.full_name
        .clone()
        .or_else(|| match (&u.first_name, &u.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(n), None) | (None, Some(n)) => Some(n.clone()),
            _ => None,
        })
        .or_else(|| u.username.clone())
        .unwrap_or_else(|| u.email.clone())
}

/// What the people list is filtered by.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub q: String,
    /// `active`, `pending`, `disabled`, or empty for all.
    pub status: String,
}

/// `GET /admin/users`: everyone, searchable and filtered by status; pending people can be
/// approved from the list.
pub fn users(
    site: &Site,
    users: &[UserRecord],
    filter: &UserFilter,
    notice: Option<&str>,
    now: i64,
) -> Page {
    let mut body = done(notice);
    let statuses = [
        ("", "Everyone"),
        ("pending", "Waiting for approval"),
        ("active", "Active"),
        ("disabled", "Disabled"),
    ]
    .map(|(v, t)| (v.to_string(), t.to_string()));
    body.push_str(&format!(
        "<form method=\"get\" action=\"{}\" class=\"row\" role=\"search\">{}{}<button type=\"submit\" class=\"secondary\">Search</button></form>",
        site.href("/admin/users"),
        Field::new("q", "Search by name or email", "search", "off")
            .value(&filter.q)
            .unmarked()
            .html(None),
        select("status", "Show", &statuses, &filter.status, None),
    ));
    if users.is_empty() {
        body.push_str("<p>Nobody matches.</p>");
    } else {
        body.push_str(&format!(
            "<p class=\"muted\">{} {}</p><ul class=\"items\">",
            users.len(),
            if users.len() == 1 { "person" } else { "people" }
        ));
        for u in users {
            let last = u
                .last_login_at
                .map(|t| format!("last signed in {}", ago(t, now)))
                .unwrap_or_else(|| "never signed in".into());
            let approve = if u.status == UserStatus::Pending {
                button_form(
                    &format!("{}/admin/users/{}/approve", site.prefix, u.id),
                    "",
                    "Approve",
                    "small",
                )
            } else {
                String::new()
            };
            // A service account never signs in: its role says what it is instead.
            let about = if u.role == Role::Service {
                "service account".to_string()
            } else {
                format!("{} · {last}", esc(u.role.as_str()))
            };
            body.push_str(&format!(
                "<li><div><a href=\"{}\"><strong>{}</strong></a>{}<div class=\"meta\">{} · {about}</div></div>{approve}</li>",
                site.href(&format!("/admin/users/{}", u.id)),
                esc(&display_name(u)),
                status_chip(u.status),
                esc(&u.email),
            ));
        }
        body.push_str("</ul>");
    }
    admin_page(site, Tab::Users, "People", StatusCode::OK, &body)
}

/// What the person page shows besides the record.
#[derive(Debug, Clone)]
pub struct UserDetail {
    pub user: UserRecord,
    pub sessions: usize,
    /// Names of the providers the account is linked to.
    pub providers: Vec<String>,
    /// The administrator looking may make owners (they are one).
    pub actor_is_owner: bool,
}

/// `GET /admin/users/{id}`: edit role, groups, status and expiry; sign out everywhere; delete.
pub fn user(
    site: &Site,
    detail: &UserDetail,
    notice: Option<&str>,
    problem: Option<&Problem>,
    status: StatusCode,
    now: i64,
) -> Page {
    let u = &detail.user;
    let base = format!("{}/admin/users/{}", site.prefix, u.id);
    let mut body = done(notice);
    body.push_str(&alert(problem));
    body.push_str(&format!(
        "<dl class=\"facts\"><dt>Email</dt><dd>{}{}</dd>{}<dt>Created</dt><dd>{}</dd><dt>Last sign-in</dt><dd>{}</dd>\
         <dt>Signed in on</dt><dd>{} {}</dd>{}</dl>",
        esc(&u.email),
        if u.email_verified { "" } else { " <span class=\"chip\">not confirmed</span>" },
        u.username
            .as_deref()
            .map(|n| format!("<dt>Username</dt><dd>{}</dd>", esc(n)))
            .unwrap_or_default(),
        date(u.created_at),
        u.last_login_at
            .map(|t| ago(t, now))
            .unwrap_or_else(|| "never".into()),
        detail.sessions,
        if detail.sessions == 1 { "device" } else { "devices" },
        if detail.providers.is_empty() {
            String::new()
        } else {
            format!("<dt>Providers</dt><dd>{}</dd>", esc(&detail.providers.join(", ")))
        },
    ));
    if u.status == UserStatus::Pending {
        body.push_str(&button_form(
            &format!("{base}/approve"),
            &hidden("back", "person"),
            "Approve",
            "",
        ));
    }
    let service = u.role == Role::Service;
    // A service account's role is fixed: the form has none to change.
    let role = if service {
        "<p>Role: service account (fixed).</p>".to_string()
    } else {
        let mut roles = vec![("user", "User"), ("admin", "Administrator")];
        if detail.actor_is_owner || u.role == Role::Owner {
            roles.push(("owner", "Owner"));
        }
        let roles: Vec<(String, String)> = roles
            .into_iter()
            .map(|(v, t)| (v.to_string(), t.to_string()))
            .collect();
        select("role", "Role", &roles, u.role.as_str(), problem)
    };
    let statuses = [
        ("active", "Active"),
        ("pending", "Waiting for approval"),
        ("disabled", "Disabled (cannot sign in)"),
    ]
    .map(|(v, t)| (v.to_string(), t.to_string()));
    let groups = u.groups.join(", ");
    let expiry = u.expires_at.map(date_input).unwrap_or_default();
    body.push_str(&format!(
        "<h2>Access</h2><form method=\"post\" action=\"{}\">{}{}{}{}<button type=\"submit\">Save changes</button></form>",
        esc(&base),
        role,
        select("status", "Status", &statuses, u.status.as_str(), problem),
        Field::new("groups", "Groups", "text", "off")
            .value(&groups)
            .optional()
            .hint("Separated by commas, for example: family, media.")
            .html(problem),
        Field::new("expiresAt", "Account expires on", "date", "off")
            .value(&expiry)
            .optional()
            .hint("Leave empty to keep the account without an end date.")
            .html(problem),
    ));
    if service {
        body.push_str(&format!(
            "<h2>API tokens</h2><p>A service account never signs in: it reaches things only with its tokens. <a href=\"{}\">Manage its tokens</a></p>",
            site.href(&format!("/admin/service-accounts/{}", u.id))
        ));
    } else {
        person_sections(&mut body, &base);
    }
    body.push_str(&format!(
        "<h2>Delete</h2><p><a href=\"{}\">Delete this account…</a></p>",
        esc(&format!("{base}/delete"))
    ));
    admin_page(site, Tab::Users, &display_name(u), status, &body)
}

/// What only a person has: sessions to end and second factors to reset.
fn person_sections(body: &mut String, base: &str) {
    body.push_str(&format!(
        "<h2>Sessions</h2><p>Ends every session of this person: they must sign in again.</p>{}",
        button_form(
            &format!("{base}/revoke"),
            "",
            "Sign out everywhere",
            "secondary"
        )
    ));
    body.push_str(&format!(
        "<h2>Two-step verification</h2><p>For someone who lost their phone and their recovery codes: removes their authenticator app, recovery codes and passkeys, and signs them out everywhere.</p>{}",
        button_form(&format!("{base}/reset-2fa"), "", "Reset two-step verification", "secondary")
    ));
}

/// A Unix time as the value of a date field (`YYYY-MM-DD`, UTC).
fn date_input(secs: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// `GET /admin/users/{id}/delete`: the question before deleting.
pub fn confirm_delete(site: &Site, u: &UserRecord) -> Page {
    let base = format!("{}/admin/users/{}", site.prefix, u.id);
    let body = format!(
        "<p>Delete <strong>{}</strong> ({})? Their sessions end now and the account cannot be restored.</p><div class=\"row\">{}<a class=\"button secondary\" href=\"{}\">Keep it</a></div>",
        esc(&display_name(u)),
        esc(&u.email),
        button_form(&format!("{base}/delete"), "", "Delete account", "danger"),
        esc(&base),
    );
    admin_page(site, Tab::Users, "Delete account?", StatusCode::OK, &body)
}

/// An invitation just made: its link, shown for copying.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub link: String,
}

/// `GET /admin/invites`: make one, see them, delete them.
pub fn invites(
    site: &Site,
    list: &[InviteRecord],
    notice: Option<&str>,
    created: Option<&NewInvite>,
    problem: Option<&Problem>,
    status: StatusCode,
    now: i64,
) -> Page {
    let mut body = done(notice);
    if let Some(new) = created {
        body.push_str(&format!(
            "<div class=\"notice\" role=\"status\"><p>Invitation created. Send this link to the person you invite:</p>\
             <div class=\"field\"><label for=\"f-link\">Invitation link</label><input id=\"f-link\" class=\"copy\" type=\"text\" readonly value=\"{}\"></div></div>",
            esc(&new.link)
        ));
    }
    body.push_str(&alert(problem));
    let roles =
        [("user", "User"), ("admin", "Administrator")].map(|(v, t)| (v.to_string(), t.to_string()));
    let expiry = [
        ("7d", "In 7 days"),
        ("1d", "In 1 day"),
        ("30d", "In 30 days"),
        ("1h", "In 1 hour"),
    ]
    .map(|(v, t)| (v.to_string(), t.to_string()));
    body.push_str(&format!(
        "<h2>New invitation</h2><form method=\"post\" action=\"{}\"><div class=\"row\">{}{}</div>{}{}<button type=\"submit\">Create invitation</button></form>",
        site.href("/admin/invites/new"),
        select("role", "Role", &roles, "user", problem),
        select("expiresIn", "Expires", &expiry, "7d", problem),
        Field::new("uses", "How many people may use it", "number", "off")
            .value("1")
            .html(problem),
        Field::new("groups", "Groups", "text", "off")
            .optional()
            .hint("Separated by commas.")
            .html(problem),
    ));
    body.push_str("<h2>Open invitations</h2>");
    let open: Vec<&InviteRecord> = list.iter().filter(|i| i.usable(now)).collect();
    if open.is_empty() {
        body.push_str("<p>None.</p>");
    } else {
        body.push_str("<ul class=\"items\">");
        for i in open {
            let link = format!("{}/register?invite={}", site.prefix, query_value(&i.id));
            body.push_str(&format!(
                "<li><div><strong>{}</strong>{}<div class=\"meta\">used {} of {} · {} · <a href=\"{}\">link</a></div></div>{}</li>",
                esc(i.role.as_str()),
                if i.groups.is_empty() { String::new() } else { format!(" · {}", esc(&i.groups.join(", "))) },
                i.used,
                i.max_uses,
                i.expires_at
                    .map(|t| format!("expires {}", moment(t)))
                    .unwrap_or_else(|| "never expires".into()),
                esc(&link),
                button_form(
                    &format!("{}/admin/invites/{}/delete", site.prefix, query_value(&i.id)),
                    "",
                    "Delete",
                    "danger small"
                ),
            ));
        }
        body.push_str("</ul>");
    }
    admin_page(site, Tab::Invites, "Invitations", status, &body)
}

/// `GET /admin/audit[?before=]`: newest first, a page at a time.
pub fn audit(
    site: &Site,
    entries: &[(u64, AuditRecord)],
    names: &dyn Fn(&str) -> Option<String>,
    older: Option<u64>,
) -> Page {
    let mut body = String::new();
    if entries.is_empty() {
        body.push_str("<p>Nothing recorded yet.</p>");
    } else {
        body.push_str("<ul class=\"items\">");
        for (_, e) in entries {
            let who = |id: &Option<String>| {
                id.as_deref()
                    .map(|id| names(id).unwrap_or_else(|| id.to_string()))
            };
            let mut meta = vec![moment(e.at)];
            if let Some(actor) = who(&e.actor) {
                meta.push(format!("by {}", esc(&actor)));
            }
            if let Some(target) = who(&e.target) {
                meta.push(format!("for {}", esc(&target)));
            }
            if let Some(ip) = &e.ip {
                meta.push(esc(ip));
            }
            body.push_str(&format!(
                "<li><div><strong>{}</strong>{}<div class=\"meta\">{}</div></div></li>",
                esc(&e.event.replace('_', " ")),
                e.detail
                    .as_deref()
                    .map(|d| format!(" <code>{}</code>", esc(d)))
                    .unwrap_or_default(),
                meta.join(" · ")
            ));
        }
        body.push_str("</ul>");
    }
    let mut links = Vec::new();
    if let Some(id) = older {
        links.push((
            format!("{}/admin/audit?before={id}", site.prefix),
            "Older entries",
        ));
    }
    links.push((format!("{}/admin/audit", site.prefix), "Newest entries"));
    body.push_str(&links_list(&links));
    admin_page(site, Tab::Audit, "Audit log", StatusCode::OK, &body)
}

/// The registration settings: the file's values and the database's overrides.
#[derive(Debug, Clone)]
pub struct SettingsView {
    pub file_registration: Registration,
    pub file_native_signin: bool,
    pub registration_override: Option<String>,
    pub native_override: Option<bool>,
    /// Password sign-in may be turned off (a provider is configured).
    pub native_may_be_off: bool,
}

/// `GET /admin/settings`: each setting follows the file unless overridden here.
pub fn settings(
    site: &Site,
    view: &SettingsView,
    notice: Option<&str>,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Page {
    let mut body = done(notice);
    body.push_str(&alert(problem));
    body.push_str("<p class=\"muted\">These settings come from the configuration file unless you choose a value here. A value chosen here wins over the file until you switch back.</p>");
    let mut registration = vec![(
        "file".to_string(),
        format!(
            "As in the file ({})",
            describe_registration(view.file_registration)
        ),
    )];
    for mode in [
        Registration::Open,
        Registration::Approval,
        Registration::Invite,
        Registration::Closed,
    ] {
        registration.push((
            mode.as_str().to_string(),
            describe_registration(mode).to_string(),
        ));
    }
    let onoff = |b: bool| if b { "on" } else { "off" };
    let mut native = vec![(
        "file".to_string(),
        format!("As in the file ({})", onoff(view.file_native_signin)),
    )];
    native.push(("on".into(), "On".into()));
    if view.native_may_be_off {
        native.push((
            "off".into(),
            "Off: providers only (the owner keeps a password)".into(),
        ));
    }
    let native_selected = match view.native_override {
        None => "file",
        Some(true) => "on",
        Some(false) => "off",
    };
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">{}{}<button type=\"submit\">Save settings</button></form>",
        site.href("/admin/settings"),
        select(
            "registration",
            "Who may create an account",
            &registration,
            view.registration_override.as_deref().unwrap_or("file"),
            problem
        ),
        select("nativeSignin", "Sign-in with a password", &native, native_selected, problem),
    ));
    admin_page(site, Tab::Settings, "Settings", status, &body)
}

fn describe_registration(mode: Registration) -> &'static str {
    match mode {
        Registration::Open => "anyone",
        Registration::Approval => "anyone, after an administrator approves",
        Registration::Invite => "only people with an invitation",
        Registration::Closed => "nobody",
    }
}

/// `GET /admin/service-accounts`: the accounts scripts and services use (with how many tokens
/// each holds), and the form that makes one.
pub fn service_accounts(
    site: &Site,
    accounts: &[(UserRecord, usize)],
    notice: Option<&str>,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Page {
    let mut body = done(notice);
    body.push_str("<p>A service account is for a script or a service rather than a person: it has no password and never signs in, and reaches what its groups allow only with the API tokens made for it here.</p>");
    if accounts.is_empty() {
        body.push_str("<p class=\"muted\">None yet.</p>");
    } else {
        body.push_str("<ul class=\"items\">");
        for (u, count) in accounts {
            body.push_str(&format!(
                "<li><div><a href=\"{}\"><strong>{}</strong></a>{}<div class=\"meta\">{} · {count} {}</div></div></li>",
                site.href(&format!("/admin/service-accounts/{}", u.id)),
                esc(&display_name(u)),
                status_chip(u.status),
                if u.groups.is_empty() {
                    "no groups".to_string()
                } else {
                    esc(&u.groups.join(", "))
                },
                if *count == 1 { "token" } else { "tokens" },
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str(&format!(
        "<h2>New service account</h2>{}<form method=\"post\" action=\"{}\">{}{}<button type=\"submit\">Create service account</button></form>",
        alert(problem),
        site.href("/admin/service-accounts/new"),
        Field::new("name", "Name", "text", "off")
            .hint("3 to 32 characters of a-z, 0-9, '_', '.', '-', such as backup-job.")
            .html(problem),
        Field::new("groups", "Groups", "text", "off")
            .optional()
            .hint("Separated by commas, for example: backups, media.")
            .html(problem),
    ));
    admin_page(
        site,
        Tab::ServiceAccounts,
        "Service accounts",
        status,
        &body,
    )
}

/// What a service account's page shows.
#[derive(Debug, Clone)]
pub struct ServiceAccountView {
    pub account: UserRecord,
    pub tokens: Vec<ApiTokenRecord>,
    /// The role and groups a new token may be limited to (the account's).
    pub token_groups: Vec<String>,
    pub now: i64,
}

/// `GET /admin/service-accounts/{id}`: its tokens with Revoke buttons, and the form that
/// makes one. Editing, disabling and deleting it are on its page under People.
pub fn service_account(
    site: &Site,
    view: &ServiceAccountView,
    notice: Option<&str>,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Page {
    let u = &view.account;
    let base = format!("/admin/service-accounts/{}", u.id);
    let mut body = done(notice);
    body.push_str(&format!(
        "<dl class=\"facts\"><dt>Groups</dt><dd>{}</dd><dt>Status</dt><dd>{}{}</dd><dt>Created</dt><dd>{}</dd></dl>",
        if u.groups.is_empty() {
            "none".to_string()
        } else {
            esc(&u.groups.join(", "))
        },
        esc(u.status.as_str()),
        if u.status == UserStatus::Active {
            ""
        } else {
            " · its tokens do not work until it is active again"
        },
        date(u.created_at),
    ));
    body.push_str(&format!(
        "<p><a href=\"{}\">Change its groups, disable or delete it</a></p>",
        site.href(&format!("/admin/users/{}", u.id))
    ));
    body.push_str("<h2 id=\"tokens\">API tokens</h2>");
    body.push_str(&tokens::list(
        site,
        &view.tokens,
        &format!("{base}/tokens"),
        Whose::Account,
        view.now,
    ));
    body.push_str("<h3>New token</h3>");
    body.push_str(&tokens::form(
        site,
        &format!("{base}/tokens/new"),
        &view.token_groups,
        Whose::Account,
        problem,
    ));
    admin_page(site, Tab::ServiceAccounts, &display_name(u), status, &body)
}
