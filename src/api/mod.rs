//! The account API under `auth.prefix`: plain handlers from an [`ApiRequest`] to an
//! [`ApiResponse`], testable without a socket. [`handle`] routes and turns errors into the
//! JSON envelope.

mod admin;
mod admin_pages;
mod body;
mod browser;
mod common;
mod form_json;
mod forms;
pub(crate) mod forward;
mod me;
mod oidc;
mod passkeys;
mod recovery;
mod response;
mod settings;
mod signin;
mod signup;
mod token_pages;
pub mod tokens;
mod two_factor;
mod validate;
pub mod views;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::app::App;
use crate::auth::csrf;
use crate::error::ApiError;

pub use admin::{new_invite_code, parse_groups};
pub use body::{form_or_json_body, json_body, Body};
pub use browser::error_page;
pub use common::{find_account, new_user_id};
pub use response::{error_response, escape_html, ApiResponse};
pub use validate::{
    email as validate_email, password as validate_password, username as validate_username,
};

/// Envoy's HTTP `ext_authz` endpoint below the prefix; the original path follows it.
pub const EXT_AUTHZ: &str = "/ext-authz";

/// A request for the API, already read in full (bounded by `server.max_body`).
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// The normalised path below the prefix, starting with `/` (`/` for the prefix itself).
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub client_ip: IpAddr,
    /// The direct peer (a proxy, for forward-auth requests).
    pub peer_ip: IpAddr,
    /// `http` or `https`, as the client reached the gateway.
    pub scheme: &'static str,
    /// For Envoy's HTTP `ext_authz` (`path` is then `/ext-authz`): what followed
    /// `{prefix}/ext-authz` in the raw request target, the original request's own, as sent.
    pub original_target: Option<String>,
}

