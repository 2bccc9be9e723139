//! Look-alike addresses: the UTS #39 skeleton of an email address, equal for two addresses
//! that look alike (a Cyrillic `о`, an accent, `rn` for `m`). Backends index it per user.

use unicode_normalization::UnicodeNormalization;

/// The skeleton of an address: two addresses that look alike have the same skeleton. The
/// domain is compared in its Unicode form, accents and other combining marks are dropped, then
/// each character is replaced by its UTS #39 prototype (invisible characters vanish).
pub fn email_skeleton(email: &str) -> String {
    let unicode = match email.rsplit_once('@') {
        Some((local, domain)) => {
            let (domain_unicode, decoded) = idna::domain_to_unicode(domain);
            // An undecodable domain is compared as written.
            let domain = if decoded.is_ok() {
                domain_unicode
            } else {
                domain.to_string()
            };
            format!("{local}@{domain}")
        }
        None => email.to_string(),
    };
    let unmarked: String = unicode
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .collect();
    unicode_security::skeleton(&unmarked)
        .collect::<String>()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_share_the_skeleton_of_the_address_they_imitate() {
        let owner = email_skeleton("owner@example.com");
        for look_alike in [
            "owner\u{200b}@example.com",
            "\u{043e}wner@example.com",
            "\u{ff4f}\u{ff57}\u{ff4e}\u{ff45}\u{ff52}@example.com",
            "own\u{ad}er@example.com",
            "owne\u{301}r@example.com",
            "own\u{e9}r@example.com",
            "o\u{336}wner@example.com",
            "\u{202e}owner@example.com",
            "owner\u{feff}@example.com",
            "0wner@example.com",
            "owner@examp1e.com",
            "owner@ex\u{430}mple.com",
            "owner@xn--exmple-4nf.com",
        ] {
            assert_eq!(email_skeleton(look_alike), owner, "{look_alike:?}");
        }
        for different in [
            "owners@example.com",
            "owner@example.org",
            "other@example.com",
            "first.last+tag@sub.example.org",
        ] {
            assert_ne!(email_skeleton(different), owner, "{different:?}");
        }
        // The domain is compared in its Unicode form, whichever form is stored.
        assert_eq!(
            email_skeleton("a@xn--bcher-kva.de"),
            email_skeleton("a@b\u{fc}cher.de")
        );
        assert_eq!(email_skeleton("a@xn--zz.de"), "a@xn--zz.de");
    }
}
