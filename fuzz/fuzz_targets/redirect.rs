//! The redirect validator: whatever it accepts is an absolute http(s) URL without credentials
//! whose host is allowed, and accepting its own output again gives the same URL.
#![no_main]

use authgate::auth::redirect::{safe_redirect, RedirectPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(rd) = std::str::from_utf8(data) else { return };
    let allowed = vec!["partner.org".to_string()];
    let policy = RedirectPolicy {
        public_host: "auth.example.com",
        cookie_domain: Some("example.com"),
        allowed_hosts: &allowed,
    };
    let Some(out) = safe_redirect(rd, &policy) else { return };
    let url = url::Url::parse(&out).unwrap_or_else(|e| panic!("accepted unparsable {out:?}: {e}"));
    assert!(matches!(url.scheme(), "http" | "https"));
    assert!(url.username().is_empty() && url.password().is_none());
    let host = url.host_str().unwrap_or("").trim_end_matches('.').to_ascii_lowercase();
    assert!(
        host == "auth.example.com" || host == "partner.org" || host == "example.com" || host.ends_with(".example.com"),
        "{rd:?} → {out:?} has host {host:?}"
    );
    assert!(!out.contains('\\') && !out.chars().any(char::is_control));
    assert_eq!(safe_redirect(&out, &policy).as_deref(), Some(out.as_str()));
});
