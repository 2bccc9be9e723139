//! The signed-in user's own account: who they are, their profile, their password, their
//! sessions.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use super::body::form_or_json_body;
use super::common::{live_sessions, refused, require_session, with_cleared_cookie};
use super::response::ApiResponse;
use super::signin::check_password;
use super::signup::read_profile;
use super::{validate, views, ApiRequest};
use crate::app::{now_secs, App};
use crate::auth::limits::AccountKey;
use crate::auth::session;
use crate::error::ApiError;

/// `GET /me`.
pub async fn me(app: Arc<App>, req: ApiRequest, _: Vec<String>) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req).await?;
    let identities: Vec<Value> = app
        .store
        .user_identities(&auth.user.id)
        .await?
        .iter()
        .map(views::identity)
        .collect();
    let factors = app.store.factors(&auth.user.id).await?;
    let data = json!({
        "user": views::user(&auth.user),
        "secondFactor": {
            "totp": factors.totp.is_some(),
            "passkeys": app.store.user_passkeys(&auth.user.id).await?.len(),
            "recoveryCodesLeft": factors.recovery_left(),
        },
        "session": {
            "id": session::public_id(&auth.key),
            "createdAt": views::rfc3339(auth.session.created_at),
            "expiresAt": views::rfc3339(auth.session.expires_at),
            "authMethods": auth.session.amr,
        },
        "identities": identities,
    });
    Ok(ApiResponse::ok(StatusCode::OK, "ok", data))
}

/// `PATCH /me`: change the enabled profile fields.
pub async fn update_me(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req).await?;
    let mut body = form_or_json_body(&req)?;
    let profile = read_profile(&mut body, &app.config.auth.fields, false);
    body.finish()?;
    let user = app
        .store
        .update_profile(&auth.user.id, profile, now_secs())
        .await
        .map_err(refused)?;
    app.audit(
        "profile_update",
        Some(req.client_ip),
        Some(&user.id),
        None,
        None,
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "profile updated",
        json!({"user": views::user(&user)}),
    ))
}

/// `POST /change-password` (and `/password`): keeps this session, revokes the others.
pub async fn change_password(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req).await?;
    if auth.user.password_hash.is_none() {
        return Err(ApiError::field(
            "currentPassword",
            "this account signs in with a provider and has no password; set one with forgot-password",
        ));
    }
    let mut body = form_or_json_body(&req)?;
    let current = body.required_text(&[
        "currentPassword",
        "current_password",
        "oldPassword",
        "old_password",
    ]);
    let new = body.required_text(&["newPassword", "new_password"]);
    if let Some(pw) = &new {
        if let Err(problem) = validate::password(pw, &app.config.auth) {
            body.problem("newPassword", problem);
        }
        if current.as_deref() == Some(pw.as_str()) {
            body.problem("newPassword", "must differ from the current password");
        }
    }
    body.finish()?;
    let (Some(current), Some(new)) = (current, new) else {
        return Err(ApiError::invalid(
            "currentPassword and newPassword are required",
        ));
    };
    let account = AccountKey::User(auth.user.id.clone());
    if !check_password(&app, &req, &account, Some(&auth.user), current).await? {
        app.audit(
            "password_change_failed",
            Some(req.client_ip),
            Some(&auth.user.id),
            None,
            None,
        );
        return Err(ApiError::InvalidCredentials);
    }
    let hash = app.hasher.hash(new).await?;
    let revoked = app
        .store
        .set_password(&auth.user.id, hash, now_secs(), Some(auth.key))
        .await
        .map_err(refused)?;
    app.audit(
        "password_change",
        Some(req.client_ip),
        Some(&auth.user.id),
        None,
        Some(format!("revoked={revoked}")),
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "password changed",
        json!({"revokedSessions": revoked}),
    ))
}

/// `GET /sessions`: the user's live sessions, newest first.
pub async fn sessions(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req).await?;
    let mut list: Vec<(i64, Value)> = live_sessions(&app, &auth.user)
        .await?
        .into_iter()
        .map(|(key, s)| {
            let view = json!({
                "id": session::public_id(&key),
                "createdAt": views::rfc3339(s.created_at),
                "lastSeenAt": views::rfc3339(s.last_seen),
                "expiresAt": views::rfc3339(s.expires_at),
                "ip": s.ip,
                "userAgent": s.user_agent,
                "current": key == auth.key,
            });
            (s.created_at, view)
        })
        .collect();
    list.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let sessions: Vec<Value> = list.into_iter().map(|(_, v)| v).collect();
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "ok",
        json!({"sessions": sessions}),
    ))
}

/// `DELETE /sessions/{id}`: revoke one of the user's sessions.
pub async fn revoke_session(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req).await?;
    let wanted = params
        .first()
        .map(|p| p.to_ascii_lowercase())
        .unwrap_or_default();
    let key = app
        .store
        .user_sessions(&auth.user.id)
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| session::public_id(k) == wanted)
        .ok_or(ApiError::NotFound)?;
    app.store.end_sessions(vec![key]).await?;
    app.audit(
        "session_revoke",
        Some(req.client_ip),
        Some(&auth.user.id),
        None,
        None,
    );
    let resp = ApiResponse::ok(StatusCode::OK, "session revoked", Value::Null);
    Ok(if key == auth.key {
        with_cleared_cookie(resp, &app)
    } else {
        resp
    })
}
