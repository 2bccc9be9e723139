//! Second factors over the API: enrolling an authenticator app (TOTP) and removing it, the
//! check that turns a half-open session into a full one, and new recovery codes. Every code
//! check counts towards the account's lockout and the client's failure limit, like passwords.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use super::body::form_or_json_body;
use super::common::{
    audit_login, new_session, refused, require_session, sign_in_replacing, with_session_cookie,
};
use super::response::ApiResponse;
use super::signin::{check_password, client_within_limit, locked};
use super::{views, ApiRequest};
use crate::app::{now_secs, App};
use crate::auth::authenticator::Principal;
use crate::auth::limits::AccountKey;
use crate::auth::second_factor::gave_second_factor;
use crate::auth::totp;
use crate::error::ApiError;
use crate::store::{PendingTotp, SessionStage};

/// The session of the request if it is in one of `stages`.
pub(crate) async fn session_in(
    app: &App,
    req: &ApiRequest,
    stages: &[SessionStage],
) -> Result<Principal, ApiError> {
    match app.auth.authenticate(&req.headers, now_secs()).await? {
        Some(p) if stages.contains(&p.stage()) => Ok(p),
        _ => Err(ApiError::Unauthorized),
    }
}

/// The session that may give its second factor now: half-open, or complete without one
/// (stepping up for a route that needs it).
pub(crate) async fn second_factor_session(
    app: &App,
    req: &ApiRequest,
) -> Result<Principal, ApiError> {
    match app.auth.authenticate(&req.headers, now_secs()).await? {
        Some(p) if p.stage() == SessionStage::SecondFactor => Ok(p),
        Some(p) if p.complete() && !gave_second_factor(&p.session.amr) => Ok(p),
        _ => Err(ApiError::Unauthorized),
    }
}

fn secret_of(app: &App, sealed: &[u8], user_id: &str) -> Result<Vec<u8>, ApiError> {
    app.sealing
        .open(sealed, user_id.as_bytes())
        .map_err(|e| ApiError::Internal(format!("a TOTP secret does not open: {e}")))
}

/// A failed code: counted for the client and the account; locked once too many.
async fn code_failed(app: &App, req: &ApiRequest, user_id: &str) -> Result<(), ApiError> {
    let now = now_secs();
    let counters = app.store.counters();
    let account = AccountKey::User(user_id.to_string());
    app.client_limit
        .record_failure(counters, req.client_ip, now)
        .await?;
    app.audit(
        "second_factor_failed",
        Some(req.client_ip),
        Some(user_id),
        None,
        None,
    );
    if let Some(secs) = app.lockout.record_failure(counters, &account, now).await? {
        app.metrics.lockout();
        return Err(locked(app, req, &account, "lockout", secs));
    }
    Ok(())
}

/// Check a code of `user_id`'s second factors: six digits are a TOTP code (accepted once per
/// step), anything else a recovery code (used once). Under the lockout and the client's
/// limit. The method it proved (`otp` or `recovery`), or `None` for a wrong code.
async fn check_code(
    app: &App,
    req: &ApiRequest,
    user_id: &str,
    code: &str,
) -> Result<Option<&'static str>, ApiError> {
    let now = now_secs();
    let account = AccountKey::User(user_id.to_string());
    client_within_limit(app, req, now).await?;
    if let Err(secs) = app
        .lockout
        .check(app.store.counters(), &account, now)
        .await?
    {
        return Err(locked(app, req, &account, "login_locked", secs));
    }
    let factors = app.store.factors(user_id).await?;
    let digits = code.trim().replace(' ', "");
    let proved = if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        match &factors.totp {
            Some(t) => {
                let secret = secret_of(app, &t.sealed_secret, user_id)?;
                let now = u64::try_from(now).unwrap_or(0);
                match totp::accepted_step(&secret, &digits, now, Some(t.last_step)) {
                    Some(step) if app.store.accept_totp_step(user_id, step).await? => Some("otp"),
                    _ => None,
                }
            }
            None => None,
        }
    } else if app
        .store
        .use_recovery_code(user_id, totp::recovery_hash(code), now)
        .await?
    {
        app.audit(
            "recovery_code_used",
            Some(req.client_ip),
            Some(user_id),
            None,
            Some(format!(
                "left={}",
                factors.recovery_left().saturating_sub(1)
            )),
        );
        Some("recovery")
    } else {
        None
    };
    match proved {
        Some(method) => {
            app.lockout
                .record_success(app.store.counters(), &account)
                .await?;
            Ok(Some(method))
        }
        None => {
            code_failed(app, req, user_id).await?;
            Ok(None)
        }
    }
}

