//! Gateway-wide endpoints: status, health and the registration settings.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use super::body::json_body;
use super::common::require_admin;
use super::response::ApiResponse;
use super::ApiRequest;
use crate::app::{App, Effective};
use crate::config::Registration;
use crate::error::ApiError;
use crate::store::Override;

/// `GET /status`.
pub async fn status(
    app: Arc<App>,
    _req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let needs_setup = !app.store.owner_exists().await?;
    let settings = app.settings().await?;
    let data = json!({
        "needsSetup": needs_setup,
        "registration": settings.registration.as_str(),
        "nativeSignin": settings.native_signin,
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
    if app.store.healthy().await {
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

fn config_view(settings: &Effective) -> Value {
    json!({
        "nativeSignin": settings.native_signin,
        "register": settings.registration != Registration::Closed,
        "registration": settings.registration.as_str(),
    })
}

/// `GET /config`.
pub async fn config(
    app: Arc<App>,
    _req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let settings = app.settings().await?;
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "ok",
        config_view(&settings),
    ))
}

/// `POST /config/update` (owner/admin): store overrides of the file's registration settings;
/// `null` for a key goes back to the file's value.
pub async fn config_update(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_admin(&app, &req).await?;
    let mut body = json_body(&req)?;
    let clear_registration = matches!(body.value(&["registration"]), Some(Value::Null))
        || matches!(body.value(&["register"]), Some(Value::Null));
    let clear_native = matches!(
        body.value(&["nativeSignin", "native_signin"]),
        Some(Value::Null)
    );
    let native = if clear_native {
        None
    } else {
        body.flag(&["nativeSignin", "native_signin"])
    };
    let register = if clear_registration {
        None
    } else {
        body.flag(&["register"])
    };
    let word = if clear_registration {
        None
    } else {
        body.text(&["registration"])
    };
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
    if clear_native && !app.config.auth.native_signin && app.oidc.providers().is_empty() {
        body.problem(
            "nativeSignin",
            "the file's value needs a sign-in provider, and none is configured",
        );
    }
    body.finish()?;

    let registration_change = match (registration, clear_registration) {
        (_, true) => Override::Clear,
        (Some(r), false) => Override::Set(r.as_str().to_string()),
        (None, false) => Override::Keep,
    };
    let native_change = match (native, clear_native) {
        (_, true) => Override::Clear,
        (Some(n), false) => Override::Set(n),
        (None, false) => Override::Keep,
    };
    if registration_change != Override::Keep || native_change != Override::Keep {
        let detail =
            format!("registration={registration_change:?} native_signin={native_change:?}");
        app.store
            .set_overrides(registration_change, native_change)
            .await?;
        app.audit(
            "config_update",
            Some(req.client_ip),
            Some(&auth.user.id),
            None,
            Some(detail),
        );
    }
    let settings = app.settings().await?;
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "settings updated",
        config_view(&settings),
    ))
}
