//! Passkeys over the API: register (named), list, delete; sign in without a password
//! (discoverable credentials, user verification required: two factors in one); and a passkey
//! as the second factor after a password. A ceremony's state is kept in the store under the
//! SHA-256 of a random `ceremony` id the start answers with; finishing takes it out, once.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use super::body::json_body;
use super::common::{
    audit_login, mint_token, new_session, refused, require_session, sign_in_replacing,
    with_session_cookie,
};
use super::response::ApiResponse;
use super::signin::client_within_limit;
use super::two_factor::{second_factor_session, session_in};
use super::{views, ApiRequest};
use crate::app::{now_secs, App};
use crate::auth::authenticator::Principal;
use crate::auth::passkey::{
    PasskeyError, PasskeyUser, PendingRegistration, PendingSignIn, RegistrationResponse,
    RelyingParty, SignInResponse, CEREMONY_SECS,
};
use crate::auth::signin::{may_sign_in, Way};
use crate::error::ApiError;
use crate::store::SessionStage;

fn relying_party(app: &App) -> Result<&RelyingParty, ApiError> {
    app.passkeys.as_ref().ok_or_else(|| {
        ApiError::Forbidden(
            "passkeys are off on this site (it needs a domain name and https)".into(),
        )
    })
}

/// What a ceremony failure is for the client.
fn refusal(e: PasskeyError) -> ApiError {
    match e {
        PasskeyError::Setup(detail) => ApiError::Internal(detail),
        PasskeyError::Expired => ApiError::InvalidToken,
        PasskeyError::Malformed(why) => ApiError::invalid(format!("credential: {why}")),
        PasskeyError::InvalidName(why) => ApiError::field("name", why),
        PasskeyError::NoPasskeys => ApiError::invalid("no passkey is registered for this account"),
        _ => ApiError::InvalidCredentials,
    }
}

/// Keep a ceremony's state and answer its options with the id the client finishes it with.
async fn started(app: &App, mut options: Value, state: Vec<u8>) -> Result<ApiResponse, ApiError> {
    let id = mint_token()?;
    app.store
        .put_challenge(id.key, state, now_secs() + CEREMONY_SECS)
        .await?;
    options["ceremony"] = json!(id.token);
    Ok(ApiResponse::ok(StatusCode::OK, "ok", options))
}

/// A finish request: its ceremony's state (taken out, once) and the credential.
async fn finishing(
    app: &App,
    req: &ApiRequest,
) -> Result<(Vec<u8>, Value, bool, String), ApiError> {
    let mut body = json_body(req)?;
    let ceremony = body.required_text(&["ceremony"]);
    let name = body.text(&["name"]).unwrap_or_default();
    let remember = body.flag(&["remember"]).unwrap_or(false);
    let credential = body.value(&["credential"]).unwrap_or(Value::Null);
    body.finish()?;
    Ok((take(app, ceremony).await?, credential, remember, name))
}

/// Take a ceremony's state out, once.
async fn take(app: &App, ceremony: Option<String>) -> Result<Vec<u8>, ApiError> {
    let key = ceremony
        .as_deref()
        .and_then(crate::auth::session::key_for)
        .ok_or(ApiError::InvalidToken)?;
    app.store
        .take_challenge(key, now_secs())
        .await?
        .ok_or(ApiError::InvalidToken)
}

/// The session of the request if it is complete or may enrol.
async fn enrolling(app: &App, req: &ApiRequest) -> Result<Principal, ApiError> {
    session_in(app, req, &[SessionStage::Complete, SessionStage::Enrol]).await
}

/// `POST /passkeys/register/start`.
pub async fn register_start(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let rp = relying_party(&app)?;
    let auth = enrolling(&app, &req).await?;
    let user = &auth.user;
    let existing = app.store.user_passkeys(&user.id).await?;
    let display = auth.identity().name.clone().unwrap_or_default();
    let (options, pending) = rp
        .start_registration(
            PasskeyUser {
                id: &user.id,
                name: user.username.as_deref().unwrap_or(&user.email),
                display_name: &display,
            },
            &existing,
            now_secs(),
        )
        .map_err(refusal)?;
    started(&app, options, pending.to_bytes().map_err(refusal)?).await
}

/// `POST /passkeys/register/finish` `{ceremony, name, credential}`.
pub async fn register_finish(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let rp = relying_party(&app)?;
    let auth = enrolling(&app, &req).await?;
    let (state, credential, _, name) = finishing(&app, &req).await?;
    let pending = PendingRegistration::from_bytes(&state).map_err(refusal)?;
    let response = RegistrationResponse::from_json(&credential).map_err(refusal)?;
    let record = rp
        .finish_registration(pending, &auth.user.id, &response, &name, now_secs())
        .map_err(refusal)?;
    let shown = views_passkey(&record);
    if !app.store.add_passkey(record).await.map_err(refused)? {
        return Err(ApiError::Conflict(
            "this passkey is registered already".into(),
        ));
    }
    app.audit(
        "second_factor_enrolled",
        Some(req.client_ip),
        Some(&auth.user.id),
        None,
        Some("passkey".into()),
    );
    Ok(ApiResponse::ok(
        StatusCode::CREATED,
        "passkey registered",
        json!({"passkey": shown}),
    ))
}

