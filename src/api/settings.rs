//! Gateway-wide endpoints: status, health and the registration settings.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use super::account::require_admin;
use super::body::json_body;
use super::response::ApiResponse;
use super::ApiRequest;
use crate::app::{App, Overrides, SETTING_NATIVE_SIGNIN, SETTING_REGISTRATION};
use crate::config::Registration;
use crate::error::ApiError;

/// `GET /status`.
pub async fn status(
    app: Arc<App>,
    _req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let needs_setup = !app.store.owner_exists()?;
    let data = json!({
        "needsSetup": needs_setup,
        "registration": app.registration().as_str(),
        "nativeSignin": app.native_signin(),
        "providers": providers(&app),
    });
    Ok(ApiResponse::ok(StatusCode::OK, "ok", data))
}

/// The sign-in providers as `/status` lists them: name, label and where sign-in starts.
fn providers(app: &App) -> Vec<Value> {
    app.oidc
        .providers()
        .iter()
        .map(|p| {
            json!({
                "name": p.config.name,
                "displayName": p.config.display_name,
                "loginUrl": format!("{}/oauth/{}", app.config.auth.prefix, p.config.name),
            })
        })
        .collect()
}

/// `GET /health`: 200 when the database answers, else 503.
pub async fn health(
    app: Arc<App>,
    _req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    if app.store.healthy() {
        Ok(ApiResponse::ok(
            StatusCode::OK,
            "ok",
            json!({"status": "ok"}),
        ))
    } else {
        Err(ApiError::ServiceUnavailable {
            retry_after_secs: 5,
        })
    }
}

fn config_view(app: &App) -> Value {
    let registration = app.registration();
    json!({
        "nativeSignin": app.native_signin(),
        "register": registration != Registration::Closed,
        "registration": registration.as_str(),
    })
}

/// `GET /config`.
pub async fn config(
    app: Arc<App>,
    _req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::ok(StatusCode::OK, "ok", config_view(&app)))
}

/// `POST /config/update` (owner/admin): store overrides of the file's registration settings.
pub async fn config_update(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_admin(&app, &req)?;
    let mut body = json_body(&req)?;
    let native = body.flag(&["nativeSignin", "native_signin"]);
    let register = body.flag(&["register"]);
    let word = body.text(&["registration"]);
    let mut registration = register.map(|open| {
        if open {
            Registration::Open
        } else {
            Registration::Closed
        }
    });
    if let Some(w) = &word {
        match Registration::parse(w.trim()) {
            Some(r) => {
                if registration.is_some_and(|from_register| from_register != r) {
                    body.problem("registration", "contradicts \"register\"");
                }
                registration = Some(r);
            }
            None => body.problem(
                "registration",
                "must be one of open, approval, invite, closed",
            ),
        }
    }
    if native == Some(false) && app.oidc.providers().is_empty() {
        body.problem(
            "nativeSignin",
            "cannot be false while no sign-in provider is configured",
        );
    }
    body.finish()?;

    let mut overrides: Overrides = app.overrides();
    let mut writes: Vec<(&'static str, Value)> = Vec::new();
    if let Some(r) = registration {
        overrides.registration = Some(r);
        writes.push((SETTING_REGISTRATION, json!(r.as_str())));
    }
    if let Some(n) = native {
        overrides.native_signin = Some(n);
        writes.push((SETTING_NATIVE_SIGNIN, json!(n)));
    }
    if !writes.is_empty() {
        app.blocking(move |s| {
            let refs: Vec<(&str, Value)> = writes.into_iter().collect();
            s.put_settings(&refs)
        })
        .await??;
        app.set_overrides(overrides);
        app.audit(
            "config_update",
            Some(req.client_ip),
            Some(&auth.user.id),
            None,
            Some(format!("{overrides:?}")),
        );
    }
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "settings updated",
        config_view(&app),
    ))
}
