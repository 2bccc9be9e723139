//! `[ui]`: the portal's branding, checked, with its logo and stylesheet files read at load.

use std::path::Path;

use super::model::{UiAsset, UiConfig};
use super::parse_color;
use super::raw::RawUi;
use super::validate::Validator;

/// `ui.title` may be this many characters long.
const TITLE_MAX_CHARS: usize = 64;
/// `ui.help_text` may be this many characters long.
const HELP_TEXT_MAX_CHARS: usize = 500;
/// The largest `ui.logo` file.
const LOGO_MAX_BYTES: usize = 512 * 1024;
/// The largest `ui.custom_css` file.
const CUSTOM_CSS_MAX_BYTES: usize = 256 * 1024;

impl Validator {
    /// `[ui]`, with its files read now.
    pub(super) fn ui(&mut self, raw: RawUi) -> UiConfig {
        let title = raw.title.trim().to_string();
        let length = title.chars().count();
        if length == 0 || length > TITLE_MAX_CHARS {
            self.problem(
                "ui.title",
                format!("must be 1 to {TITLE_MAX_CHARS} characters long"),
            );
        } else if title.chars().any(char::is_control) {
            self.problem(
                "ui.title",
                "must not contain control characters (tabs, line breaks)",
            );
        }
        let logo = if raw.logo.as_os_str().is_empty() {
            None
        } else {
            read_logo(&raw.logo)
                .map_err(|e| self.problem("ui.logo", e))
                .ok()
        };
        let accent_color = if raw.accent_color.trim().is_empty() {
            None
        } else {
            parse_color(&raw.accent_color)
                .map_err(|e| self.problem("ui.accent_color", e))
                .ok()
        };
        let custom_css = if raw.custom_css.as_os_str().is_empty() {
            None
        } else {
            read_stylesheet(&raw.custom_css)
                .map_err(|e| self.problem("ui.custom_css", e))
                .ok()
        };
        let help = raw.help_text.trim();
        let help_text = if help.is_empty() {
            None
        } else {
            if help.chars().count() > HELP_TEXT_MAX_CHARS {
                self.problem(
                    "ui.help_text",
                    format!("must be at most {HELP_TEXT_MAX_CHARS} characters long"),
                );
            }
            if help
                .chars()
                .any(|c| c.is_control() && !"\n\r\t".contains(c))
            {
                self.problem(
                    "ui.help_text",
                    "must not contain control characters other than line breaks and tabs",
                );
            }
            Some(help.to_string())
        };
        UiConfig {
            title,
            logo,
            accent_color,
            custom_css,
            help_text,
        }
    }
}

/// `ui.logo`: the image file, its type taken from its extension.
fn read_logo(path: &Path) -> Result<UiAsset, String> {
    let content_type = image_type(path)?;
    let bytes = read_at_most(path, LOGO_MAX_BYTES)?;
    if bytes.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(UiAsset {
        bytes: bytes.into(),
        content_type,
    })
}

/// `ui.custom_css`: the stylesheet. It goes inside the pages' `<style>` element, so it may not
/// close that element.
fn read_stylesheet(path: &Path) -> Result<String, String> {
    let bytes = read_at_most(path, CUSTOM_CSS_MAX_BYTES)?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    if text.to_ascii_lowercase().contains("</style") {
        return Err(format!(
            "{} contains \"</style\", which would end the page's stylesheet",
            path.display()
        ));
    }
    Ok(text)
}

/// A logo's media type, from its file name's extension.
fn image_type(path: &Path) -> Result<&'static str, String> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("svg") => Ok("image/svg+xml"),
        Some("png") => Ok("image/png"),
        Some("jpg" | "jpeg") => Ok("image/jpeg"),
        Some("webp") => Ok("image/webp"),
        Some("gif") => Ok("image/gif"),
        Some("ico") => Ok("image/x-icon"),
        _ => Err(format!(
            "{}: the name must end in .svg, .png, .jpg, .jpeg, .webp, .gif or .ico (it gives the image's type)",
            path.display()
        )),
    }
}

