//! Request body decoding and field extraction with per-field errors.

use serde_json::{Map, Value};

use super::ApiRequest;
use crate::error::{ApiError, FieldErrors};

/// A decoded body: a JSON object, or an HTML form turned into one (all values strings).
pub struct Body {
    fields: Map<String, Value>,
    pub errors: FieldErrors,
    /// Decoded from `application/x-www-form-urlencoded`.
    pub form: bool,
}

/// Whether the request carries an HTML form.
pub fn is_form(req: &ApiRequest) -> bool {
    mime(req) == "application/x-www-form-urlencoded"
}

fn mime(req: &ApiRequest) -> String {
    let content_type = req.header("content-type").unwrap_or("");
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decode a JSON object body, or an HTML form (for the endpoints the pages post to).
pub fn form_or_json_body(req: &ApiRequest) -> Result<Body, ApiError> {
    if !is_form(req) {
        return json_body(req);
    }
    let mut fields = Map::new();
    for (k, v) in form_urlencoded::parse(&req.body) {
        // The first value of a repeated field wins.
        fields
            .entry(k.into_owned())
            .or_insert(Value::String(v.into_owned()));
    }
    Ok(Body {
        fields,
        errors: FieldErrors::new(),
        form: true,
    })
}

/// Decode the body as a JSON object. An empty body is an empty object; any other content type
/// than JSON is refused with 415.
pub fn json_body(req: &ApiRequest) -> Result<Body, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Body {
            fields: Map::new(),
            errors: FieldErrors::new(),
            form: false,
        });
    }
    let mime = mime(req);
    if mime != "application/json" && !(mime.starts_with("application/") && mime.ends_with("+json"))
    {
        return Err(ApiError::UnsupportedMediaType);
    }
    let value: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::invalid(format!("malformed JSON: {}", json_problem(&e))))?;
    match value {
        Value::Object(fields) => Ok(Body {
            fields,
            errors: FieldErrors::new(),
            form: false,
        }),
        _ => Err(ApiError::invalid("the body must be a JSON object")),
    }
}

fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of input".into(),
        Category::Syntax => format!("syntax error at line {} column {}", e.line(), e.column()),
        Category::Data => "invalid data".into(),
        Category::Io => "unreadable body".into(),
    }
}

impl Body {
    fn first<'a>(&'a self, names: &[&'a str]) -> Option<(&'a str, &'a Value)> {
        names
            .iter()
            .find_map(|n| self.fields.get(*n).map(|v| (*n, v)))
    }

    /// Whether any of the names is present (even as null).
    pub fn has(&self, names: &[&str]) -> bool {
        self.first(names).is_some()
    }

    /// A string field under any of its names (first one is the canonical name for errors).
    /// Null and absent are `None`; another type is recorded as an error.
    pub fn text(&mut self, names: &[&str]) -> Option<String> {
        let canonical = names.first().copied().unwrap_or("");
        match self.first(names) {
            None | Some((_, Value::Null)) => None,
            Some((_, Value::String(s))) => Some(s.clone()),
            Some(_) => {
                self.errors
                    .insert(canonical.into(), "must be a string".into());
                None
            }
        }
    }

    /// A required string field.
    pub fn required_text(&mut self, names: &[&str]) -> Option<String> {
        let canonical = names.first().copied().unwrap_or("");
        let v = self.text(names);
        if v.is_none() && !self.errors.contains_key(canonical) {
            self.errors.insert(canonical.into(), "is required".into());
        }
        v
    }

    /// A field's raw JSON value under any of its names (absent is `None`, null is `Some(Null)`).
    pub fn value(&self, names: &[&str]) -> Option<Value> {
        self.first(names).map(|(_, v)| v.clone())
    }

    /// A boolean field; absent or null is `None`.
    pub fn flag(&mut self, names: &[&str]) -> Option<bool> {
        let canonical = names.first().copied().unwrap_or("");
        match self.first(names) {
            None | Some((_, Value::Null)) => None,
            Some((_, Value::Bool(b))) => Some(*b),
            // A form checkbox sends "on" when ticked and nothing otherwise.
            Some((_, Value::String(s))) if self.form => Some(matches!(
                s.to_ascii_lowercase().as_str(),
                "on" | "true" | "1" | "yes"
            )),
            Some(_) => {
                self.errors
                    .insert(canonical.into(), "must be true or false".into());
                None
            }
        }
    }

    /// Record a problem with a field.
    pub fn problem(&mut self, field: &str, problem: impl Into<String>) {
        self.errors
            .entry(field.into())
            .or_insert_with(|| problem.into());
    }

    /// `Err(VALIDATION_ERROR)` with every recorded problem, if any.
    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        Err(ApiError::Validation {
            message: "validation failed".into(),
            fields: std::mem::take(&mut self.errors),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};

    fn req(content_type: Option<&str>, body: &str) -> ApiRequest {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert("content-type", HeaderValue::from_str(ct).expect("ct"));
        }
        ApiRequest {
            method: Method::POST,
            path: "/login".into(),
            query: None,
            headers,
            body: Bytes::from(body.to_string()),
            client_ip: "127.0.0.1".parse().expect("ip"),
            peer_ip: "127.0.0.1".parse().expect("ip"),
            scheme: "http",
            original_target: None,
        }
    }

    fn code(r: Result<Body, ApiError>) -> &'static str {
        match r {
            Ok(_) => "OK",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn body_decoding_table() {
        assert_eq!(code(json_body(&req(None, ""))), "OK");
        assert_eq!(code(json_body(&req(Some("application/json"), "{}"))), "OK");
        assert_eq!(
            code(json_body(&req(
                Some("application/json; charset=utf-8"),
                "{\"a\":1}"
            ))),
            "OK"
        );
        assert_eq!(
            code(json_body(&req(Some("text/plain"), "{}"))),
            "UNSUPPORTED_MEDIA_TYPE"
        );
        assert_eq!(code(json_body(&req(None, "{}"))), "UNSUPPORTED_MEDIA_TYPE");
        assert_eq!(
            code(json_body(&req(Some("application/json"), "{"))),
            "VALIDATION_ERROR"
        );
        assert_eq!(
            code(json_body(&req(Some("application/json"), "[1]"))),
            "VALIDATION_ERROR"
        );
        assert_eq!(
            code(json_body(&req(Some("application/json"), "\"x\""))),
            "VALIDATION_ERROR"
        );
        let deep = "[".repeat(10_000);
        assert_eq!(
            code(json_body(&req(Some("application/json"), &deep))),
            "VALIDATION_ERROR"
        );
    }

    #[test]
    fn fields_report_type_errors_by_canonical_name() {
        let r = req(
            Some("application/json"),
            r#"{"name": 5, "identifier": "a", "remember": "yes"}"#,
        );
        let mut b = json_body(&r).expect("object");
        assert_eq!(b.text(&["fullName", "name"]), None);
        assert_eq!(b.required_text(&["identifier", "email"]), Some("a".into()));
        assert_eq!(b.flag(&["remember"]), None);
        assert_eq!(b.required_text(&["password"]), None);
        let err = b.finish().expect_err("problems");
        let fields = err.fields().expect("fields").clone();
        assert_eq!(
            fields.get("fullName").map(String::as_str),
            Some("must be a string")
        );
        assert_eq!(
            fields.get("remember").map(String::as_str),
            Some("must be true or false")
        );
        assert_eq!(
            fields.get("password").map(String::as_str),
            Some("is required")
        );
    }
}
