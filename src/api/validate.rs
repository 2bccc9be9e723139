//! Input policy for account fields.

use unicode_normalization::UnicodeNormalization;
use unicode_security::general_security_profile::IdentifierType;
use unicode_security::GeneralSecurityProfile;

use crate::config::{AuthConfig, FieldMode};

/// Canonical email, as stored: NFKC-normalised, lower-cased and trimmed, with the domain in its
/// IDNA ASCII form, at most 254 bytes; refuses invisible, control, private-use, unassigned and
/// unusual characters (UTS #39 general security profile) so that no address can pass for another.
pub fn email(raw: &str) -> Result<String, String> {
    let folded = fold(raw);
    if folded.is_empty() {
        return Err("is required".into());
    }
    if let Some(problem) = folded.chars().find_map(refused_character) {
        return Err(problem);
    }
    let invalid = || "is not a valid email address".to_string();
    let (local, domain) = folded.rsplit_once('@').ok_or_else(invalid)?;
    let ascii = ascii_domain(domain).ok_or_else(invalid)?;
    // A Punycode label can spell characters that would be refused if typed as they are.
    let (unicode, _) = idna::domain_to_unicode(&ascii);
    if let Some(problem) = unicode.chars().find_map(refused_character) {
        return Err(problem);
    }
    let stored = format!("{local}@{ascii}");
    if stored.len() > 254 {
        return Err("must be at most 254 characters".into());
    }
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"<>()[]\\,;:\"@".contains(c));
    let domain_ok = ascii.len() <= 253
        && ascii.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if !(local_ok && domain_ok) {
        return Err(invalid());
    }
    // RFC 2606 reserves `.invalid`: no mail reaches it, and service accounts' addresses
    // live there, so nobody can take one of their names by registering.
    if ascii == "invalid" || ascii.ends_with(".invalid") {
        return Err("is not an address mail can reach (.invalid)".into());
    }
    Ok(stored)
}

/// The form under which an account is looked up from what someone typed or a provider sent:
/// an address canonicalised like [`email`] (domain in IDNA ASCII form), a username lower-cased.
/// Never refuses: an identifier no account could have simply finds nothing.
pub fn identifier(raw: &str) -> String {
    let folded = fold(raw);
    if let Some((local, domain)) = folded.rsplit_once('@') {
        if let Some(ascii) = ascii_domain(domain) {
            return format!("{local}@{ascii}");
        }
    }
    folded
}

/// A domain in its IDNA ASCII form (UTS #46), if it has one: letters, digits and hyphens only,
/// so that converting the result again leaves it as it is.
fn ascii_domain(domain: &str) -> Option<String> {
    idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::STD3)
        .ok()
        .map(|d| d.into_owned())
}

/// NFKC, lower-cased, trimmed: compatibility forms (fullwidth letters, ligatures, composed or
/// decomposed accents) fold into one spelling.
fn fold(raw: &str) -> String {
    let lower = raw.nfkc().collect::<String>().to_lowercase();
    // Lower-casing can leave a string unnormalised (U+0130 becomes i + U+0307).
    lower.trim().nfkc().collect()
}

/// Why `c` may not appear in an email address, if it may not. ASCII other than control
/// characters is left to the address syntax.
fn refused_character(c: char) -> Option<String> {
    let code = c as u32;
    if c.is_control() {
        return Some(format!(
            "must not contain control characters (found U+{code:04X})"
        ));
    }
    if c.is_ascii() || c.identifier_allowed() {
        return None;
    }
    Some(match c.identifier_type() {
        Some(IdentifierType::Default_Ignorable) => format!(
            "must not contain invisible characters such as zero-width spaces, soft hyphens or \
             text-direction marks (found U+{code:04X})"
        ),
        Some(IdentifierType::Not_Character) | None => {
            format!("must not contain private-use or unassigned characters (found U+{code:04X})")
        }
        Some(_) => format!(
            "must not contain symbols or rarely used letters (found U+{code:04X}); letters, \
             digits and the usual punctuation of email addresses are accepted"
        ),
    })
}

