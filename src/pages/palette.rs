//! The accent colours of the pages, from the operator's `[ui] accent_color`, adjusted so that
//! links, buttons and the focus ring keep WCAG 2.2 AA contrast in light and in dark mode.

/// An sRGB colour.
pub use crate::config::Rgb as Colour;

/// The accent used when the operator chose none.
pub const DEFAULT_ACCENT: Colour = Colour(0x1f, 0x5f, 0xbf);

const WHITE: Colour = Colour(0xff, 0xff, 0xff);
const INK: Colour = Colour(0x0d, 0x11, 0x17);
/// The card backgrounds of the stylesheet, light and dark.
const LIGHT_CARD: Colour = Colour(0xff, 0xff, 0xff);
const DARK_CARD: Colour = Colour(0x16, 0x1b, 0x22);
/// What text (links, button labels) needs against its background.
const TEXT_CONTRAST: f64 = 4.5;

/// Relative luminance (WCAG 2).
fn luminance(c: Colour) -> f64 {
    let channel = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.039_28 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(c.0) + 0.7152 * channel(c.1) + 0.0722 * channel(c.2)
}

/// Mix `a` with `b`: `t` = 0 is `a`, 1 is `b`.
fn towards(a: Colour, b: Colour, t: f64) -> Colour {
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    Colour(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// WCAG contrast ratio of two colours (1 to 21).
pub fn contrast(a: Colour, b: Colour) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// The accent, and the text colour on it, for one colour scheme.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accent {
    pub accent: Colour,
    pub on_accent: Colour,
}

/// Light and dark accents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Palette {
    pub light: Accent,
    pub dark: Accent,
}

/// The closest colour to `accent` (moving towards `toward`) that reads at 4.5:1 on `card`.
fn readable_on(accent: Colour, card: Colour, toward: Colour) -> Colour {
    (0..=20)
        .map(|step| towards(accent, toward, f64::from(step) / 20.0))
        .find(|c| contrast(*c, card) >= TEXT_CONTRAST)
        .unwrap_or(toward)
}

/// White or near-black, whichever reads better on `accent`.
fn label_on(accent: Colour) -> Colour {
    if contrast(WHITE, accent) >= contrast(INK, accent) {
        WHITE
    } else {
        INK
    }
}

/// The palette for an operator's accent: darkened until it reads on the light card, lightened
/// until it reads on the dark one, each with the better of white or ink for button labels.
pub fn palette(accent: Option<Colour>) -> Palette {
    let base = accent.unwrap_or(DEFAULT_ACCENT);
    let light = readable_on(base, LIGHT_CARD, INK);
    let dark = readable_on(base, DARK_CARD, WHITE);
    Palette {
        light: Accent {
            accent: light,
            on_accent: label_on(light),
        },
        dark: Accent {
            accent: dark,
            on_accent: label_on(dark),
        },
    }
}

/// The CSS custom properties the stylesheet reads its accent from.
pub fn css_variables(p: &Palette) -> String {
    format!(
        ":root{{--accent:{};--on-accent:{}}}\n@media (prefers-color-scheme:dark){{:root{{--accent:{};--on-accent:{}}}}}\n",
        p.light.accent.hex(),
        p.light.on_accent.hex(),
        p.dark.accent.hex(),
        p.dark.on_accent.hex()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_matches_the_wcag_formula() {
        assert!((contrast(WHITE, Colour(0, 0, 0)) - 21.0).abs() < 0.01);
        assert!((contrast(WHITE, WHITE) - 1.0).abs() < 0.01);
        // #767676 on white is the classic 4.54:1.
        assert!((contrast(WHITE, Colour(0x76, 0x76, 0x76)) - 4.54).abs() < 0.01);
    }

    #[test]
    fn every_accent_reads_in_both_schemes() {
        // (operator's accent, light accent unchanged?)
        let cases = [
            (None, true),
            (Some(Colour(0x1f, 0x5f, 0xbf)), true),
            (Some(Colour(0xff, 0xff, 0x00)), false), // yellow: darkened for the light card
            (Some(Colour(0xff, 0xff, 0xff)), false),
            (Some(Colour(0x00, 0x00, 0x00)), true), // black: lightened for the dark card
            (Some(Colour(0xe1, 0x1d, 0x48)), true),
            (Some(Colour(0x10, 0xb9, 0x81)), false),
            (Some(Colour(0x7c, 0x3a, 0xed)), true),
        ];
        for (accent, unchanged) in cases {
            let p = palette(accent);
            let base = accent.unwrap_or(DEFAULT_ACCENT);
            assert_eq!(p.light.accent == base, unchanged, "{accent:?} {p:?}");
            // Links and the focus ring against the card, labels against the button.
            assert!(
                contrast(p.light.accent, LIGHT_CARD) >= 4.5,
                "{accent:?} {p:?}"
            );
            assert!(
                contrast(p.dark.accent, DARK_CARD) >= 4.5,
                "{accent:?} {p:?}"
            );
            assert!(
                contrast(p.light.on_accent, p.light.accent) >= 4.5,
                "{accent:?} {p:?}"
            );
            assert!(
                contrast(p.dark.on_accent, p.dark.accent) >= 4.5,
                "{accent:?} {p:?}"
            );
        }
    }

    #[test]
    fn the_stylesheets_own_colours_meet_aa() {
        let c = |h: u32| Colour((h >> 16) as u8, (h >> 8) as u8, h as u8);
        // (foreground, background, minimum): text 4.5, borders of fields 3.
        let pairs = [
            (0x1f2328, 0xffffff, 4.5),
            (0x57606a, 0xffffff, 4.5),
            (0xb42318, 0xffffff, 4.5),
            (0xb42318, 0xfef3f2, 4.5),
            (0x1a7f37, 0xeffaf2, 4.5),
            (0x6e7781, 0xffffff, 3.0),
            (0x57606a, 0xf3f4f6, 4.5),
            (0xe6edf3, 0x161b22, 4.5),
            (0x9da7b3, 0x161b22, 4.5),
            (0xff9b92, 0x2d1517, 4.5),
            (0x56d364, 0x12261a, 4.5),
            (0x8b949e, 0x161b22, 3.0),
            (0x9da7b3, 0x0d1117, 4.5),
        ];
        for (fg, bg, min) in pairs {
            let ratio = contrast(c(fg), c(bg));
            assert!(ratio >= min, "#{fg:06x} on #{bg:06x}: {ratio:.2}");
        }
        let css = include_str!("style.css");
        for (fg, bg, _) in pairs {
            assert!(
                css.contains(&format!("#{fg:06x}")) && css.contains(&format!("#{bg:06x}"))
                    || bg == 0xffffff
                    || fg == 0xffffff,
                "#{fg:06x}/#{bg:06x} not in the stylesheet"
            );
        }
    }
}
