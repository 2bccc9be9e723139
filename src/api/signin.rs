//! Signing in and out with a password: login, logout, logout everywhere, and the one password
//! check every path uses (lockout and the client's failure limit included).

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use super::body::form_or_json_body;
use super::common::{
    audit_login, find_account, new_session, refused, require_session, sign_in_replacing,
    with_cleared_cookie, with_session_cookie,
};
use super::response::ApiResponse;
use super::{validate, views, ApiRequest};
use crate::app::{now_secs, App};
use crate::auth::limits::AccountKey;
use crate::auth::second_factor::{methods, stage_after_first_factor, Enrolled, HALF_OPEN_SECS};
use crate::auth::signin::{may_sign_in, Way};
use crate::error::ApiError;
use crate::store::{SessionStage, UserRecord};

/// 429 while the client is over its limit of failed attempts (`security.ip_rate_limit`).
pub(crate) async fn client_within_limit(
    app: &App,
    req: &ApiRequest,
    now: i64,
) -> Result<(), ApiError> {
    app.client_limit
        .check(app.store.counters(), req.client_ip, now)
        .await?
        .map_err(|secs| ApiError::RateLimited {
            retry_after_secs: secs,
        })
}

/// The answer for a locked account, audited as `event`.
pub(crate) fn locked(
    app: &App,
    req: &ApiRequest,
    account: &AccountKey,
    event: &str,
    secs: u64,
) -> ApiError {
    app.audit(
        event,
        Some(req.client_ip),
        None,
        Some(&account.to_string()),
        None,
    );
    ApiError::AccountLocked {
        retry_after_secs: secs,
    }
}

/// Check a password for an account under the lockout and the client's failure limit, shared
/// by every path that checks one. `user` is `None` for an unknown identifier (checked against
/// a dummy hash, so it costs the same). Returns whether the password matched.
pub(crate) async fn check_password(
    app: &App,
    req: &ApiRequest,
    account: &AccountKey,
    user: Option<&UserRecord>,
    password: String,
) -> Result<bool, ApiError> {
    let now = now_secs();
    let counters = app.store.counters();
    client_within_limit(app, req, now).await?;
    if let Err(secs) = app.lockout.check(counters, account, now).await? {
        // A locked account costs the same as any other attempt: no timing signal.
        app.hasher.verify(password, None).await?;
        return Err(locked(app, req, account, "login_locked", secs));
    }
    let phc = user.and_then(|u| u.password_hash.clone());
    let verified = app.hasher.verify(password.clone(), phc.clone()).await?;
    if !verified.ok {
        let now = now_secs();
        app.client_limit
            .record_failure(counters, req.client_ip, now)
            .await?;
        if let Some(secs) = app.lockout.record_failure(counters, account, now).await? {
            app.metrics.lockout();
            return Err(locked(app, req, account, "lockout", secs));
        }
        return Ok(false);
    }
    app.lockout.record_success(counters, account).await?;
    if let (true, Some(user), Some(old)) = (verified.needs_rehash, user, phc) {
        // Upgrade the stored hash to the current parameters; failure only costs a later retry.
        if let Ok(new) = app.hasher.hash(password).await {
            let _ = app.store.upgrade_password_hash(&user.id, old, new).await;
        }
    }
    Ok(true)
}

/// `POST /login` (JSON or a form); every attempt is counted by outcome.
pub async fn login(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let result = password_login(Arc::clone(&app), req, params).await;
    app.metrics.login(match &result {
        Ok(_) => "success",
        Err(ApiError::InvalidCredentials) => "invalid_credentials",
        Err(ApiError::AccountLocked { .. }) => "locked",
        Err(ApiError::RateLimited { .. }) => "rate_limited",
        Err(ApiError::AccountPending) => "pending",
        Err(ApiError::AccountDisabled) => "disabled",
        Err(ApiError::EmailNotVerified) => "unverified",
        Err(ApiError::ServiceUnavailable { .. }) => "unavailable",
        Err(e) if e.status().is_client_error() => "bad_request",
        Err(_) => "error",
    });
    result
}

