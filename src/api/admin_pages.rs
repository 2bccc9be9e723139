//! The administration pages: server-rendered forms on top of the same admin API. A form post
//! is turned into the JSON the API takes and handed to the API's own handler, so every rule
//! (who may touch whom, the last owner, validation) is decided in one place; the answer is a
//! 303 to the page with a notice, or the page again with the problem at its field.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use super::browser::{done_of, page_url, query_param, redirect, render, site};
use super::common::require_admin;
use super::form_json::{call, first, form, groups_list, see_other, text};
use super::forms::problem;
use super::response::ApiResponse;
use super::{admin, settings, ApiRequest};
use crate::app::{now_secs, App};
use crate::error::ApiError;
use crate::pages::admin::{self as page, NewInvite, SettingsView, UserDetail, UserFilter};
use crate::pages::Problem;
use crate::store::Role;

/// Audit entries per page.
const AUDIT_PAGE: usize = 50;

/// `GET /admin/`: the people list.
pub async fn home(
    app: Arc<App>,
    _req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    Ok(redirect(StatusCode::FOUND, &page_url(&app, "/admin/users")))
}

/// `GET /admin/users` (a browser): search, filter, approve.
pub async fn users(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    require_admin(&app, &req).await?;
    let filter = UserFilter {
        q: query_param(&req, "q").unwrap_or_default(),
        status: query_param(&req, "status").unwrap_or_default(),
    };
    let mut found = admin::find_users(&app, Some(&filter.status), Some(&filter.q)).await?;
    // Those waiting for approval first, then the newest.
    found.sort_by(|a, b| {
        (b.status == crate::store::UserStatus::Pending)
            .cmp(&(a.status == crate::store::UserStatus::Pending))
            .then(b.created_at.cmp(&a.created_at))
    });
    let site = site(&app).await?;
    Ok(render(page::users(
        &site,
        &found,
        &filter,
        done_of(&req),
        now_secs(),
    )))
}

async fn user_detail(app: &App, req: &ApiRequest, id: &str) -> Result<UserDetail, ApiError> {
    let actor = require_admin(app, req).await?;
    let user = app.store.get_user(id).await?.ok_or(ApiError::NotFound)?;
    Ok(UserDetail {
        sessions: app.store.user_sessions(id).await?.len(),
        providers: app
            .store
            .user_identities(id)
            .await?
            .into_iter()
            .map(|i| i.provider)
            .collect(),
        actor_is_owner: actor.user.role == Role::Owner,
        user,
    })
}

async fn user_page(
    app: &App,
    req: &ApiRequest,
    id: &str,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Result<ApiResponse, ApiError> {
    let detail = user_detail(app, req, id).await?;
    let site = site(app).await?;
    Ok(render(page::user(
        &site,
        &detail,
        done_of(req),
        problem,
        status,
        now_secs(),
    )))
}

/// `GET /admin/users/{id}` (a browser).
pub async fn user(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    user_page(&app, &req, &first(&params), None, StatusCode::OK).await
}

/// The date field's `YYYY-MM-DD` as the end of that day (UTC) in RFC 3339, or null when empty.
fn expiry(text: &str) -> Result<Value, ApiError> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(text, &format)
        .map_err(|_| ApiError::field("expiresAt", "must be a date such as 2027-01-31"))?;
    let end = day
        .with_hms(23, 59, 59)
        .map_err(|_| ApiError::field("expiresAt", "must be a date such as 2027-01-31"))?
        .assume_utc();
    Ok(json!(end
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| ApiError::Internal(format!(
            "formatting a date: {e}"
        )))?))
}