impl ApiRequest {
    /// A header as text, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The future every handler returns.
pub type BoxFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<ApiResponse, ApiError>> + Send>>;

type Handler = fn(Arc<App>, ApiRequest, Vec<String>) -> BoxFuture;

/// One endpoint: method, path pattern (`{}` matches one segment), handler; a page endpoint
/// answers only browsers (`Accept: text/html`), others at the same address get the JSON one.
struct Endpoint {
    method: Method,
    pattern: &'static str,
    handler: Handler,
    page: bool,
}

macro_rules! endpoint {
    ($method:ident, $pattern:literal, $handler:path) => {
        Endpoint {
            method: Method::$method,
            pattern: $pattern,
            handler: |app, req, params| Box::pin($handler(app, req, params)),
            page: false,
        }
    };
}

macro_rules! page {
    ($method:ident, $pattern:literal, $handler:path) => {
        Endpoint {
            method: Method::$method,
            pattern: $pattern,
            handler: |app, req, params| Box::pin($handler(app, req, params)),
            page: true,
        }
    };
}

fn endpoints() -> &'static [Endpoint] {
    static ENDPOINTS: std::sync::OnceLock<Vec<Endpoint>> = std::sync::OnceLock::new();
    ENDPOINTS.get_or_init(|| {
        vec![
            // Pages for browsers; the admin ones share their address with the JSON API.
            page!(GET, "/admin", admin_pages::home),
            page!(GET, "/admin/", admin_pages::home),
            page!(GET, "/admin/users", admin_pages::users),
            page!(GET, "/admin/users/{}", admin_pages::user),
            page!(POST, "/admin/users/{}", admin_pages::save_user),
            page!(POST, "/admin/users/{}/approve", admin_pages::approve),
            page!(POST, "/admin/users/{}/revoke", admin_pages::revoke),
            page!(
                POST,
                "/admin/users/{}/reset-2fa",
                admin_pages::reset_second_factor
            ),
            page!(GET, "/admin/users/{}/delete", admin_pages::confirm_delete),
            page!(POST, "/admin/users/{}/delete", admin_pages::delete),
            page!(
                GET,
                "/admin/service-accounts",
                token_pages::service_accounts
            ),
            page!(
                POST,
                "/admin/service-accounts/new",
                token_pages::create_service_account
            ),
            page!(
                GET,
                "/admin/service-accounts/{}",
                token_pages::service_account
            ),
            page!(
                POST,
                "/admin/service-accounts/{}/tokens/new",
                token_pages::create_service_token
            ),
            page!(
                POST,
                "/admin/service-accounts/{}/tokens/{}/revoke",
                token_pages::revoke_service_token
            ),
            page!(GET, "/admin/invites", admin_pages::invites),
            page!(POST, "/admin/invites/new", admin_pages::create_invite),
            page!(POST, "/admin/invites/{}/delete", admin_pages::delete_invite),
            page!(GET, "/admin/audit", admin_pages::audit),
            page!(GET, "/admin/settings", admin_pages::settings_form),
            page!(POST, "/admin/settings", admin_pages::save_settings),
            endpoint!(GET, "/assets/{}", browser::asset),
            endpoint!(GET, "/", browser::account_page),
            endpoint!(GET, "/login", browser::login_page),
            endpoint!(GET, "/register", browser::register_page),
            endpoint!(GET, "/setup", browser::setup_page),
            endpoint!(GET, "/forgot-password", browser::forgot_page),
            endpoint!(GET, "/reset-password", browser::reset_page),
            endpoint!(GET, "/verify-email", browser::verify_page),
            endpoint!(GET, "/status", settings::status),
            endpoint!(GET, "/oauth/{}", oidc::start),
            endpoint!(GET, "/oauth/{}/callback", oidc::callback),
            endpoint!(GET, "/google", oidc::start),
            endpoint!(GET, "/google/callback", oidc::callback),
            endpoint!(GET, "/admin/users", admin::list_users),
            endpoint!(GET, "/admin/users/{}", admin::get_user),
            endpoint!(PATCH, "/admin/users/{}", admin::patch_user),
            endpoint!(DELETE, "/admin/users/{}", admin::delete_user),
            endpoint!(
                DELETE,
                "/admin/users/{}/sessions",
                admin::revoke_user_sessions
            ),
            endpoint!(
                DELETE,
                "/admin/users/{}/identities/{}",
                admin::unlink_identity
            ),
            endpoint!(POST, "/admin/invites", admin::create_invite),
            endpoint!(GET, "/admin/invites", admin::list_invites),
            endpoint!(DELETE, "/admin/invites/{}", admin::delete_invite),
            endpoint!(GET, "/admin/audit", admin::audit_log),
            endpoint!(POST, "/validate", admin::validate),
            endpoint!(GET, "/validate", admin::validate),
            endpoint!(POST, "/forgot-password", recovery::forgot_password),
            endpoint!(POST, "/reset-password", recovery::reset_password),
            endpoint!(POST, "/verify-email", recovery::verify_email),
            endpoint!(POST, "/resend-verification", recovery::resend_verification),
            endpoint!(GET, "/health", settings::health),
            endpoint!(GET, "/config", settings::config),
            endpoint!(POST, "/config/update", settings::config_update),
            endpoint!(GET, "/setup/exists", signup::setup_exists),
            endpoint!(POST, "/setup", signup::setup),
            endpoint!(POST, "/register", signup::register),
            endpoint!(POST, "/login", signin::login),
            endpoint!(GET, "/logout", signin::logout),
            endpoint!(POST, "/logout", signin::logout),
            endpoint!(POST, "/logout-all", signin::logout_all),
            endpoint!(GET, "/me", me::me),
            endpoint!(PATCH, "/me", me::update_me),
            endpoint!(DELETE, "/me/identities/{}", oidc::unlink_mine),
            endpoint!(POST, "/unlink", oidc::unlink_mine),
            endpoint!(POST, "/profile", me::update_me),
            endpoint!(POST, "/change-password", me::change_password),
            endpoint!(POST, "/password", me::change_password),
            endpoint!(GET, "/2fa", browser::two_factor_page),
            endpoint!(GET, "/2fa/setup", browser::two_factor_setup_page),
            endpoint!(POST, "/2fa/totp/remove", two_factor::totp_remove),
            endpoint!(POST, "/2fa/totp/setup", two_factor::totp_setup),
            endpoint!(POST, "/2fa/totp/confirm", two_factor::totp_confirm),
            endpoint!(DELETE, "/2fa/totp", two_factor::totp_remove),
            endpoint!(POST, "/2fa/verify", two_factor::verify),
            endpoint!(POST, "/2fa/passkey/start", passkeys::second_factor_start),
            endpoint!(POST, "/2fa/passkey/finish", passkeys::second_factor_finish),
            endpoint!(POST, "/passkeys/register/start", passkeys::register_start),
            endpoint!(POST, "/passkeys/register/finish", passkeys::register_finish),
            endpoint!(POST, "/tokens", tokens::create),
            endpoint!(GET, "/tokens", tokens::list),
            endpoint!(DELETE, "/tokens/{}", tokens::revoke),
            endpoint!(POST, "/tokens/new", token_pages::create_mine),
            endpoint!(POST, "/tokens/{}/revoke", tokens::revoke),
            endpoint!(
                POST,
                "/admin/service-accounts",
                tokens::create_service_account
            ),
            endpoint!(
                GET,
                "/admin/service-accounts",
                tokens::list_service_accounts
            ),
            endpoint!(
                POST,
                "/admin/service-accounts/{}/tokens",
                tokens::create_service_token
            ),
            endpoint!(
                GET,
                "/admin/service-accounts/{}/tokens",
                tokens::list_service_tokens
            ),
            endpoint!(
                DELETE,
                "/admin/service-accounts/{}/tokens/{}",
                tokens::revoke_service_token
            ),
            endpoint!(GET, "/passkeys", passkeys::list),
            endpoint!(DELETE, "/passkeys/{}", passkeys::delete),
            endpoint!(POST, "/passkeys/{}/delete", passkeys::delete),
            endpoint!(POST, "/passkeys/login/start", passkeys::login_start),
            endpoint!(POST, "/passkeys/login/finish", passkeys::login_finish),
            endpoint!(POST, "/2fa/recovery-codes", two_factor::new_recovery_codes),
            endpoint!(
                DELETE,
                "/admin/users/{}/second-factor",
                admin::reset_second_factor
            ),
            endpoint!(GET, "/sessions", me::sessions),
            endpoint!(DELETE, "/sessions/{}", me::revoke_session),
            endpoint!(POST, "/sessions/{}/end", me::revoke_session),
        ]
    })
}