fn views_passkey(p: &crate::store::PasskeyRecord) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "createdAt": views::rfc3339(p.created_at),
        "lastUsedAt": p.last_used_at.map(views::rfc3339),
    })
}

/// `GET /passkeys`.
pub async fn list(app: Arc<App>, req: ApiRequest, _: Vec<String>) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req).await?;
    let list: Vec<Value> = app
        .store
        .user_passkeys(&auth.user.id)
        .await?
        .iter()
        .map(views_passkey)
        .collect();
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "ok",
        json!({"passkeys": list}),
    ))
}

/// `DELETE /passkeys/{id}`.
pub async fn delete(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req).await?;
    let id = params.first().cloned().unwrap_or_default();
    if !app.store.delete_passkey(&auth.user.id, &id).await? {
        return Err(ApiError::NotFound);
    }
    app.audit(
        "second_factor_removed",
        Some(req.client_ip),
        Some(&auth.user.id),
        None,
        Some("passkey".into()),
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "passkey deleted",
        Value::Null,
    ))
}

/// `POST /passkeys/login/start`: options for any passkey of this site (no account named).
pub async fn login_start(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let rp = relying_party(&app)?;
    client_within_limit(&app, &req, now_secs()).await?;
    let (options, pending) = rp.start_discoverable_sign_in(now_secs()).map_err(refusal)?;
    started(&app, options, pending.to_bytes().map_err(refusal)?).await
}

/// Check an answer to a sign-in ceremony; the user and the passkey's use, stored.
async fn verified(
    app: &App,
    req: &ApiRequest,
    rp: &RelyingParty,
    pending: PendingSignIn,
    credential: &Value,
) -> Result<(crate::store::UserRecord, bool), ApiError> {
    let response = SignInResponse::from_json(credential).map_err(refusal)?;
    let Some((passkey, user)) = app.store.find_passkey(response.credential_id()).await? else {
        app.client_limit
            .record_failure(app.store.counters(), req.client_ip, now_secs())
            .await?;
        return Err(ApiError::InvalidCredentials);
    };
    let used = match rp.finish_sign_in(pending, &response, &passkey, now_secs()) {
        Ok(used) => used,
        Err(e) => {
            app.client_limit
                .record_failure(app.store.counters(), req.client_ip, now_secs())
                .await?;
            app.audit(
                "second_factor_failed",
                Some(req.client_ip),
                Some(&user.id),
                None,
                Some("passkey".into()),
            );
            return Err(refusal(e));
        }
    };
    if !app
        .store
        .note_passkey_use(&used.credential_id, used.credential, now_secs())
        .await?
    {
        return Err(ApiError::InvalidCredentials);
    }
    Ok((user, used.user_verified))
}

/// `POST /passkeys/login/finish` `{ceremony, credential}`: a full session, without a password.
pub async fn login_finish(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let rp = relying_party(&app)?;
    let (state, credential, remember, _) = finishing(&app, &req).await?;
    let pending = PendingSignIn::from_bytes(&state).map_err(refusal)?;
    let (user, user_verified) = verified(&app, &req, rp, pending, &credential).await?;
    // Without a password, only a passkey that verified the person (PIN, biometrics) will do.
    if !user_verified {
        return Err(ApiError::InvalidCredentials);
    }
    let now = now_secs();
    // The same gates as a password: the account's status, a confirmed address, native sign-in.
    may_sign_in(&app.gate().await?, Way::Password, &user, now)?;
    let (token, session) =
        new_session(&app, &req, &user.id, remember, now, vec!["passkey".into()])?;
    let expires_at = session.record.expires_at;
    app.store
        .open_session(sign_in_replacing(&app, &req, session))
        .await
        .map_err(refused)?;
    audit_login(&app, &req, &user.id, Some("passkey".into()));
    Ok(with_session_cookie(
        ApiResponse::ok(
            StatusCode::OK,
            "logged in",
            views::signed_in(&user, now, expires_at),
        ),
        &app,
        &token.token,
        remember,
    ))
}

/// `POST /2fa/passkey/start`: options for the user's own passkeys.
pub async fn second_factor_start(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let rp = relying_party(&app)?;
    let half = second_factor_session(&app, &req).await?;
    let passkeys = app.store.user_passkeys(&half.user.id).await?;
    let (options, pending) = rp
        .start_sign_in(&half.user.id, &passkeys, now_secs())
        .map_err(refusal)?;
    started(&app, options, pending.to_bytes().map_err(refusal)?).await
}

/// `POST /2fa/passkey/finish` `{ceremony, credential}`: completes the session like a code.
pub async fn second_factor_finish(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let rp = relying_party(&app)?;
    let half = second_factor_session(&app, &req).await?;
    let (state, credential, _, _) = finishing(&app, &req).await?;
    let pending = PendingSignIn::from_bytes(&state).map_err(refusal)?;
    let (user, _) = verified(&app, &req, rp, pending, &credential).await?;
    if user.id != half.user.id {
        return Err(ApiError::InvalidCredentials);
    }
    audit_login(&app, &req, &user.id, Some("second_factor=passkey".into()));
    super::two_factor::complete_session(&app, &req, &half, "passkey", |expires_at| {
        ApiResponse::ok(
            StatusCode::OK,
            "logged in",
            views::signed_in(&user, now_secs(), expires_at),
        )
    })
    .await
}