/// Replace `principal`'s session with a complete one that adds `method` to how it was
/// authenticated; the answer carries the new cookie.
pub(crate) async fn complete_session(
    app: &Arc<App>,
    req: &ApiRequest,
    principal: &Principal,
    method: &str,
    resp: impl FnOnce(i64) -> ApiResponse,
) -> Result<ApiResponse, ApiError> {
    let old = &principal.session;
    let mut amr = old.amr.clone();
    amr.push(method.to_string());
    let now = now_secs();
    let (token, session) = new_session(app, req, &principal.user.id, old.remember, now, amr)?;
    let expires_at = session.record.expires_at;
    app.store
        .open_session(sign_in_replacing(app, req, session))
        .await
        .map_err(refused)?;
    Ok(with_session_cookie(
        resp(expires_at),
        app,
        &token.token,
        old.remember,
    ))
}

/// `POST /2fa/totp/setup`: a new secret to enrol (not active until confirmed).
pub async fn totp_setup(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = session_in(&app, &req, &[SessionStage::Complete, SessionStage::Enrol]).await?;
    let user = &auth.user;
    if app.store.factors(&user.id).await?.totp.is_some() {
        return Err(ApiError::Conflict(
            "an authenticator app is already set up: remove it first".into(),
        ));
    }
    let secret = totp::new_secret().map_err(ApiError::Internal)?;
    let sealed = app
        .sealing
        .seal(&secret, user.id.as_bytes())
        .map_err(ApiError::Internal)?;
    let account = user.username.as_deref().unwrap_or(&user.email);
    let enrolment =
        totp::enrolment(&secret, &app.config.ui.title, account).map_err(ApiError::Internal)?;
    app.store
        .begin_totp(
            &user.id,
            PendingTotp {
                sealed_secret: sealed,
                created_at: now_secs(),
            },
        )
        .await?;
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "scan the code with an authenticator app, then confirm with a code it shows",
        json!({
            "secret": enrolment.secret_base32,
            "otpauthUrl": enrolment.otpauth_url,
            "qrSvg": enrolment.qr_svg,
        }),
    ))
}

/// `POST /2fa/totp/confirm` `{code}`: the first code makes the app active; answers the
/// recovery codes, shown this once. A session that was only allowed to enrol becomes complete.
pub async fn totp_confirm(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = session_in(&app, &req, &[SessionStage::Complete, SessionStage::Enrol]).await?;
    let user_id = auth.user.id.clone();
    let mut body = form_or_json_body(&req)?;
    let code = body.required_text(&["code"]);
    body.finish()?;
    let code = code.unwrap_or_default();
    let Some(pending) = app.store.factors(&user_id).await?.pending_totp else {
        return Err(ApiError::invalid(
            "no authenticator app is being set up: start with /2fa/totp/setup",
        ));
    };
    let secret = secret_of(&app, &pending.sealed_secret, &user_id)?;
    let now = u64::try_from(now_secs()).unwrap_or(0);
    let Some(step) = totp::accepted_step(&secret, &code, now, None) else {
        code_failed(&app, &req, &user_id).await?;
        return Err(ApiError::field("code", "is not the code the app shows now"));
    };
    let (shown, hashes) = totp::new_recovery_codes().map_err(ApiError::Internal)?;
    if !app
        .store
        .confirm_totp(&user_id, step, hashes, now_secs())
        .await?
    {
        return Err(ApiError::invalid(
            "the setup was replaced meanwhile: start again",
        ));
    }
    app.audit(
        "second_factor_enrolled",
        Some(req.client_ip),
        Some(&user_id),
        None,
        Some("totp".into()),
    );
    let data = json!({"recoveryCodes": shown});
    let message = "authenticator app set up; keep the recovery codes somewhere safe";
    // The code proved the factor: this session (enrolling only, or complete) continues as a
    // complete one that gave it, under a new id.
    complete_session(&app, &req, &auth, "otp", |_| {
        ApiResponse::ok(StatusCode::OK, message, data)
    })
    .await
}

