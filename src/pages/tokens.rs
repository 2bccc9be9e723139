//! API tokens on the pages, for a person's own (the account page) and for a service account
//! (its admin page): the list with a Revoke button for each, the form that makes one, and the
//! page that shows a new token once.

use http::StatusCode;

use super::describe::{ago, date};
use super::{
    alert, button_form, checkboxes, copy_field, esc, links_list, page, select, Field, Page,
    Problem, Site, Width,
};
use crate::store::ApiTokenRecord;

/// Whose tokens a page is about, for its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The signed-in person's own.
    Yours,
    /// A service account's, as an administrator sees them.
    Account,
}

impl Whose {
    fn all_access(self) -> &'static str {
        match self {
            Whose::Yours => "all your access",
            Whose::Account => "all the account's access",
        }
    }
}

/// The lifetimes the form offers (`expiresIn` as the API takes it, words), and the one chosen
/// unless the person picks another.
const LIFETIMES: [(&str, &str); 4] = [
    ("30d", "In 30 days"),
    ("90d", "In 90 days"),
    ("365d", "In 1 year"),
    ("never", "Never"),
];
const DEFAULT_LIFETIME: &str = "90d";

/// What a token may reach, in words.
fn access(groups: Option<&[String]>, whose: Whose) -> String {
    match groups {
        None => whose.all_access().to_string(),
        Some([]) => "signing in only (no role or group)".to_string(),
        Some(g) => format!("only {}", g.join(", ")),
    }
}

/// When a token stops working, in words (`expired` once it has).
fn expiry(expires_at: Option<i64>, now: i64) -> String {
    match expires_at {
        None => "never expires".into(),
        Some(t) if t <= now => "expired".into(),
        Some(t) => format!("expires {}", date(t)),
    }
}

/// The tokens, newest first, each with a Revoke button posting to `{revoke_base}/{id}/revoke`
/// (`revoke_base` under the prefix).
pub fn list(
    site: &Site,
    tokens: &[ApiTokenRecord],
    revoke_base: &str,
    whose: Whose,
    now: i64,
) -> String {
    if tokens.is_empty() {
        return "<p class=\"muted\">No tokens yet.</p>".into();
    }
    let mut sorted: Vec<&ApiTokenRecord> = tokens.iter().collect();
    sorted.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    let mut out = String::from("<ul class=\"items\">");
    for t in sorted {
        let expired = t.expires_at.is_some_and(|e| e <= now);
        let used = t
            .last_used_at
            .map(|u| format!("last used {}", ago(u, now)))
            .unwrap_or_else(|| "never used".into());
        out.push_str(&format!(
            "<li><div><strong>{}</strong>{}<div class=\"meta\"><code>{}…</code> · {} · created {} · {} · {used}</div></div>{}</li>",
            esc(&t.name),
            if expired {
                " <span class=\"chip pending\">expired</span>"
            } else {
                ""
            },
            esc(&t.prefix),
            esc(&access(t.groups.as_deref(), whose)),
            date(t.created_at),
            expiry(t.expires_at, now),
            button_form(
                &format!("{}{revoke_base}/{}/revoke", site.prefix, t.id),
                "",
                "Revoke",
                "danger small"
            ),
        ));
    }
    out.push_str("</ul>");
    out
}

/// The form that makes a token, posting to `action` (under the prefix): a name, a lifetime,
/// and optionally the role and groups (`choices`, the owner's) to limit it to.
pub fn form(
    site: &Site,
    action: &str,
    choices: &[String],
    whose: Whose,
    problem: Option<&Problem>,
) -> String {
    let lifetimes: Vec<(String, String)> = LIFETIMES
        .iter()
        .map(|(v, t)| (v.to_string(), t.to_string()))
        .collect();
    format!(
        "{}<form method=\"post\" action=\"{}\">{}{}{}<button type=\"submit\" class=\"secondary\">Create token</button></form>",
        alert(problem),
        site.href(action),
        Field::new("name", "Name of the new token", "text", "off")
            .hint("What will use it, such as \u{201c}backup script\u{201d} or \u{201c}git on my laptop\u{201d}.")
            .html(problem),
        select("expiresIn", "Expires", &lifetimes, DEFAULT_LIFETIME, problem),
        checkboxes(
            "groups",
            "Limit it to",
            choices,
            &format!(
                "Tick none for {}, which follows later changes to the groups.",
                whose.all_access()
            ),
            problem
        ),
    )
}

/// A token just made, as its page shows it.
#[derive(Debug, Clone)]
pub struct Created {
    pub name: String,
    /// The secret, shown this once.
    pub token: String,
    pub groups: Option<Vec<String>>,
    pub expires_at: Option<i64>,
}

/// The page a new token is shown on, once: in a readonly field to copy, with what it may
/// reach, and the way back (`back`: an address under the site, and its words).
pub fn created(
    site: &Site,
    heading: &str,
    token: &Created,
    whose: Whose,
    back: (String, &str),
) -> Page {
    let mut body = format!(
        "<div class=\"notice\" role=\"status\"><p>Token <strong>{}</strong> created. Copy it now: it will not be shown again.</p></div>",
        esc(&token.name)
    );
    body.push_str(&copy_field(
        "f-token",
        "The new token",
        &token.token,
        "Send it as a bearer token (Authorization: Bearer …), or as the password of HTTP Basic sign-in with any user name.",
    ));
    body.push_str(&format!(
        "<dl class=\"facts\"><dt>Access</dt><dd>{}</dd><dt>Expires</dt><dd>{}</dd></dl>",
        esc(&access(token.groups.as_deref(), whose)),
        token.expires_at.map(date).unwrap_or_else(|| "never".into()),
    ));
    body.push_str(&links_list(&[back]));
    page(site, StatusCode::CREATED, heading, Width::Narrow, &body)
}