/// A whole file of at most `limit` bytes (a larger one is refused without being read whole).
/// A relative path is taken from the working directory, as for every file the config names.
fn read_at_most(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > limit {
        return Err(format!(
            "{} is larger than {} KiB",
            path.display(),
            limit / 1024
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// The problems of a `[ui]` section, as (key, message) pairs.
    fn ui_problems(section: &str) -> Vec<(String, String)> {
        match Config::from_toml(&format!("[ui]\n{section}\n")) {
            Ok(_) => vec![],
            Err(e) => e.0.into_iter().map(|p| (p.key, p.message)).collect(),
        }
    }

    #[test]
    fn ui_values_are_checked_with_their_key() {
        let long_help = "a".repeat(501);
        let long_title = "t".repeat(65);
        // section → the key named and a word of its message; "" = valid
        let cases: &[(&str, &str, &str)] = &[
            ("title = \"Example Corp\"", "", ""),
            ("title = \"Ünïcødé · 64\"", "", ""),
            ("title = \"\"", "ui.title", "1 to 64"),
            ("title = \"   \"", "ui.title", "1 to 64"),
            (&format!("title = \"{long_title}\""), "ui.title", "1 to 64"),
            ("title = \"a\\nb\"", "ui.title", "control"),
            ("title = \"a\\tb\"", "ui.title", "control"),
            ("accent_color = \"#0b57d0\"", "", ""),
            ("accent_color = \"\"", "", ""),
            ("accent_color = \"blue\"", "ui.accent_color", "not a colour"),
            (
                "accent_color = \"#12345\"",
                "ui.accent_color",
                "not a colour",
            ),
            (
                "help_text = \"Ask IT on extension 42.\\nOr mail help@example.com.\"",
                "",
                "",
            ),
            (
                &format!("help_text = \"{long_help}\""),
                "ui.help_text",
                "500",
            ),
            ("help_text = \"bell\\u0007\"", "ui.help_text", "control"),
            ("logo = \"no-such-logo.png\"", "ui.logo", "cannot read"),
            ("logo = \"logo.bmp\"", "ui.logo", ".svg, .png"),
            ("logo = \"logo\"", "ui.logo", ".svg, .png"),
            (
                "custom_css = \"no-such-style.css\"",
                "ui.custom_css",
                "cannot read",
            ),
        ];
        for (section, key, word) in cases {
            let found = ui_problems(section);
            if key.is_empty() {
                assert!(found.is_empty(), "{section}: {found:?}");
            } else {
                assert!(
                    found.iter().any(|(k, m)| k == key && m.contains(word)),
                    "{section}: wanted {key} ({word}), got {found:?}"
                );
            }
        }
    }

    #[test]
    fn ui_files_are_read_at_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            path.display().to_string()
        };
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
        let section = format!(
            "[ui]\ntitle = \" Example Corp \"\nlogo = '{}'\naccent_color = \"#06C\"\n\
             custom_css = '{}'\nhelp_text = \" Ask IT. \"\n",
            file("Logo.SVG", svg),
            file("site.css", b"body { margin: 0 }\n"),
        );
        let c = Config::from_toml(&section).expect("valid ui");
        assert_eq!(c.ui.title, "Example Corp");
        let logo = c.ui.logo.expect("logo");
        assert_eq!(logo.content_type, "image/svg+xml");
        assert_eq!(&logo.bytes[..], svg);
        assert_eq!(c.ui.accent_color.map(|c| c.hex()), Some("#0066cc".into()));
        assert_eq!(c.ui.custom_css.as_deref(), Some("body { margin: 0 }\n"));
        assert_eq!(c.ui.help_text.as_deref(), Some("Ask IT."));

        for (name, content_type) in [
            ("a.png", "image/png"),
            ("a.jpg", "image/jpeg"),
            ("a.jpeg", "image/jpeg"),
            ("a.webp", "image/webp"),
            ("a.gif", "image/gif"),
            ("a.ico", "image/x-icon"),
        ] {
            let c = Config::from_toml(&format!("[ui]\nlogo = '{}'\n", file(name, b"\x89img")))
                .expect("logo");
            assert_eq!(c.ui.logo.map(|l| l.content_type), Some(content_type));
        }

        let at_limit = file("limit.png", &vec![0; 512 * 1024]);
        assert!(ui_problems(&format!("logo = '{at_limit}'")).is_empty());
        let refused = |section: String, key: &str, word: &str| {
            let found = ui_problems(&section);
            assert!(
                found.iter().any(|(k, m)| k == key && m.contains(word)),
                "{section}: wanted {key} ({word}), got {found:?}"
            );
        };
        let too_big = file("big.png", &vec![0; 512 * 1024 + 1]);
        refused(
            format!("logo = '{too_big}'"),
            "ui.logo",
            "larger than 512 KiB",
        );
        refused(
            format!("logo = '{}'", file("empty.png", b"")),
            "ui.logo",
            "empty",
        );
        let dir_path = dir.path().join("folder.png");
        std::fs::create_dir(&dir_path).expect("mkdir");
        refused(
            format!("logo = '{}'", dir_path.display()),
            "ui.logo",
            "cannot read",
        );

        let big_css = file("big.css", &vec![b' '; 256 * 1024 + 1]);
        refused(
            format!("custom_css = '{big_css}'"),
            "ui.custom_css",
            "larger than 256 KiB",
        );
        let latin1 = file("latin1.css", b"/* caf\xe9 */");
        refused(format!("custom_css = '{latin1}'"), "ui.custom_css", "UTF-8");
        let closes = file("closes.css", b"a{}</STYLE><script>alert(1)</script>");
        refused(
            format!("custom_css = '{closes}'"),
            "ui.custom_css",
            "</style",
        );
    }
}