/// `DELETE /2fa/totp` `{password}` or `{code}`: remove the app and the recovery codes.
pub async fn totp_remove(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req).await?;
    let user = auth.user.clone();
    let mut body = form_or_json_body(&req)?;
    let password = body.text(&["password", "currentPassword"]);
    let code = body.text(&["code"]);
    body.finish()?;
    let proved = match (password, code) {
        (Some(p), _) => {
            let account = AccountKey::User(user.id.clone());
            check_password(&app, &req, &account, Some(&user), p).await?
        }
        (None, Some(c)) => check_code(&app, &req, &user.id, &c).await?.is_some(),
        (None, None) => {
            return Err(ApiError::field("password", "is required (or a code)"));
        }
    };
    if !proved {
        return Err(ApiError::InvalidCredentials);
    }
    app.store.remove_factors(&user.id).await?;
    app.audit(
        "second_factor_removed",
        Some(req.client_ip),
        Some(&user.id),
        None,
        Some("totp".into()),
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "authenticator app removed",
        Value::Null,
    ))
}

/// `POST /2fa/verify` `{code}`: a TOTP or recovery code turns the half-open session into a
/// full one under a new id.
pub async fn verify(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let half = second_factor_session(&app, &req).await?;
    let mut body = form_or_json_body(&req)?;
    let code = body.required_text(&["code"]);
    body.finish()?;
    let user = half.user.clone();
    let Some(method) = check_code(&app, &req, &user.id, &code.unwrap_or_default()).await? else {
        return Err(ApiError::InvalidCredentials);
    };
    audit_login(
        &app,
        &req,
        &user.id,
        Some(format!("second_factor={method}")),
    );
    complete_session(&app, &req, &half, method, |expires_at| {
        ApiResponse::ok(
            StatusCode::OK,
            "logged in",
            views::signed_in(&user, now_secs(), expires_at),
        )
    })
    .await
}

/// `POST /2fa/recovery-codes` `{password}`: a new set of recovery codes (the old ones stop
/// working), shown this once.
pub async fn new_recovery_codes(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req).await?;
    let user = auth.user.clone();
    let mut body = form_or_json_body(&req)?;
    let password = body.required_text(&["password", "currentPassword"]);
    body.finish()?;
    if app.store.factors(&user.id).await?.totp.is_none() {
        return Err(ApiError::invalid("set up an authenticator app first"));
    }
    let account = AccountKey::User(user.id.clone());
    if !check_password(
        &app,
        &req,
        &account,
        Some(&user),
        password.unwrap_or_default(),
    )
    .await?
    {
        return Err(ApiError::InvalidCredentials);
    }
    let (shown, hashes) = totp::new_recovery_codes().map_err(ApiError::Internal)?;
    app.store.replace_recovery_codes(&user.id, hashes).await?;
    app.audit(
        "recovery_codes_renewed",
        Some(req.client_ip),
        Some(&user.id),
        None,
        None,
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "new recovery codes; the old ones no longer work",
        json!({"recoveryCodes": shown}),
    ))
}
