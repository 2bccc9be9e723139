//! The HTML pages for people in a browser: data in, a [`Page`] out; they never read the store.
//! Every page is one card with the site's name (and logo), in light or dark as the browser
//! prefers, usable without JavaScript, every value escaped, styled only by the same-origin
//! stylesheet (`assets`), so the `Content-Security-Policy` allows nothing inline.

pub mod account;
pub mod admin;
pub mod assets;
pub mod auth;
pub mod describe;
pub mod palette;
pub mod tokens;
pub mod two_factor;

use std::collections::BTreeMap;

use http::StatusCode;

use crate::config::{ProfileFields, Registration};

pub use assets::Assets;

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

/// Percent-encode a value for a query string.
pub fn query_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `?rd=…` to carry a destination from page to page (nothing when there is none).
pub fn rd_query(rd: &str) -> String {
    if rd.is_empty() {
        String::new()
    } else {
        format!("?rd={}", query_value(rd))
    }
}

/// A finished page: what the API answers a browser with.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: StatusCode,
    /// The whole document.
    pub html: String,
}

/// The passkey ceremonies, for pages with passkey buttons.
const PASSKEY_SCRIPT: &str = include_str!("passkey.js");
/// Copy buttons, for a page that shows something to copy once.
const COPY_SCRIPT: &str = include_str!("copy.js");
/// The scripts the pages carry, inline, each allowed by its hash.
const SCRIPTS: [&str; 2] = [PASSKEY_SCRIPT, COPY_SCRIPT];

impl Page {
    /// The `Content-Security-Policy` every page is served with: the stylesheet, the logo and
    /// the icon come from the gateway itself; no inline style; no script but the pages' own
    /// (passkeys, copy buttons), by their hashes, which may talk to the gateway only.
    pub fn csp() -> &'static str {
        static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        CSP.get_or_init(|| {
            let hashes: Vec<String> = SCRIPTS
                .iter()
                .map(|s| format!("'sha256-{}'", script_hash(s)))
                .collect();
            format!(
                "default-src 'none'; style-src 'self'; img-src 'self'; script-src {}; \
                 connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
                hashes.join(" ")
            )
        })
    }
}

/// A script's SHA-256 as the CSP names it (base64).
fn script_hash(script: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()))
}

/// The passkey script, for a page with passkey buttons.
fn passkey_script() -> String {
    format!("<script>{PASSKEY_SCRIPT}</script>")
}

/// A readonly field holding text to copy (selectable without JavaScript), with a Copy button
/// the copy script shows.
fn copy_field(id: &str, label: &str, value: &str, hint: &str) -> String {
    format!(
        "<div class=\"field\"><label for=\"{id}\">{}</label><input id=\"{id}\" class=\"copy\" type=\"text\" readonly \
         value=\"{}\" autocomplete=\"off\" spellcheck=\"false\" aria-describedby=\"{id}-hint\">\
         <p class=\"hint\" id=\"{id}-hint\">{}</p></div>\
         <div data-copy-only hidden><button type=\"button\" class=\"secondary\" data-copy=\"{id}\" data-status=\"{id}-copied\">Copy</button>\
         <p class=\"hint\" id=\"{id}-copied\" role=\"status\"></p></div><script>{COPY_SCRIPT}</script>",
        esc(label),
        esc(value),
        esc(hint),
    )
}

/// A passkey button: hidden until the script (and a browser with passkeys) shows it.
fn passkey_button(site: &Site, kind: &str, text: &str, next: &str, name_field: &str) -> String {
    format!(
        "<div data-passkey-only hidden><button type=\"button\" class=\"secondary\" data-passkey=\"{kind}\" \
         data-base=\"{}\" data-next=\"{}\" data-status=\"pk-status-{kind}\" data-name=\"{name_field}\" hidden>{}</button>\
         <p class=\"field-error\" id=\"pk-status-{kind}\" role=\"alert\"></p></div>",
        esc(&site.prefix),
        esc(next),
        esc(text)
    )
}

/// A sign-in provider as the pages show it.
#[derive(Debug, Clone)]
pub struct ProviderLink {
    pub name: String,
    pub display_name: String,
}

/// The operator's branding, as the pages use it.
#[derive(Debug, Clone)]
pub struct Brand {
    /// The site's name: in every title and on every card.
    pub title: String,
    /// The logo's address, if there is one.
    pub logo_url: Option<String>,
    /// The stylesheet's address (versioned, so it can be cached for long).
    pub style_url: String,
    /// The icon's address.
    pub icon_url: String,
    /// Shown under every form.
    pub help_text: Option<String>,
}

