//! The built-in `whoami` upstream: shows the request as an upstream would receive it.

use http::{HeaderMap, Method, StatusCode};
use serde_json::json;

use crate::api::ApiResponse;

/// Render the request (after header rewriting) as text, or JSON when asked for. It shows who
/// is signed in, so no cache (nor the browser's Back button) may keep it.
pub fn render(method: &Method, target: &str, headers: &HeaderMap, json: bool) -> ApiResponse {
    shown(method, target, headers, json).with_header(http::header::CACHE_CONTROL, "no-store")
}

fn shown(method: &Method, target: &str, headers: &HeaderMap, json: bool) -> ApiResponse {
    let mut pairs: Vec<(&str, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    if json {
        let headers: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), json!(v)))
            .collect();
        let body = json!({"method": method.as_str(), "uri": target, "headers": headers});
        return ApiResponse::new(StatusCode::OK, "application/json", body.to_string());
    }
    let mut text =
        format!("authgate whoami: this is what an upstream would receive\n\n{method} {target}\n");
    for (k, v) in pairs {
        text.push_str(k);
        text.push_str(": ");
        text.push_str(&v);
        text.push('\n');
    }
    ApiResponse::new(StatusCode::OK, "text/plain; charset=utf-8", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_method_target_and_headers() {
        let mut h = HeaderMap::new();
        h.insert("remote-user", "alice".parse().expect("value"));
        let r = render(&Method::GET, "/x?y=1", &h, false);
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == http::header::CACHE_CONTROL && v == "no-store"));
        let text = String::from_utf8_lossy(&r.body);
        assert!(
            text.contains("GET /x?y=1") && text.contains("remote-user: alice"),
            "{text}"
        );
        let r = render(&Method::GET, "/x", &h, true);
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(v["headers"]["remote-user"], "alice");
    }
}