/// Match a path against a pattern, returning the `{}` segments.
fn match_pattern(pattern: &str, path: &str) -> Option<Vec<String>> {
    if pattern.split('/').count() != path.split('/').count() {
        return None;
    }
    let mut params = Vec::new();
    for (pp, ss) in pattern.split('/').zip(path.split('/')) {
        if pp == "{}" {
            if ss.is_empty() {
                return None;
            }
            params.push(ss.to_string());
        } else if pp != ss {
            return None;
        }
    }
    Some(params)
}

/// Answer one API request. Never panics on input; internal errors are logged and hidden.
pub async fn handle(app: &Arc<App>, req: ApiRequest) -> ApiResponse {
    let head = req.method == Method::HEAD;
    let method = if head {
        Method::GET
    } else {
        req.method.clone()
    };
    let mut path_matched = false;
    let mut allowed: Vec<&str> = Vec::new();
    let mut found = None;
    let browser = crate::access::wants_html(&req.headers);
    // Forward-auth checks (the busiest endpoints) are dispatched below without the table.
    let forward_auth = req.path == "/verify" || req.path == "/forward" || req.path == EXT_AUTHZ;
    for e in endpoints()
        .iter()
        .filter(|e| !forward_auth && (browser || !e.page))
    {
        if let Some(params) = match_pattern(e.pattern, &req.path) {
            path_matched = true;
            allowed.push(e.method.as_str());
            if e.method == method && found.is_none() {
                found = Some((e.handler, params, e.page));
            }
        }
    }
    let form = forms::form_post(&req);
    // A browser's navigation (or a page's own form) gets pages for its errors, never JSON.
    let page_errors =
        !forward_auth && browser && (found.as_ref().is_some_and(|f| f.2) || method == Method::GET);
    // Kept for the answer to a browser: its form's page, or the page for an error.
    let kept = (form.is_some() || page_errors).then(|| req.clone());
    let result = match found {
        // Forward-auth checks change nothing and are asked with the original request's method
        // and headers (nginx sub-requests inherit them): any method, no cross-site refusal.
        _ if req.path == "/verify" => forward::verify(Arc::clone(app), req, Vec::new()).await,
        _ if req.path == "/forward" => forward::forward(Arc::clone(app), req, Vec::new()).await,
        _ if req.path == EXT_AUTHZ => forward::envoy(Arc::clone(app), req, Vec::new()).await,
        Some(_)
            if csrf::is_cross_site(
                &req.method,
                &req.headers,
                &app.config.server.public_url.origin,
                req.scheme,
            ) =>
        {
            Err(ApiError::Forbidden("cross-site request refused".into()))
        }
        Some((handler, params, _)) => handler(Arc::clone(app), req, params).await,
        None if path_matched => Err(ApiError::MethodNotAllowed),
        None => Err(ApiError::NotFound),
    };
    let mut response = match (form, result, kept) {
        (Some(post), result, Some(req)) => forms::form_outcome(app, &req, post, result).await,
        (_, Ok(r), _) => r,
        (_, Err(ApiError::Unauthorized), Some(req)) if page_errors => {
            let back = format!(
                "{}{}{}",
                browser::page_url(app, &req.path),
                if req.query.is_some() { "?" } else { "" },
                req.query.as_deref().unwrap_or_default()
            );
            browser::to_login(app, &back)
        }
        (_, Err(e), Some(req)) if page_errors => {
            browser::error_page(app, &req.headers, &req.path, &e).await
        }
        (_, Err(e), _) => {
            let mut r = error_response(&e, false);
            if matches!(e, ApiError::MethodNotAllowed) {
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    r.headers.push((http::header::ALLOW, v));
                }
            }
            r
        }
    };
    // Nothing the API answers may be kept by a cache, but the pages' own files.
    if !response
        .headers
        .iter()
        .any(|(k, _)| k == http::header::CACHE_CONTROL)
    {
        response.headers.push((
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    }
    if head {
        response.head_only = true;
    }
    response
}

/// Status helper for handlers.
pub(crate) const CREATED: StatusCode = StatusCode::CREATED;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        assert_eq!(match_pattern("/login", "/login"), Some(vec![]));
        assert_eq!(match_pattern("/login", "/login/x"), None);
        assert_eq!(
            match_pattern("/sessions/{}", "/sessions/abc"),
            Some(vec!["abc".into()])
        );
        assert_eq!(match_pattern("/sessions/{}", "/sessions/"), None);
        assert_eq!(match_pattern("/sessions/{}", "/sessions"), None);
    }
}

#[cfg(test)]
mod handler_tests;