/// What the pages need to know about the gateway, read by the caller for each page.
#[derive(Debug, Clone)]
pub struct Site {
    pub prefix: String,
    pub brand: Brand,
    pub providers: Vec<ProviderLink>,
    /// Mail is configured (forgot-password is offered).
    pub mail: bool,
    pub native_signin: bool,
    pub registration: Registration,
    pub owner_exists: bool,
    pub password_min_length: usize,
    pub fields: ProfileFields,
    /// Passkeys are on (a domain name and a secure origin).
    pub passkeys: bool,
}

impl Site {
    /// `{prefix}{path}`, escaped for an attribute.
    pub fn href(&self, path: &str) -> String {
        esc(&format!("{}{}", self.prefix, path))
    }
}

/// What went wrong with a form, in words for people: a summary, and problems at fields
/// (by the field's name in the form).
#[derive(Debug, Clone, Default)]
pub struct Problem {
    pub summary: String,
    pub fields: BTreeMap<String, String>,
    /// A way forward the page offers beside the message.
    pub next: Option<NextStep>,
}

impl Problem {
    /// A problem with no field to point at.
    pub fn says(summary: impl Into<String>) -> Problem {
        Problem {
            summary: summary.into(),
            ..Problem::default()
        }
    }

    fn at(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

/// A follow-up a page with a problem offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// The account's address is not confirmed: offer to send the mail again.
    ResendVerification { identifier: String },
    /// A mailed link was used or expired: offer to ask for a new one.
    NewResetLink,
}

/// A page's layout: the narrow card (forms) or the wide one (account, admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    Narrow,
    Wide,
}

/// A complete page: `heading` is the card's `<h1>` and, with the site's name, the title.
pub fn page(site: &Site, status: StatusCode, heading: &str, width: Width, body: &str) -> Page {
    let brand = &site.brand;
    // The logo, or the site's icon.
    let logo = format!(
        "<img src=\"{}\" alt=\"\">",
        esc(brand.logo_url.as_deref().unwrap_or(&brand.icon_url))
    );
    let help = brand
        .help_text
        .as_deref()
        .map(|t| format!("<footer class=\"help\">{}</footer>", esc(t)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\"><meta name=\"robots\" content=\"noindex\">\
         <title>{heading} · {title}</title><link rel=\"stylesheet\" href=\"{style}\">\
         <link rel=\"icon\" href=\"{icon}\"></head>\n<body><main{class}>\
         <a class=\"brand\" href=\"{home}\">{logo}<span>{title}</span></a>\n<h1>{heading}</h1>\n{body}\n{help}</main></body></html>\n",
        heading = esc(heading),
        title = esc(&brand.title),
        style = esc(&brand.style_url),
        icon = esc(&brand.icon_url),
        class = if width == Width::Wide { " class=\"wide\"" } else { "" },
        home = site.href("/"),
    );
    Page { status, html }
}

/// A short page with a message and links onwards (`(href, text)`, already under the site).
pub fn notice(
    site: &Site,
    status: StatusCode,
    heading: &str,
    message: &str,
    links: &[(String, &str)],
) -> Page {
    let mut body = format!("<p role=\"status\">{}</p>", esc(message));
    body.push_str(&links_list(links));
    page(site, status, heading, Width::Narrow, &body)
}

/// Links under a form.
fn links_list(links: &[(String, &str)]) -> String {
    if links.is_empty() {
        return String::new();
    }
    let mut out = String::from("<div class=\"links\">");
    for (href, text) in links {
        out.push_str(&format!("<a href=\"{}\">{}</a>", esc(href), esc(text)));
    }
    out.push_str("</div>");
    out
}

/// The problem's summary at the top of a form, announced to screen readers, with the
/// problems at fields repeated as a list when there is no summary of its own.
fn alert(problem: Option<&Problem>) -> String {
    let Some(p) = problem else {
        return String::new();
    };
    let summary = if p.summary.is_empty() {
        "Please correct the marked fields.".to_string()
    } else {
        p.summary.clone()
    };
    format!(
        "<div class=\"alert\" role=\"alert\"><p>{}</p></div>",
        esc(&summary)
    )
}

/// A success message at the top of a page.
fn done(message: Option<&str>) -> String {
    message
        .map(|m| {
            format!(
                "<div class=\"notice\" role=\"status\"><p>{}</p></div>",
                esc(m)
            )
        })
        .unwrap_or_default()
}

/// One form field: its label, the input, a hint and the problem with it, tied together with
/// `aria-describedby` and `aria-invalid`.
#[derive(Debug, Clone)]
struct Field<'a> {
    name: &'a str,
    label: &'a str,
    kind: &'a str,
    value: &'a str,
    required: bool,
    /// Say "(optional)" beside the label of a field that is not required.
    marked: bool,
    autocomplete: &'a str,
    hint: Option<String>,
}