/// Canonical username: lower-cased, 3–32 of `[a-z0-9_.-]`.
pub fn username(raw: &str) -> Result<String, &'static str> {
    let u = raw.trim().to_ascii_lowercase();
    let chars_ok = u
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if !(3..=32).contains(&u.len()) || !chars_ok {
        return Err("must be 3 to 32 characters of a-z, 0-9, '_', '.', '-'");
    }
    Ok(u)
}

/// A password as sent, within the configured length (counted in characters).
/// Control characters (tabs, line breaks, NUL, ...) are refused: nobody can type them at a
/// login form, so an account set up with one could never sign in from a browser.
pub fn password(raw: &str, auth: &AuthConfig) -> Result<(), String> {
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(format!(
            "must not contain control characters such as tabs or line breaks (found U+{:04X})",
            u32::from(c)
        ));
    }
    let n = raw.chars().count();
    if n < auth.password_min_length {
        return Err(format!(
            "must be at least {} characters",
            auth.password_min_length
        ));
    }
    if n > auth.password_max_length {
        return Err(format!(
            "must be at most {} characters",
            auth.password_max_length
        ));
    }
    Ok(())
}

/// A display name: trimmed, at most 128 characters, no control characters. Empty is `None`.
pub fn name(raw: &str) -> Result<Option<String>, &'static str> {
    let n = raw.trim();
    if n.chars().count() > 128 {
        return Err("must be at most 128 characters");
    }
    if n.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok((!n.is_empty()).then(|| n.to_string()))
}