async fn password_login(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let mut body = form_or_json_body(&req)?;
    let identifier = body.required_text(&["identifier", "email", "username", "login"]);
    let password = body.required_text(&["password"]);
    let remember = body
        .flag(&["remember", "rememberMe", "remember_me"])
        .unwrap_or(false);
    body.finish()?;
    let (Some(identifier), Some(password)) = (identifier, password) else {
        return Err(ApiError::invalid("identifier and password are required"));
    };
    let user = find_account(&app.store, &identifier).await?;
    let account = match &user {
        Some(u) => AccountKey::User(u.id.clone()),
        None => AccountKey::Unknown(validate::identifier(&identifier)),
    };
    if password.chars().count() > app.config.auth.password_max_length.max(1024) {
        return Err(ApiError::InvalidCredentials);
    }
    if !check_password(&app, &req, &account, user.as_ref(), password).await? {
        app.audit(
            "login_failed",
            Some(req.client_ip),
            None,
            Some(&account.to_string()),
            None,
        );
        return Err(ApiError::InvalidCredentials);
    }
    let Some(user) = user else {
        return Err(ApiError::InvalidCredentials);
    };
    let now = now_secs();
    may_sign_in(&app.gate().await?, Way::Password, &user, now)?;
    let (token, mut session) =
        new_session(&app, &req, &user.id, remember, now, vec!["pwd".into()])?;
    let factors = app.store.factors(&user.id).await?;
    let enrolled = Enrolled {
        factors: &factors,
        passkeys: app.store.user_passkeys(&user.id).await?.len(),
    };
    let stage = stage_after_first_factor(app.config.auth.second_factor, user.role, enrolled);
    session.record.stage = stage;
    if stage == SessionStage::SecondFactor {
        // Half-open: only the second factor completes it, within minutes.
        session.record.expires_at = session.record.expires_at.min(now + HALF_OPEN_SECS);
    }
    let expires_at = session.record.expires_at;
    app.store
        .open_session(sign_in_replacing(&app, &req, session))
        .await
        .map_err(refused)?;
    if stage == SessionStage::SecondFactor {
        app.audit(
            "login_second_factor_asked",
            Some(req.client_ip),
            Some(&user.id),
            None,
            None,
        );
        let data = json!({"secondFactorRequired": true, "methods": methods(enrolled)});
        // A session cookie (no lifetime): "keep me signed in" applies to the full session.
        return Ok(with_session_cookie(
            ApiResponse::ok(StatusCode::OK, "second factor required", data),
            &app,
            &token.token,
            false,
        ));
    }
    audit_login(
        &app,
        &req,
        &user.id,
        remember.then(|| "remember".to_string()),
    );
    let mut data = views::signed_in(&user, now, expires_at);
    if stage == SessionStage::Enrol {
        // Signed in, but only to enrol a second factor first.
        data["secondFactorEnrolRequired"] = json!(true);
    }
    Ok(with_session_cookie(
        ApiResponse::ok(StatusCode::OK, "logged in", data),
        &app,
        &token.token,
        remember,
    ))
}

/// Whether a `GET`/`HEAD` logout was started by another site (a link, an image, a redirect
/// there): the browser says so in `Sec-Fetch-Site`. Same-site links (an app's "Log out"),
/// typed addresses and clients that send no such header go ahead.
fn cross_site_navigation(req: &ApiRequest) -> bool {
    (req.method == http::Method::GET || req.method == http::Method::HEAD)
        && req
            .header("sec-fetch-site")
            .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
}

/// `GET|POST /logout`: delete the session server-side and clear the cookie. A cross-site
/// `GET` gets a page with a button instead, so another site cannot sign people out.
pub async fn logout(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    if cross_site_navigation(&req) {
        let rd = super::browser::query_param(&req, "rd").unwrap_or_default();
        return Ok(super::browser::render(crate::pages::auth::confirm_logout(
            &super::browser::site(&app).await?,
            &rd,
        )));
    }
    let keys = app.auth.presented_keys(&req.headers);
    if app.store.end_sessions(keys).await? > 0 {
        app.audit("logout", Some(req.client_ip), None, None, None);
    }
    let rd = super::browser::query_param(&req, "rd");
    // A browser following a "Log out" link is sent on too, to the login page by default.
    let navigation = req.method == http::Method::GET && crate::access::wants_html(&req.headers);
    let resp = match rd.or_else(|| navigation.then(String::new)) {
        // A browser asked to go somewhere afterwards: there if allowed, else the login page.
        Some(rd) => {
            let status = if req.method == http::Method::GET {
                StatusCode::FOUND
            } else {
                StatusCode::SEE_OTHER
            };
            super::browser::redirect(
                status,
                &super::browser::after_logout(&app, &rd, "signed-out"),
            )
        }
        None => ApiResponse::ok(StatusCode::OK, "logged out", Value::Null),
    };
    Ok(with_cleared_cookie(resp, &app))
}

/// `POST /logout-all`: revoke every session of the user, this one included.
pub async fn logout_all(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req).await?;
    let n = app.store.revoke_user_sessions(&auth.user.id, None).await?;
    app.audit(
        "logout_all",
        Some(req.client_ip),
        Some(&auth.user.id),
        None,
        Some(format!("revoked={n}")),
    );
    let resp = ApiResponse::ok(
        StatusCode::OK,
        "logged out everywhere",
        json!({"revokedSessions": n}),
    );
    Ok(with_cleared_cookie(resp, &app))
}
