//! API tokens in the browser: the account page's token form (answered by `forms`, like the
//! page's other forms), and the administration pages for service accounts and their tokens.
//! Each form becomes the JSON the token API takes and goes to its own handler, so the rules
//! (a token narrows, never widens; how many an account may hold) are decided there; a new
//! token is shown once on a page of its own, never put in an address.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use super::browser::{done_of, page_url, render, site};
use super::common::require_admin;
use super::form_json::{as_json, call, first, form, groups_list, see_other, text, ticked_groups};
use super::forms::problem;
use super::response::ApiResponse;
use super::{tokens, ApiRequest};
use crate::app::{now_secs, App};
use crate::auth::session::Identity;
use crate::error::ApiError;
use crate::pages::admin::{self as page, ServiceAccountView};
use crate::pages::tokens::{created, Created, Whose};
use crate::pages::Problem;

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

async fn accounts_page(
    app: &App,
    req: &ApiRequest,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Result<ApiResponse, ApiError> {
    require_admin(app, req).await?;
    let mut accounts = tokens::service_accounts(app).await?;
    accounts.sort_by(|a, b| a.0.username.cmp(&b.0.username));
    let site = site(app).await?;
    Ok(render(page::service_accounts(
        &site,
        &accounts,
        done_of(req),
        problem,
        status,
    )))
}

/// `GET /admin/service-accounts` (a browser).
pub async fn service_accounts(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    accounts_page(&app, &req, None, StatusCode::OK).await
}

/// `POST /admin/service-accounts/new` (the form): on to the new account's page.
pub async fn create_service_account(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let fields = form(&req);
    let body = json!({
        "name": text(&fields, "name"),
        "groups": groups_list(text(&fields, "groups")),
    });
    match call(
        &app,
        &req,
        |a, r, p| Box::pin(tokens::create_service_account(a, r, p)),
        Vec::new(),
        body,
    )
    .await
    {
        Ok(data) => Ok(see_other(
            &app,
            &format!(
                "/admin/service-accounts/{}?done=service-account-created",
                data["id"].as_str().unwrap_or_default()
            ),
        )),
        Err(e @ (ApiError::Validation { .. } | ApiError::Conflict(_))) => {
            accounts_page(&app, &req, Some(&problem(&e, &req.path)), e.status()).await
        }
        Err(e) => Err(e),
    }
}

async fn account_page(
    app: &App,
    req: &ApiRequest,
    id: &str,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Result<ApiResponse, ApiError> {
    require_admin(app, req).await?;
    let account = tokens::service_account_by_id(app, id).await?;
    let view = ServiceAccountView {
        tokens: app.store.user_api_tokens(&account.id).await?,
        token_groups: Identity::from_user(&account).groups,
        account,
        now: now_secs(),
    };
    let site = site(app).await?;
    Ok(render(page::service_account(
        &site,
        &view,
        done_of(req),
        problem,
        status,
    )))
}

/// `GET /admin/service-accounts/{id}` (a browser): its tokens.
pub async fn service_account(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    account_page(&app, &req, &first(&params), None, StatusCode::OK).await
}

/// `POST /admin/service-accounts/{id}/tokens/new` (the token form): the new token's page.
pub async fn create_service_token(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let id = first(&params);
    match call(
        &app,
        &req,
        |a, r, p| Box::pin(tokens::create_service_token(a, r, p)),
        vec![id.clone()],
        token_request(&req),
    )
    .await
    {
        Ok(data) => {
            let account = tokens::service_account_by_id(&app, &id).await?;
            let name = account.username.as_deref().unwrap_or(&account.email);
            let site = site(&app).await?;
            Ok(render(created(
                &site,
                &format!("New token for {name}"),
                &created_of(&data),
                Whose::Account,
                (
                    page_url(&app, &format!("/admin/service-accounts/{id}")),
                    "Back to the service account",
                ),
            )))
        }
        Err(e @ (ApiError::Validation { .. } | ApiError::Conflict(_))) => {
            account_page(&app, &req, &id, Some(&problem(&e, &req.path)), e.status()).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /admin/service-accounts/{id}/tokens/{tokenId}/revoke`.
pub async fn revoke_service_token(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let id = first(&params);
    match call(
        &app,
        &req,
        |a, r, p| Box::pin(tokens::revoke_service_token(a, r, p)),
        params,
        Value::Null,
    )
    .await
    {
        Ok(_) => Ok(see_other(
            &app,
            &format!("/admin/service-accounts/{id}?done=token-revoked"),
        )),
        // Already revoked (a second click): the account's page says so.
        Err(e @ ApiError::NotFound) => {
            account_page(&app, &req, &id, Some(&problem(&e, &req.path)), e.status()).await
        }
        Err(e) => Err(e),
    }
}