/// Whether a field's value is acceptable under its mode; `present` = a non-empty value was sent.
pub fn field_mode(mode: FieldMode, present: bool) -> Result<(), &'static str> {
    match (mode, present) {
        (FieldMode::Required, false) => Err("is required"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_table() {
        let ok = [
            ("a@b.co", "a@b.co"),
            ("  Alice@Example.COM ", "alice@example.com"),
            (
                "first.last+tag@sub.example.org",
                "first.last+tag@sub.example.org",
            ),
            ("user@localhost", "user@localhost"),
            // Letters of any common script stay valid; the domain is stored in ASCII form.
            ("josé@example.com", "josé@example.com"),
            ("jose\u{301}@example.com", "josé@example.com"),
            ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"),
            ("Owner@BÜCHER.de", "owner@xn--bcher-kva.de"),
            ("owner@xn--bcher-kva.de", "owner@xn--bcher-kva.de"),
            ("иван@пример.рф", "иван@xn--e1afmkfd.xn--p1ai"),
            // Compatibility forms fold into the address they imitate.
            ("ｏｗｎｅｒ@example.com", "owner@example.com"),
            ("owner＠ｅｘａｍｐｌｅ．ｃｏｍ", "owner@example.com"),
            ("\u{fb01}nn@example.com", "finn@example.com"),
        ];
        for (raw, want) in ok {
            let got = email(raw);
            assert_eq!(got.as_deref(), Ok(want), "{raw}");
            assert_eq!(
                email(want).as_deref(),
                Ok(want),
                "{want} is not a fixed point"
            );
        }
        let long_local = format!("{}@x.io", "a".repeat(65));
        let too_long = format!("a@{}.io", "b".repeat(260));
        // Short enough as typed, too long once the domain is in its ASCII form.
        let long_idn = format!("{}@{}.de", "a".repeat(60), ["bücher"; 20].join("."));
        assert!(long_idn.len() <= 254);
        for bad in [
            "",
            "plain",
            "@x.io",
            "a@",
            "a b@x.io",
            "a@x..io",
            "a@-x.io",
            "a@x_y.io",
            "<a>@x.io",
            "a@b@c.io",
            long_local.as_str(),
            too_long.as_str(),
            long_idn.as_str(),
            "a\u{0}@x.io",
            "a@xn--zz.de",
        ] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn look_alike_characters_are_refused_with_a_reason() {
        let refused = [
            ("owner\u{200b}@example.com", "invisible"),
            ("own\u{ad}er@example.com", "invisible"),
            ("\u{202e}owner@example.com", "invisible"),
            ("owner\u{2066}@example.com", "invisible"),
            ("\u{feff}owner@example.com", "invisible"),
            ("owner@exam\u{ad}ple.com", "invisible"),
            ("owner@ex\u{200b}ample.com", "invisible"),
            ("o\u{336}wner@example.com", "rarely used"),
            ("owner\u{2605}@example.com", "rarely used"),
            ("owner\u{85}@example.com", "control"),
            ("owner\u{e000}@example.com", "private-use"),
            ("owner\u{378}@example.com", "unassigned"),
        ];
        for (raw, word) in refused {
            let problem = email(raw).expect_err(raw);
            assert!(problem.contains(word), "{raw:?}: {problem}");
            assert!(problem.contains("U+"), "{raw:?}: {problem}");
        }
    }

    #[test]
    fn lookup_identifier_canonicalises_without_refusing() {
        for (raw, want) in [
            (" Owner@BÜCHER.de ", "owner@xn--bcher-kva.de"),
            ("ｏｗｎｅｒ@example.com", "owner@example.com"),
            ("Owner", "owner"),
            ("ＯＷＮＥＲ", "owner"),
            ("owner\u{200b}@example.com", "owner\u{200b}@example.com"),
            ("a@xn--zz.de", "a@xn--zz.de"),
            ("", ""),
        ] {
            assert_eq!(identifier(raw), want, "{raw:?}");
        }
        for raw in ["josé@example.com", "Owner@BÜCHER.de", "用户@例子.广告"] {
            assert_eq!(email(raw).as_deref(), Ok(identifier(raw).as_str()), "{raw}");
        }
    }

    #[test]
    fn any_input_gives_a_stable_answer_without_panicking() {
        // Letters that change under NFKC, case mapping or IDNA, marks, invisibles, separators.
        let pool: Vec<char> = "aZ09.-+_@ @\u{ff20}\u{3002}\u{ff0e}\u{43e}\u{ff4f}\u{301}\u{336}\u{308}\u{200b}\u{ad}\u{202e}\u{feff}\u{e000}\u{378}\u{85}\u{df}\u{130}\u{1c5}\u{3a3}\u{2126}\u{fb01}\u{216b}\u{1d2c}\u{fc}\u{7528}\u{5e7}\u{663}"
            .chars()
            .collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).expect("small")
        };
        for _ in 0..20_000 {
            let len = 1 + next(24);
            let raw: String = (0..len).map(|_| pool[next(pool.len())]).collect();
            let looked_up = identifier(&raw);
            assert_eq!(identifier(&looked_up), looked_up, "{raw:?}");
            crate::store::email_skeleton(&looked_up);
            if let Ok(stored) = email(&raw) {
                assert!(stored.len() <= 254 && stored.contains('@'), "{raw:?}");
                assert_eq!(email(&stored).as_deref(), Ok(stored.as_str()), "{raw:?}");
                assert_eq!(looked_up, stored, "{raw:?}");
            }
        }
    }

    #[test]
    fn username_table() {
        assert_eq!(username("Alice_01").as_deref(), Ok("alice_01"));
        assert_eq!(username("a.b-c").as_deref(), Ok("a.b-c"));
        for bad in ["ab", &"a".repeat(33), "al ice", "al@ice", "ålice", ""] {
            assert!(username(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn password_length_counts_characters_and_allows_any_unicode() {
        let auth = crate::config::Config::from_toml("").expect("defaults").auth;
        assert!(password("short", &auth).is_err());
        assert!(password("pässwörd", &auth).is_ok());
        assert!(password("🔑🔑🔑🔑🔑🔑🔑🔑", &auth).is_ok());
        assert!(password(&"x".repeat(129), &auth).is_err());
        assert!(password("  spaces  ", &auth).is_ok());
        for bad in [
            "tab\there ok",
            "line\nbreak ok",
            "nul\0byte ok",
            "del\u{7f}char ok",
            "c1\u{85}next ok",
        ] {
            let err = password(bad, &auth).expect_err(bad);
            assert!(err.contains("control characters"), "{err}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Ada Lovelace "), Ok(Some("Ada Lovelace".into())));
        assert_eq!(name("   "), Ok(None));
        assert!(name(&"x".repeat(129)).is_err());
        assert!(name("a\nb").is_err());
    }
}
