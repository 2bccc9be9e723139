//! Cross-site request refusal for state-changing `/auth` requests.

use http::{HeaderMap, Method};

/// Whether a request must be refused as cross-site: a non-GET/HEAD request whose
/// `Sec-Fetch-Site` is `cross-site` or `same-site`, or, without that header, whose `Origin`
/// is neither `public_origin` nor the request's own host. Requests with neither header pass.
pub fn is_cross_site(
    method: &Method,
    headers: &HeaderMap,
    public_origin: &str,
    scheme: &str,
) -> bool {
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return false;
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.to_str().map(|s| s.trim().to_ascii_lowercase()) {
            Ok(s) => s == "cross-site" || s == "same-site",
            Err(_) => true,
        };
    }
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if origin == public_origin.to_ascii_lowercase() {
        return false;
    }
    match headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        Some(host) => origin != format!("{scheme}://{}", host.trim().to_ascii_lowercase()),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn check(method: Method, pairs: &[(&str, &str)]) -> bool {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        is_cross_site(&method, &h, "https://auth.example.com", "http")
    }

    type Case = (Method, &'static [(&'static str, &'static str)], bool);

    #[test]
    fn csrf_table() {
        let cases: &[Case] = &[
            (Method::POST, &[], false),
            (Method::GET, &[("sec-fetch-site", "cross-site")], false),
            (Method::POST, &[("sec-fetch-site", "cross-site")], true),
            (Method::POST, &[("sec-fetch-site", "same-site")], true),
            (Method::POST, &[("sec-fetch-site", "same-origin")], false),
            (Method::POST, &[("sec-fetch-site", "none")], false),
            (
                Method::DELETE,
                &[
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://auth.example.com"),
                ],
                true,
            ),
            (
                Method::POST,
                &[("origin", "https://auth.example.com")],
                false,
            ),
            (
                Method::POST,
                &[("origin", "https://AUTH.example.com/")],
                false,
            ),
            (Method::POST, &[("origin", "https://evil.example")], true),
            (Method::POST, &[("origin", "null")], true),
            (
                Method::POST,
                &[
                    ("origin", "http://127.0.0.1:8080"),
                    ("host", "127.0.0.1:8080"),
                ],
                false,
            ),
            (
                Method::PATCH,
                &[
                    ("origin", "http://127.0.0.1:9999"),
                    ("host", "127.0.0.1:8080"),
                ],
                true,
            ),
        ];
        for (m, pairs, want) in cases {
            assert_eq!(check(m.clone(), pairs), *want, "{m} {pairs:?}");
        }
    }
}