/// `POST /admin/users/{id}` (the person form): role, status, groups, expiry.
pub async fn save_user(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let id = first(&params);
    let fields = form(&req);
    let outcome = async {
        let mut body = json!({
            "status": text(&fields, "status"),
            "groups": groups_list(text(&fields, "groups")),
            "expiresAt": expiry(text(&fields, "expiresAt"))?,
        });
        // A service account's page has no role to choose: it stays one.
        if fields.contains_key("role") {
            body["role"] = json!(text(&fields, "role"));
        }
        call(
            &app,
            &req,
            |a, r, p| Box::pin(admin::patch_user(a, r, p)),
            vec![id.clone()],
            body,
        )
        .await
    }
    .await;
    match outcome {
        Ok(_) => Ok(see_other(&app, &format!("/admin/users/{id}?done=saved"))),
        Err(e @ (ApiError::Validation { .. } | ApiError::Forbidden(_) | ApiError::Conflict(_))) => {
            user_page(&app, &req, &id, Some(&problem(&e, &req.path)), e.status()).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /admin/users/{id}/approve`: status active; back to where the button was.
pub async fn approve(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let id = first(&params);
    // The person's own page says so; the list does not.
    let from_list = text(&form(&req), "back") != "person";
    call(
        &app,
        &req,
        |a, r, p| Box::pin(admin::patch_user(a, r, p)),
        vec![id.clone()],
        json!({"status": "active"}),
    )
    .await?;
    Ok(if from_list {
        see_other(&app, "/admin/users?done=approved")
    } else {
        see_other(&app, &format!("/admin/users/{id}?done=approved"))
    })
}

/// `POST /admin/users/{id}/revoke`: end every session of the account.
pub async fn revoke(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let id = first(&params);
    call(
        &app,
        &req,
        |a, r, p| Box::pin(admin::revoke_user_sessions(a, r, p)),
        vec![id.clone()],
        Value::Null,
    )
    .await?;
    Ok(see_other(&app, &format!("/admin/users/{id}?done=revoked")))
}

/// `POST /admin/users/{id}/reset-2fa`: remove the person's second factors and end their
/// sessions.
pub async fn reset_second_factor(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let id = first(&params);
    match call(
        &app,
        &req,
        |a, r, p| Box::pin(admin::reset_second_factor(a, r, p)),
        vec![id.clone()],
        Value::Null,
    )
    .await
    {
        Ok(_) => Ok(see_other(
            &app,
            &format!("/admin/users/{id}?done=two-factor-reset"),
        )),
        Err(e @ ApiError::Forbidden(_)) => {
            user_page(&app, &req, &id, Some(&problem(&e, &req.path)), e.status()).await
        }
        Err(e) => Err(e),
    }
}

/// `GET /admin/users/{id}/delete`: the question first.
pub async fn confirm_delete(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let detail = user_detail(&app, &req, &first(&params)).await?;
    let site = site(&app).await?;
    Ok(render(page::confirm_delete(&site, &detail.user)))
}

/// `POST /admin/users/{id}/delete`.
pub async fn delete(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let id = first(&params);
    match call(
        &app,
        &req,
        |a, r, p| Box::pin(admin::delete_user(a, r, p)),
        vec![id.clone()],
        Value::Null,
    )
    .await
    {
        Ok(_) => Ok(see_other(&app, "/admin/users?done=deleted")),
        Err(e @ ApiError::Forbidden(_)) => {
            user_page(&app, &req, &id, Some(&problem(&e, &req.path)), e.status()).await
        }
        Err(e) => Err(e),
    }
}

async fn invites_page(
    app: &App,
    req: &ApiRequest,
    created: Option<&NewInvite>,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Result<ApiResponse, ApiError> {
    require_admin(app, req).await?;
    let mut list = app.store.list_invites().await?;
    list.sort_by_key(|i| std::cmp::Reverse(i.created_at));
    let site = site(app).await?;
    Ok(render(page::invites(
        &site,
        &list,
        done_of(req),
        created,
        problem,
        status,
        now_secs(),
    )))
}

/// `GET /admin/invites` (a browser).
pub async fn invites(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    invites_page(&app, &req, None, None, StatusCode::OK).await
}

/// `POST /admin/invites/new` (the invitation form): the page again, with the new link.
pub async fn create_invite(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let fields = form(&req);
    let uses = text(&fields, "uses");
    let body = json!({
        "role": text(&fields, "role"),
        "groups": groups_list(text(&fields, "groups")),
        "uses": uses.parse::<u64>().map(Value::from).unwrap_or_else(|_| json!(uses)),
        "expiresIn": text(&fields, "expiresIn"),
    });
    match call(
        &app,
        &req,
        |a, r, p| Box::pin(admin::create_invite(a, r, p)),
        Vec::new(),
        body,
    )
    .await
    {
        Ok(data) => {
            let link = data["link"].as_str().unwrap_or_default().to_string();
            let created = NewInvite { link };
            invites_page(&app, &req, Some(&created), None, StatusCode::CREATED).await
        }
        Err(e @ (ApiError::Validation { .. } | ApiError::Forbidden(_))) => {
            invites_page(&app, &req, None, Some(&problem(&e, &req.path)), e.status()).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /admin/invites/{code}/delete`.
pub async fn delete_invite(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    call(
        &app,
        &req,
        |a, r, p| Box::pin(admin::delete_invite(a, r, p)),
        params,
        Value::Null,
    )
    .await?;
    Ok(see_other(&app, "/admin/invites?done=invite-deleted"))
}

/// `GET /admin/audit[?before=]` (a browser).
pub async fn audit(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    require_admin(&app, &req).await?;
    let before = query_param(&req, "before").and_then(|b| b.parse::<u64>().ok());
    let entries = app.store.list_audit(before, AUDIT_PAGE).await?;
    let older = if entries.len() == AUDIT_PAGE {
        entries.last().map(|(id, _)| *id)
    } else {
        None
    };
    let users = app.store.list_users().await?;
    let names = |id: &str| users.iter().find(|u| u.id == id).map(|u| u.email.clone());
    let site = site(&app).await?;
    Ok(render(page::audit(&site, &entries, &names, older)))
}

async fn settings_page(
    app: &App,
    req: &ApiRequest,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Result<ApiResponse, ApiError> {
    require_admin(app, req).await?;
    let stored = app.store.overrides().await?;
    let view = SettingsView {
        file_registration: app.config.auth.registration,
        file_native_signin: app.config.auth.native_signin,
        registration_override: stored.registration,
        native_override: stored.native_signin,
        native_may_be_off: !app.oidc.providers().is_empty(),
    };
    let site = site(app).await?;
    Ok(render(page::settings(
        &site,
        &view,
        done_of(req),
        problem,
        status,
    )))
}

/// `GET /admin/settings` (a browser).
pub async fn settings_form(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    settings_page(&app, &req, None, StatusCode::OK).await
}

/// `POST /admin/settings` (the settings form): "file" goes back to the file's value.
pub async fn save_settings(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let fields = form(&req);
    let registration = match text(&fields, "registration") {
        "file" | "" => Value::Null,
        word => json!(word),
    };
    let native = match text(&fields, "nativeSignin") {
        "on" => json!(true),
        "off" => json!(false),
        _ => Value::Null,
    };
    match call(
        &app,
        &req,
        |a, r, p| Box::pin(settings::config_update(a, r, p)),
        Vec::new(),
        json!({"registration": registration, "nativeSignin": native}),
    )
    .await
    {
        Ok(_) => Ok(see_other(&app, "/admin/settings?done=settings-saved")),
        Err(e @ ApiError::Validation { .. }) => {
            settings_page(&app, &req, Some(&problem(&e, &req.path)), e.status()).await
        }
        Err(e) => Err(e),
    }
}
