//! Time-based one-time passwords (RFC 6238: SHA-1, 6 digits, 30-second steps) and the
//! recovery codes that stand in when the phone is gone. A code is accepted one step early or
//! late, and only for a step later than the last one accepted, so no code works twice.

use qrcode::render::svg;
use qrcode::QrCode;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, TOTP};

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Bytes of a new secret (160 bits, as RFC 4226 recommends).
const SECRET_LEN: usize = 20;
/// Recovery codes issued at once.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code (without its dash): 10 of 32 letters, 50 bits.
const RECOVERY_LEN: usize = 10;
/// Letters and digits that cannot be mistaken for each other when typed.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<TOTP, String> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECS,
        secret.to_vec(),
        Some(issuer.to_string()),
        account.to_string(),
    )
    .map_err(|e| format!("TOTP: {e}"))
}

/// A new random secret.
pub fn new_secret() -> Result<Vec<u8>, String> {
    let mut secret = vec![0u8; SECRET_LEN];
    getrandom::fill(&mut secret).map_err(|e| format!("no randomness: {e}"))?;
    Ok(secret)
}

/// What an authenticator app needs to enrol: the secret as text, the `otpauth://` address and
/// that address as a QR code (SVG, for inline use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_url: String,
    pub qr_svg: String,
}

/// The enrolment for `secret`, shown in the app as `issuer` (the site's name) and `account`.
pub fn enrolment(secret: &[u8], issuer: &str, account: &str) -> Result<Enrolment, String> {
    // The otpauth label may not hold a colon.
    let issuer = issuer.replace(':', " ");
    let account = account.replace(':', " ");
    let t = totp(secret, &issuer, &account)?;
    let url = t.get_url();
    let qr = QrCode::new(url.as_bytes()).map_err(|e| format!("QR code: {e}"))?;
    let qr_svg = qr
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(Enrolment {
        secret_base32: t.get_secret_base32(),
        otpauth_url: url,
        qr_svg,
    })
}

/// The step `code` is valid for at `now` (Unix seconds), one step early or late allowed,
/// if it is later than `last_step` (the last one accepted for this user); `None` otherwise.
pub fn accepted_step(secret: &[u8], code: &str, now: u64, last_step: Option<u64>) -> Option<u64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "authgate", "user").ok()?;
    let step = now / STEP_SECS;
    let mut found = None;
    // Every candidate is computed and compared in constant time, whichever matches.
    for candidate in [step.saturating_sub(1), step, step + 1] {
        let expected = t.generate(candidate * STEP_SECS);
        let matches: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        if matches && last_step.is_none_or(|last| candidate > last) {
            found = Some(candidate);
        }
    }
    found
}

/// A fresh set of recovery codes: what to show once, and what to store (their SHA-256).
pub fn new_recovery_codes() -> Result<(Vec<String>, Vec<[u8; 32]>), String> {
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    let mut stored = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut raw = [0u8; RECOVERY_LEN];
        getrandom::fill(&mut raw).map_err(|e| format!("no randomness: {e}"))?;
        let letters: String = raw
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
            .collect();
        stored.push(recovery_hash(&letters));
        shown.push(format!("{}-{}", &letters[..5], &letters[5..]));
    }
    Ok((shown, stored))
}

/// What a recovery code is stored as: the SHA-256 of its letters, upper case, without dashes
/// or spaces (50 random bits need no slow hash). Typed codes go through the same.
pub fn recovery_hash(code: &str) -> [u8; 32] {
    let normal: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Sha256::digest(normal.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The RFC 6238 test secret (SHA-1).
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn code_at(secret: &[u8], at: u64) -> String {
        totp(secret, "x", "y").expect("totp").generate(at)
    }

    #[test]
    fn codes_match_rfc_6238() {
        // (time, code): RFC 6238 appendix B, the last six digits.
        for (at, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(RFC_SECRET, at), code, "{at}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_never_twice() {
        let now = 1_000_000_020; // step 33_333_334
        let step = now / STEP_SECS;
        let at = |s: u64| code_at(RFC_SECRET, s * STEP_SECS);
        // (code, last accepted step) → accepted step
        let cases = [
            (at(step), None, Some(step)),
            (at(step - 1), None, Some(step - 1)),
            (at(step + 1), None, Some(step + 1)),
            (at(step - 2), None, None),
            (at(step + 2), None, None),
            (at(step), Some(step), None),
            (at(step - 1), Some(step - 1), None),
            (at(step), Some(step - 1), Some(step)),
            (format!(" {} ", at(step)), None, Some(step)),
            ("12345".to_string(), None, None),
            ("abcdef".to_string(), None, None),
            (String::new(), None, None),
        ];
        for (code, last, want) in cases {
            assert_eq!(
                accepted_step(RFC_SECRET, &code, now, last),
                want,
                "{code:?} after {last:?}"
            );
        }
    }

    #[test]
    fn enrolment_names_the_site_and_draws_the_address() {
        let secret = new_secret().expect("secret");
        let e = enrolment(&secret, "Example: Corp", "ada@example.com").expect("enrolment");
        assert!(
            e.otpauth_url
                .starts_with("otpauth://totp/Example%20%20Corp:ada%40example.com?"),
            "{}",
            e.otpauth_url
        );
        assert!(e
            .otpauth_url
            .contains(&format!("secret={}", e.secret_base32)));
        assert!(e.otpauth_url.contains("issuer=Example%20%20Corp"));
        assert!(e.qr_svg.contains("<svg") && !e.qr_svg.contains("<script"));
        assert_eq!(e.secret_base32.len(), 32, "160 bits");
    }

    #[test]
    fn recovery_codes_are_stored_hashed_and_typed_loosely() {
        let (shown, stored) = new_recovery_codes().expect("codes");
        assert_eq!(
            (shown.len(), stored.len()),
            (RECOVERY_CODES, RECOVERY_CODES)
        );
        for (code, hash) in shown.iter().zip(&stored) {
            assert_eq!(code.len(), 11);
            assert_eq!(&recovery_hash(code), hash);
            assert_eq!(&recovery_hash(&code.to_lowercase().replace('-', " ")), hash);
        }
        let mut unique = stored.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
    }
}
