//! Input policy for account fields.

use crate::config::{AuthConfig, FieldMode};

/// Canonical email: trimmed, lower-cased, a plausible address of at most 254 characters.
pub fn email(raw: &str) -> Result<String, &'static str> {
    let e = raw.trim().to_lowercase();
    if e.is_empty() {
        return Err("is required");
    }
    if e.len() > 254 {
        return Err("must be at most 254 characters");
    }
    let Some((local, domain)) = e.rsplit_once('@') else {
        return Err("is not a valid email address");
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && local
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"<>()[]\\,;:\"".contains(c));
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok {
        Ok(e)
    } else {
        Err("is not a valid email address")
    }
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
pub fn password(raw: &str, auth: &AuthConfig) -> Result<(), String> {
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
        ];
        for (raw, want) in ok {
            assert_eq!(email(raw).as_deref(), Ok(want), "{raw}");
        }
        let long_local = format!("{}@x.io", "a".repeat(65));
        let too_long = format!("a@{}.io", "b".repeat(260));
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
            "a\u{0}@x.io",
        ] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
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
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Ada Lovelace "), Ok(Some("Ada Lovelace".into())));
        assert_eq!(name("   "), Ok(None));
        assert!(name(&"x".repeat(129)).is_err());
        assert!(name("a\nb").is_err());
    }
}
