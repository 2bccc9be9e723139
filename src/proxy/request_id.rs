//! The request id: carried on every log line of a request and sent upstream as
//! `X-Request-Id`. Kept as the header value itself, so a trusted proxy's id is shared rather
//! than copied and a new one is allocated once.

use http::{HeaderMap, HeaderName, HeaderValue};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request id: 1–64 characters of `[A-Za-z0-9-_.:]`.
#[derive(Clone, Debug)]
pub struct RequestId(HeaderValue);

impl Default for RequestId {
    fn default() -> Self {
        RequestId(HeaderValue::from_static(""))
    }
}

impl RequestId {
    /// A trusted proxy's `X-Request-Id` when it is short and plain, else a new random one.
    pub fn for_request(headers: &HeaderMap, trusted: bool) -> RequestId {
        match headers.get(&X_REQUEST_ID) {
            Some(id) if trusted && acceptable(id.as_bytes()) => RequestId(id.clone()),
            _ => RequestId::new(),
        }
    }

    /// A new 16-hex-digit id (unique, not secret: no system call per request).
    pub fn new() -> RequestId {
        let mut x = next_random();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for b in &mut out {
            *b = HEX[(x >> 60) as usize];
            x <<= 4;
        }
        // Hex digits are always a valid header value.
        match HeaderValue::from_bytes(&out) {
            Ok(v) => RequestId(v),
            Err(_) => RequestId::default(),
        }
    }

    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only ever built from acceptable bytes, which are ASCII.
        f.write_str(self.0.to_str().unwrap_or_default())
    }
}

/// Whether an incoming id may be kept: 1–64 bytes of letters, digits and `-_.:`.
fn acceptable(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

thread_local! {
    /// Per-thread generator state for request ids, seeded once from the OS.
    static ID_STATE: std::cell::Cell<u64> = std::cell::Cell::new({
        let mut seed = [0u8; 8];
        if getrandom::fill(&mut seed).is_err() {
            // Without randomness ids are still unique enough per process: use the time.
            seed = (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0))
            .to_be_bytes();
        }
        u64::from_le_bytes(seed) | 1
    });
}

/// xorshift64*: a full-period sequence per thread from a random start.
fn next_random() -> u64 {
    ID_STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_plain_short_id_is_kept_anything_else_replaced() {
        let long = "a".repeat(65);
        let max = "a".repeat(64);
        for (sent, trusted, kept) in [
            ("abc-123_x.y:z", true, true),
            (max.as_str(), true, true),
            ("abc-123", false, false),
            (long.as_str(), true, false),
            ("", true, false),
            ("has space", true, false),
            ("semi;colon", true, false),
            ("quote\"", true, false),
            ("slash/", true, false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(X_REQUEST_ID, HeaderValue::from_str(sent).expect("value"));
            let id = RequestId::for_request(&headers, trusted).to_string();
            assert_eq!(id == sent, kept, "{sent:?} trusted={trusted}: got {id:?}");
            if !kept {
                assert_eq!(id.len(), 16, "{id}");
                assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            }
        }
        // No header at all: a new one.
        assert_eq!(
            RequestId::for_request(&HeaderMap::new(), true)
                .to_string()
                .len(),
            16
        );
    }

    #[test]
    fn new_ids_differ() {
        let ids: std::collections::BTreeSet<String> =
            (0..1000).map(|_| RequestId::new().to_string()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
