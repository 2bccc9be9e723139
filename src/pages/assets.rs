//! The pages' own files, served under `{prefix}/assets/`: the stylesheet (the built-in one with
//! the accent colours, then the operator's), the icon and the logo. Built once at start; the
//! stylesheet's address carries a hash of its content, so browsers may keep it for long.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::palette::{css_variables, palette, Colour};

/// The built-in stylesheet.
const STYLE: &str = include_str!("style.css");

/// How long browsers may keep an asset (a changed stylesheet or logo gets a new address).
pub const CACHE_CONTROL: &str = "public, max-age=604800";

/// One file: its content and type.
#[derive(Debug, Clone)]
pub struct Asset {
    pub bytes: Bytes,
    pub content_type: &'static str,
}

/// Every file the pages link to.
#[derive(Debug, Clone)]
pub struct Assets {
    style: Asset,
    icon: Asset,
    logo: Option<Asset>,
    /// A short hash of every file above, in their addresses.
    version: String,
}

/// The icon when the operator has no logo: a key in a rounded square, in the accent colour.
fn default_icon(accent: Colour) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
         <rect width=\"32\" height=\"32\" rx=\"7\" fill=\"{}\"/>\
         <circle cx=\"12\" cy=\"16\" r=\"5\" fill=\"none\" stroke=\"#fff\" stroke-width=\"3\"/>\
         <path d=\"M17 16h9m-3 0v4\" stroke=\"#fff\" stroke-width=\"3\" stroke-linecap=\"round\"/></svg>",
        accent.hex()
    )
}

impl Assets {
    /// Build from the branding: accent colour, operator stylesheet, logo (content and type).
    pub fn new(accent: Option<Colour>, custom_css: Option<&str>, logo: Option<Asset>) -> Assets {
        let colours = palette(accent);
        let mut css = css_variables(&colours);
        css.push_str(STYLE);
        if let Some(extra) = custom_css {
            css.push_str("\n/* operator stylesheet */\n");
            css.push_str(extra);
        }
        let style = Asset {
            bytes: Bytes::from(css),
            content_type: "text/css; charset=utf-8",
        };
        let icon = match &logo {
            Some(l) => l.clone(),
            None => Asset {
                bytes: Bytes::from(default_icon(colours.light.accent)),
                content_type: "image/svg+xml",
            },
        };
        let mut hash = Sha256::new();
        hash.update(&style.bytes);
        hash.update(&icon.bytes);
        let digest = hash.finalize();
        let version = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Assets {
            style,
            icon,
            logo,
            version,
        }
    }

    /// The file served as `{prefix}/assets/{name}`.
    pub fn get(&self, name: &str) -> Option<&Asset> {
        match name {
            "style.css" => Some(&self.style),
            "icon" => Some(&self.icon),
            "logo" => self.logo.as_ref(),
            _ => None,
        }
    }

    /// The address of an asset under `prefix`, versioned.
    pub fn url(&self, prefix: &str, name: &str) -> String {
        format!("{prefix}/assets/{name}?v={}", self.version)
    }

    /// Whether there is a logo to show.
    pub fn has_logo(&self) -> bool {
        self.logo.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_carry_the_branding_and_change_address_when_it_changes() {
        let plain = Assets::new(None, None, None);
        let css = String::from_utf8_lossy(&plain.get("style.css").expect("css").bytes).into_owned();
        assert!(css.starts_with(":root{--accent:#1f5fbf"), "{css}");
        assert!(css.contains("prefers-color-scheme:dark"));
        assert!(plain.get("logo").is_none() && !plain.has_logo());
        assert_eq!(
            plain.get("icon").map(|a| a.content_type),
            Some("image/svg+xml")
        );
        assert!(plain.get("../config.toml").is_none());

        let branded = Assets::new(
            Some(Colour(0xe1, 0x1d, 0x48)),
            Some("main{border-width:3px}"),
            Some(Asset {
                bytes: Bytes::from_static(b"\x89PNG"),
                content_type: "image/png",
            }),
        );
        let css =
            String::from_utf8_lossy(&branded.get("style.css").expect("css").bytes).into_owned();
        assert!(
            css.starts_with(":root{--accent:#e11d48") && css.ends_with("main{border-width:3px}")
        );
        assert_eq!(
            branded.get("logo").map(|a| a.content_type),
            Some("image/png")
        );
        assert_eq!(
            branded.get("icon").map(|a| a.content_type),
            Some("image/png")
        );
        assert_ne!(
            plain.url("/auth", "style.css"),
            branded.url("/auth", "style.css")
        );
        assert!(plain
            .url("/auth", "style.css")
            .starts_with("/auth/assets/style.css?v="));
    }
}
