//! The one shape every local answer takes, and the JSON envelope.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::error::ApiError;

/// A complete local response; the proxy layer writes it (always with `Content-Length`).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// Answer to a HEAD request: headers (and length) only.
    pub head_only: bool,
}

impl ApiResponse {
    /// A response with a body and content type.
    pub fn new(
        status: StatusCode,
        content_type: &'static str,
        body: impl Into<Bytes>,
    ) -> ApiResponse {
        ApiResponse {
            status,
            headers: vec![(CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body: body.into(),
            head_only: false,
        }
    }

    /// The success envelope: `{"success": true, "message", "data"}`.
    pub fn ok(status: StatusCode, message: &str, data: Value) -> ApiResponse {
        let body = json!({"success": true, "message": message, "data": data});
        ApiResponse::new(status, "application/json", body.to_string())
    }

    /// Add a header (skipped if the value is not a valid header value).
    pub fn with_header(mut self, name: HeaderName, value: &str) -> ApiResponse {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }
}

/// The error envelope (or, for browsers on proxied paths, a small HTML page) for an error.
/// Internal details are logged here and never sent.
pub fn error_response(err: &ApiError, html: bool) -> ApiResponse {
    let message = err.client_message();
    let mut response = if html {
        let status = err.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} {title}</title></head>\
             <body><h1>{code} {title}</h1><p>{msg}</p></body></html>\n",
            code = status.as_u16(),
            title = escape_html(title),
            msg = escape_html(&message),
        );
        let mut r = ApiResponse::new(status, "text/html; charset=utf-8", page);
        r.headers.push((
            http::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'"),
        ));
        r
    } else {
        let mut error = json!({"code": err.code()});
        if let Some(fields) = err.fields() {
            error["fields"] = json!(fields);
        }
        let body = json!({"success": false, "message": message, "error": error});
        ApiResponse::new(err.status(), "application/json", body.to_string())
    };
    if let Some(secs) = err.retry_after() {
        response = response.with_header(http::header::RETRY_AFTER, &secs.to_string());
    }
    for value in err.challenge() {
        response
            .headers
            .push((http::header::WWW_AUTHENTICATE, value));
    }
    response
}

/// Escape text for HTML element content and attribute values.
pub use crate::pages::esc as escape_html;

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(r: &ApiResponse) -> Value {
        serde_json::from_slice(&r.body).expect("json")
    }

    #[test]
    fn error_envelope_has_code_fields_and_retry_after() {
        let r = error_response(&ApiError::field("email", "is required"), false);
        assert_eq!(r.status, 400);
        let v = json_of(&r);
        assert_eq!(v["success"], false);
        assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(v["error"]["fields"]["email"], "is required");

        let r = error_response(
            &ApiError::RateLimited {
                retry_after_secs: 7,
            },
            false,
        );
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == http::header::RETRY_AFTER && v == "7"));
        assert!(json_of(&r)["error"].get("fields").is_none());

        let r = error_response(&ApiError::Internal("db path /secret".into()), false);
        assert!(!String::from_utf8_lossy(&r.body).contains("secret"));
    }

    #[test]
    fn html_errors_are_escaped() {
        let r = error_response(&ApiError::Forbidden("<script>x</script>".into()), true);
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            body.contains("&lt;script&gt;") && !body.contains("<script>"),
            "{body}"
        );
    }
}
