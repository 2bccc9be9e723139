//! API tokens in the browser: the account page's token form (answered by `forms`, like the
//! page's other forms). The form becomes the JSON the token API takes and goes to its own
//! handler, so the rules (a token narrows, never widens; how many an account may hold) are
//! decided there; a new token is shown once on a page of its own, never put in an address.

use std::sync::Arc;

use serde_json::{json, Value};

use super::form_json::{as_json, form, text, ticked_groups};
use super::response::ApiResponse;
use super::{tokens, ApiRequest};
use crate::app::App;
use crate::error::ApiError;
use crate::pages::tokens::Created;

/// The token form's fields as the JSON the token API takes: ticked groups limit the token,
/// none leaves it all its owner's access.
fn token_request(req: &ApiRequest) -> Value {
    let fields = form(req);
    let mut body = json!({
        "name": text(&fields, "name"),
        "expiresIn": text(&fields, "expiresIn"),
    });
    let groups = ticked_groups(req, "groups");
    if !groups.is_empty() {
        body["groups"] = json!(groups);
    }
    body
}

/// A new token as the token API answered it (its envelope's `data`).
pub(super) fn created_of(data: &Value) -> Created {
    let text = |name: &str| data[name].as_str().unwrap_or_default().to_string();
    Created {
        name: text("name"),
        token: text("token"),
        groups: data["groups"].as_array().map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        }),
        expires_at: data["expiresAt"].as_str().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| t.unix_timestamp())
        }),
    }
}

/// `POST /tokens/new` (the account page's form): handed to `POST /tokens` as JSON; `forms`
/// turns the answer into the page that shows the token, or the form with its problem.
pub async fn create_mine(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let body = token_request(&req);
    tokens::create(app, as_json(&req, &body), Vec::new()).await
}
