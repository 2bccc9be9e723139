//! A page's form as the JSON an API handler takes, and the call to that handler as the same
//! client: the admin and token pages post forms, and the API's own handlers decide.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use super::browser::{page_url, redirect};
use super::response::ApiResponse;
use super::{ApiRequest, Handler};
use crate::app::App;
use crate::error::ApiError;

/// The same request from the same client, with `body` as its JSON.
pub(super) fn as_json(req: &ApiRequest, body: &Value) -> ApiRequest {
    let mut inner = req.clone();
    inner
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    inner.body = Bytes::from(body.to_string());
    inner
}

/// Call an API handler with `body` as its JSON, as the same client; the envelope's `data`.
pub(super) async fn call(
    app: &Arc<App>,
    req: &ApiRequest,
    handler: Handler,
    params: Vec<String>,
    body: Value,
) -> Result<Value, ApiError> {
    let resp = handler(Arc::clone(app), as_json(req, &body), params).await?;
    let envelope: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    Ok(envelope["data"].clone())
}

/// The form's fields (the first value of each).
pub(super) fn form(req: &ApiRequest) -> Map<String, Value> {
    let mut fields = Map::new();
    for (k, v) in form_urlencoded::parse(&req.body) {
        fields
            .entry(k.into_owned())
            .or_insert(Value::String(v.trim().to_string()));
    }
    fields
}

/// A field of [`form`] as text ("" when absent).
pub(super) fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> &'a str {
    fields.get(name).and_then(Value::as_str).unwrap_or("")
}

/// Every value of a repeated field (ticked checkboxes), each also split at commas, as the
/// API's list of group names.
pub(super) fn ticked_groups(req: &ApiRequest, name: &str) -> Vec<String> {
    form_urlencoded::parse(&req.body)
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// "a, b ,c" as the API's list of group names.
pub(super) fn groups_list(text: &str) -> Value {
    Value::Array(
        text.split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(|g| json!(g))
            .collect(),
    )
}

/// A 303 to the page at `path` under the prefix.
pub(super) fn see_other(app: &App, path: &str) -> ApiResponse {
    redirect(StatusCode::SEE_OTHER, &page_url(app, path))
}

/// The first `{}` of the address ("" when there is none).
pub(super) fn first(params: &[String]) -> String {
    params.first().cloned().unwrap_or_default()
}