impl<'a> Field<'a> {
    fn new(name: &'a str, label: &'a str, kind: &'a str, autocomplete: &'a str) -> Field<'a> {
        Field {
            name,
            label,
            kind,
            value: "",
            required: true,
            marked: true,
            autocomplete,
            hint: None,
        }
    }

    fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }

    fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Not required, and nothing to say about it (a search box).
    fn unmarked(mut self) -> Self {
        self.required = false;
        self.marked = false;
        self
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn html(&self, problem: Option<&Problem>) -> String {
        let id = format!("f-{}", self.name);
        let error = problem.and_then(|p| p.at(self.name));
        let mut described = Vec::new();
        let mut after = String::new();
        if let Some(h) = &self.hint {
            described.push(format!("{id}-hint"));
            after.push_str(&format!(
                "<p class=\"hint\" id=\"{id}-hint\">{}</p>",
                esc(h)
            ));
        }
        if let Some(e) = error {
            described.push(format!("{id}-error"));
            after.push_str(&format!(
                "<p class=\"field-error\" id=\"{id}-error\">{}</p>",
                esc(e)
            ));
        }
        let described = if described.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"{}\"", described.join(" "))
        };
        format!(
            "<div class=\"field\"><label for=\"{id}\">{label}{optional}</label>\
             <input id=\"{id}\" name=\"{name}\" type=\"{kind}\" value=\"{value}\" autocomplete=\"{auto}\"{req}{invalid}{described}>{after}</div>",
            label = esc(self.label),
            optional = if self.required || !self.marked { "" } else { " <span class=\"muted\">(optional)</span>" },
            name = esc(self.name),
            kind = self.kind,
            value = esc(self.value),
            auto = self.autocomplete,
            req = if self.required { " required" } else { "" },
            invalid = if error.is_some() { " aria-invalid=\"true\"" } else { "" },
        )
    }
}

/// A select field: `(value, text)` options, `selected` chosen.
fn select(
    name: &str,
    label: &str,
    options: &[(String, String)],
    selected: &str,
    problem: Option<&Problem>,
) -> String {
    let id = format!("f-{name}");
    let error = problem.and_then(|p| p.at(name));
    let mut out = format!(
        "<div class=\"field\"><label for=\"{id}\">{}</label><select id=\"{id}\" name=\"{}\"{}{}>",
        esc(label),
        esc(name),
        if error.is_some() {
            " aria-invalid=\"true\""
        } else {
            ""
        },
        if error.is_some() {
            format!(" aria-describedby=\"{id}-error\"")
        } else {
            String::new()
        }
    );
    for (value, text) in options {
        out.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>",
            esc(value),
            if value == selected { " selected" } else { "" },
            esc(text)
        ));
    }
    out.push_str("</select>");
    if let Some(e) = error {
        out.push_str(&format!(
            "<p class=\"field-error\" id=\"{id}-error\">{}</p>",
            esc(e)
        ));
    }
    out.push_str("</div>");
    out
}

/// Checkboxes sharing one name, in a fieldset with its legend, a hint and the problem with
/// them (described on the fieldset, marked invalid on each box).
fn checkboxes(
    name: &str,
    legend: &str,
    options: &[String],
    hint: &str,
    problem: Option<&Problem>,
) -> String {
    let id = format!("f-{name}");
    let error = problem.and_then(|p| p.at(name));
    let mut described = vec![format!("{id}-hint")];
    if error.is_some() {
        described.push(format!("{id}-error"));
    }
    let mut out = format!(
        "<fieldset class=\"field\" id=\"{id}\" aria-describedby=\"{}\"><legend>{} <span class=\"muted\">(optional)</span></legend>\
         <p class=\"hint\" id=\"{id}-hint\">{}</p>",
        described.join(" "),
        esc(legend),
        esc(hint),
    );
    for (i, option) in options.iter().enumerate() {
        out.push_str(&format!(
            "<label class=\"check\"><input type=\"checkbox\" id=\"{id}-{i}\" name=\"{}\" value=\"{}\"{}> {}</label>",
            esc(name),
            esc(option),
            if error.is_some() {
                " aria-invalid=\"true\""
            } else {
                ""
            },
            esc(option),
        ));
    }
    if let Some(e) = error {
        out.push_str(&format!(
            "<p class=\"field-error\" id=\"{id}-error\">{}</p>",
            esc(e)
        ));
    }
    out.push_str("</fieldset>");
    out
}

/// A hidden form field.
fn hidden(name: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

/// The account a password form is for, for password managers (hidden from people).
fn username_for_managers(account: &str) -> String {
    format!(
        "<input type=\"text\" name=\"username\" value=\"{}\" autocomplete=\"username\" hidden readonly>",
        esc(account)
    )
}

/// A form that is only a button (a same-origin post).
fn button_form(action: &str, fields: &str, text: &str, class: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">{fields}<button type=\"submit\" class=\"{class}\">{}</button></form>",
        esc(action),
        esc(text)
    )
}

#[cfg(test)]
mod tests;
