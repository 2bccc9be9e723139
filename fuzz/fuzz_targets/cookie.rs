//! The cookie parser: any Cookie header bytes give a bounded list of tokens taken from the
//! input, and turning a token into a storage key never panics.
#![no_main]

use authgate::auth::{cookie, session};
use authgate::config::Config;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::from_toml("") else { return };
    let mut headers = HeaderMap::new();
    // Several Cookie headers, split at 0xff (never valid in a header value).
    for part in data.split(|b| *b == 0xff) {
        if let Ok(v) = HeaderValue::from_bytes(part) {
            headers.append(http::header::COOKIE, v);
        }
    }
    let tokens = cookie::session_token_refs(&headers, &cookie::wire_name(&config.session));
    assert!(tokens.len() <= 4);
    for t in tokens {
        assert!(!t.is_empty());
        assert!(data.windows(t.len()).any(|w| w == t.as_bytes()), "token not from the input");
        let _ = session::key_for(t);
    }
});
