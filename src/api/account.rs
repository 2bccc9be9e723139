//! Account endpoints: setup, register, login, logout, profile, password, sessions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use http::header::SET_COOKIE;
use http::StatusCode;
use serde_json::{json, Value};

use super::body::{form_or_json_body, json_body, Body};
use super::response::ApiResponse;
use super::{validate, views, ApiRequest, CREATED};
use crate::app::{now_secs, App};
use crate::auth::cookie;
use crate::auth::lockout::AccountKey;
use crate::auth::session::{self, Authenticated, NewToken};
use crate::config::{FieldMode, ProfileFields, Registration};
use crate::error::ApiError;
use crate::store::{
    FirstSession, InviteError, Role, SessionKey, SessionRecord, Store, StoreError, UserRecord,
    UserStatus, UserWriteError,
};

/// The future every handler returns.
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<ApiResponse, ApiError>> + Send>>;

/// Longest user agent kept with a session.
const MAX_USER_AGENT: usize = 256;

pub(crate) fn new_user_id() -> Result<String, ApiError> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn mint_token() -> Result<NewToken, ApiError> {
    session::new_token().map_err(ApiError::Internal)
}

/// The session a request must carry.
pub(crate) fn require_session(app: &App, req: &ApiRequest) -> Result<Authenticated, ApiError> {
    app.authenticate(&req.headers)?
        .ok_or(ApiError::Unauthorized)
}

/// The session of an owner or admin.
pub(crate) fn require_admin(app: &App, req: &ApiRequest) -> Result<Authenticated, ApiError> {
    let auth = require_session(app, req)?;
    if !auth.user.role.is_admin() {
        return Err(ApiError::Forbidden("administrators only".into()));
    }
    Ok(auth)
}

pub(crate) fn new_session(
    app: &App,
    req: &ApiRequest,
    user_id: &str,
    remember: bool,
    now: i64,
) -> SessionRecord {
    let lifetime = if remember {
        app.config.session.remember_me_lifetime
    } else {
        app.config.session.lifetime
    };
    let user_agent = req
        .header("user-agent")
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
    SessionRecord {
        user_id: user_id.to_string(),
        created_at: now,
        expires_at: now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX)),
        last_seen: now,
        indexed_expiry: 0,
        remember,
        ip: Some(req.client_ip.to_string()),
        user_agent,
    }
}

/// A new session for `user_id` (never an id from the request), stored by `write` in the same
/// transaction that removes the browser's earlier sessions. Returns the token to set in the
/// cookie and the stored record.
pub(crate) async fn open_session<E>(
    app: &Arc<App>,
    req: &ApiRequest,
    user_id: &str,
    remember: bool,
    write: impl FnOnce(&Store, &SessionKey, &SessionRecord, i64) -> Result<(), E> + Send + 'static,
    refused: impl FnOnce(E) -> ApiError,
) -> Result<(NewToken, SessionRecord), ApiError>
where
    E: From<StoreError> + Send + 'static,
{
    let token = mint_token()?;
    let record = new_session(app, req, user_id, remember, now_secs());
    let previous: Vec<SessionKey> = cookie::session_tokens(&req.headers, &app.config.session)
        .iter()
        .filter_map(|t| session::key_for(t))
        .collect();
    let (key, stored, idle) = (token.key, record.clone(), app.idle_secs());
    app.blocking(move |s| {
        write(s, &key, &stored, idle)?;
        // The browser's earlier session is replaced, not left behind.
        for old in &previous {
            s.delete_session(old)?;
        }
        Ok::<(), E>(())
    })
    .await?
    .map_err(refused)?;
    Ok((token, record))
}

pub(crate) fn with_session_cookie(
    resp: ApiResponse,
    app: &App,
    token: &str,
    remember: bool,
) -> ApiResponse {
    let max_age = remember.then_some(app.config.session.remember_me_lifetime);
    resp.with_header(
        SET_COOKIE,
        &cookie::set_cookie(&app.config.session, token, max_age),
    )
}

fn with_cleared_cookie(resp: ApiResponse, app: &App) -> ApiResponse {
    resp.with_header(SET_COOKIE, &cookie::clear_cookie(&app.config.session))
}

/// Profile fields as read from a body: outer `None` = not sent (unchanged).
#[derive(Default)]
struct Profile {
    username: Option<Option<String>>,
    full_name: Option<Option<String>>,
    first_name: Option<Option<String>>,
    last_name: Option<Option<String>>,
}

/// Read the profile fields. `creating`: absent required fields are errors and disabled fields
/// are ignored; otherwise (PATCH) a disabled field is an error and absent means unchanged.
fn read_profile(body: &mut Body, fields: &ProfileFields, creating: bool) -> Profile {
    let mut p = Profile::default();
    let specs: [(&str, &[&str], FieldMode); 4] = [
        ("username", &["username"], fields.username),
        (
            "fullName",
            &["fullName", "name", "full_name"],
            fields.full_name,
        ),
        ("firstName", &["firstName", "first_name"], fields.first_name),
        ("lastName", &["lastName", "last_name"], fields.last_name),
    ];
    for (key, names, mode) in specs {
        let sent = body.has(names);
        if mode == FieldMode::Off {
            if sent && !creating {
                body.problem(key, "is not enabled on this gateway");
            }
            continue;
        }
        if !sent && !creating {
            continue;
        }
        let raw = body.text(names).unwrap_or_default();
        let value = if key == "username" {
            if raw.trim().is_empty() {
                Ok(None)
            } else {
                validate::username(&raw).map(Some)
            }
        } else {
            validate::name(&raw)
        };
        let value = match value {
            Ok(v) => v,
            Err(problem) => {
                body.problem(key, problem);
                continue;
            }
        };
        if let Err(problem) = validate::field_mode(mode, value.is_some()) {
            body.problem(key, problem);
            continue;
        }
        let slot = match key {
            "username" => &mut p.username,
            "fullName" => &mut p.full_name,
            "firstName" => &mut p.first_name,
            _ => &mut p.last_name,
        };
        *slot = Some(value);
    }
    p
}

/// Email and password of a new account, validated.
fn read_credentials(body: &mut Body, app: &App) -> (Option<String>, Option<String>) {
    let email = body
        .required_text(&["email"])
        .and_then(|raw| match validate::email(&raw) {
            Ok(e) => Some(e),
            Err(problem) => {
                body.problem("email", problem);
                None
            }
        });
    let password = body.required_text(&["password"]).and_then(|pw| {
        match validate::password(&pw, &app.config.auth) {
            Ok(()) => Some(pw),
            Err(problem) => {
                body.problem("password", problem);
                None
            }
        }
    });
    (email, password)
}

fn new_user(
    id: String,
    email: String,
    profile: Profile,
    role: Role,
    status: UserStatus,
    hash: String,
    now: i64,
) -> UserRecord {
    UserRecord {
        id,
        email,
        username: profile.username.flatten(),
        full_name: profile.full_name.flatten(),
        first_name: profile.first_name.flatten(),
        last_name: profile.last_name.flatten(),
        role,
        groups: Vec::new(),
        status,
        email_verified: false,
        password_hash: Some(hash),
        created_at: now,
        updated_at: now,
        last_login_at: None,
        expires_at: None,
    }
}

/// The API error for a failed user write.
pub(crate) fn conflict(e: UserWriteError) -> ApiError {
    match e {
        UserWriteError::EmailTaken => {
            ApiError::Conflict("this email address is already registered".into())
        }
        UserWriteError::EmailConfusable => ApiError::Conflict(
            "this email address looks too much like one that is already registered".into(),
        ),
        UserWriteError::UsernameTaken => ApiError::Conflict("this username is taken".into()),
        UserWriteError::AlreadySetup => ApiError::AlreadySetup,
        UserWriteError::NotFound => ApiError::NotFound,
        UserWriteError::LastOwner => {
            ApiError::Forbidden("the last owner cannot be demoted, disabled or deleted".into())
        }
        UserWriteError::Store(s) => s.into(),
    }
}

/// The account an identifier (an email or a username, as typed) names: looked up in its
/// canonical form; an address also as trimmed and lower-cased only, the form in which
/// addresses were stored before they were normalised.
pub fn find_account(store: &Store, raw: &str) -> Result<Option<UserRecord>, StoreError> {
    let canonical = validate::identifier(raw);
    let legacy = raw.trim().to_lowercase();
    let legacy = (legacy != canonical && legacy.contains('@')).then_some(legacy);
    for key in std::iter::once(canonical).chain(legacy) {
        if key.is_empty() || key.len() > 254 {
            continue;
        }
        if let Some(user) = store.find_user(&key)? {
            return Ok(Some(user));
        }
    }
    Ok(None)
}

/// [`find_account`] for what must be an email address (a provider's, a verification
/// request's): anything else finds nothing, so a username never stands in for an address.
pub(crate) fn find_account_by_email(
    store: &Store,
    raw: &str,
) -> Result<Option<UserRecord>, StoreError> {
    if !validate::identifier(raw).contains('@') {
        return Ok(None);
    }
    find_account(store, raw)
}

/// Whether password sign-in is open to `user`: always with `native_signin` on, else only for
/// the owner.
pub(crate) fn password_sign_in_open(native_signin: bool, user: &UserRecord) -> bool {
    native_signin || user.role == Role::Owner
}

/// The audit event of a new account (`provider`: created by a provider sign-in).
pub(crate) fn audit_account_created(
    app: &App,
    req: &ApiRequest,
    user: &UserRecord,
    provider: Option<&str>,
) {
    let by = provider
        .map(|p| format!(" provider={p}"))
        .unwrap_or_default();
    app.audit(
        "account_created",
        Some(req.client_ip),
        Some(&user.id),
        Some(&user.email),
        Some(format!(
            "role={} status={}{by}",
            user.role.as_str(),
            user.status.as_str()
        )),
    );
}

/// `GET /setup/exists`.
pub async fn setup_exists(
    app: Arc<App>,
    _req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let exists = app.store.owner_exists()?;
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "ok",
        json!({"exists": exists}),
    ))
}

/// A validated new account, with its first session when it may log in at once.
struct NewAccount {
    user: UserRecord,
    session: Option<(NewToken, SessionRecord)>,
}

/// Read and validate a setup or registration body, hash the password, and build the user
/// (and a first session when `log_in`).
async fn new_account(
    app: &App,
    req: &ApiRequest,
    role: Role,
    status: UserStatus,
    log_in: bool,
) -> Result<NewAccount, ApiError> {
    let mut body = form_or_json_body(req)?;
    let (email, password) = read_credentials(&mut body, app);
    let profile = read_profile(&mut body, &app.config.auth.fields, true);
    body.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::invalid("email and password are required"));
    };
    let hash = app.hasher.hash(password).await?;
    let now = now_secs();
    let mut user = new_user(new_user_id()?, email, profile, role, status, hash, now);
    let session = if log_in {
        user.last_login_at = Some(now);
        Some((mint_token()?, new_session(app, req, &user.id, false, now)))
    } else {
        None
    };
    Ok(NewAccount { user, session })
}

/// How a new account is written: the store call, which may adjust the user (an invite sets
/// role and groups) and gets the first session.
type CreateUser =
    Box<dyn FnOnce(&Store, &mut UserRecord, FirstSession<'_>) -> Result<(), ApiError> + Send>;

/// Store a new account and answer 201, logged in when it has a session.
async fn store_account(
    app: &Arc<App>,
    req: &ApiRequest,
    account: NewAccount,
    create: CreateUser,
    message: &str,
) -> Result<ApiResponse, ApiError> {
    let NewAccount { user, session } = account;
    let first = session.as_ref().map(|(t, r)| (t.key, r.clone()));
    let idle = app.idle_secs();
    let user = app
        .blocking(move |s| {
            let mut user = user;
            create(s, &mut user, first.as_ref().map(|(k, r)| (k, r, idle)))?;
            Ok::<UserRecord, ApiError>(user)
        })
        .await??;
    audit_account_created(app, req, &user, None);
    if app.config.auth.require_email_verification
        && !user.email_verified
        && user.role != Role::Owner
    {
        super::recovery::send_verification(app, &user, req.client_ip);
    }
    let resp = ApiResponse::ok(CREATED, message, json!({"user": views::user(&user)}));
    Ok(match session {
        Some((token, _)) => with_session_cookie(resp, app, &token.token, false),
        None => resp,
    })
}

/// `POST /setup`: create the owner while no user exists.
pub async fn setup(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    if app.store.owner_exists()? {
        return Err(ApiError::AlreadySetup);
    }
    check_setup_code(&app, &req)?;
    let account = new_account(&app, &req, Role::Owner, UserStatus::Active, true).await?;
    let create: CreateUser =
        Box::new(|s, u, first| s.create_first_user(u, first).map_err(conflict));
    let resp = store_account(&app, &req, account, create, "setup complete").await?;
    crate::auth::setup_code::remove(&app.config);
    Ok(resp)
}

/// 429 while the client is over its limit of failed attempts (`security.ip_rate_limit`).
fn client_within_limit(app: &App, req: &ApiRequest, now: Instant) -> Result<(), ApiError> {
    app.ip_limiter
        .check(req.client_ip, now)
        .map_err(|secs| ApiError::RateLimited {
            retry_after_secs: secs,
        })
}

/// Setup from a loopback client needs nothing more; from anywhere else the body must carry
/// the setup code (`setupCode`). Wrong codes count towards the client's failure limit.
fn check_setup_code(app: &App, req: &ApiRequest) -> Result<(), ApiError> {
    if req.client_ip.is_loopback() {
        return Ok(());
    }
    let now = Instant::now();
    client_within_limit(app, req, now)?;
    let given = form_or_json_body(req)?
        .text(&["setupCode", "setup_code"])
        .unwrap_or_default();
    let expected = crate::auth::setup_code::ensure(&app.config).map_err(ApiError::Internal)?;
    if crate::auth::setup_code::matches(&expected, &given) {
        return Ok(());
    }
    if !given.is_empty() {
        app.ip_limiter.record_failure(req.client_ip, now);
        app.audit("setup_code_refused", Some(req.client_ip), None, None, None);
    }
    Err(ApiError::SetupCodeRequired)
}

/// `POST /register[?invite=CODE]`.
pub async fn register(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    if !app.store.owner_exists()? {
        // Setup creates the owner; a registration first would leave the gateway ownerless.
        return Err(ApiError::SetupRequired);
    }
    if !app.native_signin() {
        return Err(ApiError::Forbidden(
            "accounts with a password are disabled here; sign in with a provider".into(),
        ));
    }
    let mode = app.registration();
    let invite = super::browser::query_param(&req, "invite").filter(|c| !c.is_empty());
    let bad_invite = || {
        if mode == Registration::Invite {
            ApiError::InviteRequired
        } else {
            ApiError::InvalidToken
        }
    };
    let status = match (mode, &invite) {
        (Registration::Closed, _) => return Err(ApiError::RegistrationDisabled),
        (_, Some(code)) => {
            // Checked again, and counted, in the write transaction; this spares the hash.
            if !app
                .store
                .get_invite(code)?
                .is_some_and(|i| i.usable(now_secs()))
            {
                return Err(bad_invite());
            }
            UserStatus::Active
        }
        (Registration::Invite, None) => return Err(ApiError::InviteRequired),
        (Registration::Open, None) => UserStatus::Active,
        (Registration::Approval, None) => UserStatus::Pending,
    };
    let verify = app.config.auth.require_email_verification;
    let log_in = status == UserStatus::Active && !verify;
    let account = new_account(&app, &req, Role::User, status, log_in).await?;
    let message = match (status, verify) {
        (UserStatus::Pending, _) => "registered; an administrator must approve the account",
        (_, true) => "registered; confirm your email address with the link we sent",
        _ => "registered",
    };
    let create: CreateUser = match invite {
        Some(code) => {
            let invalid = bad_invite();
            Box::new(move |s, u, first| {
                s.create_user_with_invite(u, &code, now_secs(), first)
                    .map_err(|e| match e {
                        InviteError::Invalid => invalid,
                        InviteError::User(w) => conflict(w),
                    })
            })
        }
        None => Box::new(|s, u, first| s.create_user(u, first).map_err(conflict)),
    };
    store_account(&app, &req, account, create, message).await
}

/// Check a password for an account under the lockout and the per-IP limit, shared by every
/// path that checks one. `user` is `None` for an unknown identifier (checked against a dummy
/// hash). Returns whether the password matched and whether the hash should be upgraded.
pub(crate) async fn check_password(
    app: &App,
    req: &ApiRequest,
    account: &AccountKey,
    user: Option<&UserRecord>,
    password: String,
) -> Result<bool, ApiError> {
    let now = Instant::now();
    client_within_limit(app, req, now)?;
    if let Err(secs) = app.lockout.check(account, now) {
        // A locked account costs the same as any other attempt: no timing signal.
        app.hasher.verify(password, None).await?;
        app.audit(
            "login_locked",
            Some(req.client_ip),
            None,
            Some(&account.to_string()),
            None,
        );
        return Err(ApiError::AccountLocked {
            retry_after_secs: secs,
        });
    }
    let phc = user.and_then(|u| u.password_hash.clone());
    let verified = app.hasher.verify(password.clone(), phc.clone()).await?;
    if !verified.ok {
        app.ip_limiter.record_failure(req.client_ip, Instant::now());
        if let Some(secs) = app.lockout.record_failure(account, Instant::now()) {
            app.metrics.lockout();
            app.audit(
                "lockout",
                Some(req.client_ip),
                None,
                Some(&account.to_string()),
                None,
            );
            return Err(ApiError::AccountLocked {
                retry_after_secs: secs,
            });
        }
        return Ok(false);
    }
    app.lockout.record_success(account);
    if let (true, Some(user), Some(old)) = (verified.needs_rehash, user, phc) {
        // Upgrade the stored hash to the current parameters; failure only costs a later retry.
        if let Ok(new) = app.hasher.hash(password).await {
            let id = user.id.clone();
            let stored = app.store.clone();
            let _ =
                tokio::task::spawn_blocking(move || stored.upgrade_password_hash(&id, &old, &new))
                    .await;
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
    let user = find_account(&app.store, &identifier)?;
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
    match user.status {
        UserStatus::Active if user.expires_at.is_some_and(|t| t <= now) => {
            return Err(ApiError::AccountDisabled)
        }
        UserStatus::Active => {}
        UserStatus::Pending => return Err(ApiError::AccountPending),
        UserStatus::Disabled => return Err(ApiError::AccountDisabled),
    }
    if app.config.auth.require_email_verification
        && !user.email_verified
        && user.role != Role::Owner
    {
        return Err(ApiError::EmailNotVerified);
    }
    if !password_sign_in_open(app.native_signin(), &user) {
        return Err(ApiError::Forbidden(
            "password sign-in is disabled; use a sign-in provider".into(),
        ));
    }
    let (token, record) = open_session(
        &app,
        &req,
        &user.id,
        remember,
        |s, key, record, idle| s.create_session(key, record, idle),
        conflict,
    )
    .await?;
    app.audit(
        "login",
        Some(req.client_ip),
        Some(&user.id),
        None,
        remember.then(|| "remember".to_string()),
    );
    let mut shown = user.clone();
    shown.last_login_at = Some(now);
    let data = json!({"user": views::user(&shown), "session": {"expiresAt": views::rfc3339(record.expires_at)}});
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
        return Ok(crate::pages::confirm_logout(&app, &rd));
    }
    let keys: Vec<_> = cookie::session_tokens(&req.headers, &app.config.session)
        .iter()
        .filter_map(|t| session::key_for(t))
        .collect();
    if !keys.is_empty() {
        let removed = app
            .blocking(move |s| {
                keys.iter()
                    .map(|k| s.delete_session(k))
                    .collect::<Result<Vec<bool>, _>>()
            })
            .await??;
        if removed.contains(&true) {
            app.audit("logout", Some(req.client_ip), None, None, None);
        }
    }
    let resp = match super::browser::query_param(&req, "rd") {
        // A browser asked to go somewhere afterwards: there if allowed, else the login page.
        Some(rd) => {
            let status = if req.method == http::Method::GET {
                StatusCode::FOUND
            } else {
                StatusCode::SEE_OTHER
            };
            super::browser::redirect(status, &super::browser::after_logout(&app, &rd))
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
    let auth = require_session(&app, &req)?;
    let user_id = auth.user.id.clone();
    let n = app
        .blocking(move |s| s.delete_user_sessions(&user_id, None))
        .await??;
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

/// `GET /me`.
pub async fn me(app: Arc<App>, req: ApiRequest, _: Vec<String>) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req)?;
    let identities: Vec<Value> = app
        .store
        .user_identities(&auth.user.id)?
        .iter()
        .map(views::identity)
        .collect();
    let data = json!({
        "user": views::user(&auth.user),
        "identities": identities,
        "session": {
            "id": session::public_id(&auth.key),
            "createdAt": views::rfc3339(auth.session.created_at),
            "expiresAt": views::rfc3339(auth.session.expires_at),
        }
    });
    Ok(ApiResponse::ok(StatusCode::OK, "ok", data))
}

/// `PATCH /me`: change the enabled profile fields.
pub async fn update_me(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req)?;
    let mut body = json_body(&req)?;
    let profile = read_profile(&mut body, &app.config.auth.fields, false);
    body.finish()?;
    let now = now_secs();
    let id = auth.user.id.clone();
    let user = app
        .blocking(move |s| {
            s.update_user::<()>(&id, |u| {
                if let Some(v) = profile.username {
                    u.username = v;
                }
                if let Some(v) = profile.full_name {
                    u.full_name = v;
                }
                if let Some(v) = profile.first_name {
                    u.first_name = v;
                }
                if let Some(v) = profile.last_name {
                    u.last_name = v;
                }
                u.updated_at = now;
                Ok(())
            })
        })
        .await?
        .map_err(conflict)?
        .map_err(|()| ApiError::Internal("profile update refused".into()))?;
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
    let auth = require_session(&app, &req)?;
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
    let (id, key, now) = (auth.user.id.clone(), auth.key, now_secs());
    let revoked = app
        .blocking(move |s| s.set_password(&id, &hash, now, Some(&key)))
        .await?
        .map_err(conflict)?;
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

/// `GET /sessions`: the user's live sessions.
pub async fn sessions(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req)?;
    let now = now_secs();
    let idle = app.idle_secs();
    let mut list: Vec<(i64, Value)> = app
        .store
        .user_sessions(&auth.user.id)?
        .into_iter()
        .filter(|(_, s)| session::is_live(s, &auth.user, idle, now))
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
    let auth = require_session(&app, &req)?;
    let wanted = params
        .first()
        .map(|p| p.to_ascii_lowercase())
        .unwrap_or_default();
    let key = app
        .store
        .user_sessions(&auth.user.id)?
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| session::public_id(k) == wanted)
        .ok_or(ApiError::NotFound)?;
    app.blocking(move |s| s.delete_session(&key)).await??;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(store: &Store, id: &str, email: &str, username: Option<&str>) {
        let profile = Profile {
            username: Some(username.map(str::to_string)),
            ..Profile::default()
        };
        let user = new_user(
            id.into(),
            email.into(),
            profile,
            Role::User,
            UserStatus::Active,
            "h".into(),
            1,
        );
        store.create_user(&user, None).expect("created");
    }

    #[test]
    fn accounts_are_found_by_any_spelling_of_their_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.redb")).expect("store");
        stored(&store, "1", "owner@xn--bcher-kva.de", Some("owner"));
        // Stored before addresses were normalised: the domain as typed.
        stored(&store, "2", "old@m\u{fc}nchen.de", None);
        let found = |raw: &str| {
            find_account(&store, raw)
                .expect("read")
                .map(|u| u.id)
                .unwrap_or_default()
        };
        for (raw, id) in [
            ("Owner@BÜCHER.de", "1"),
            ("owner@bücher.de", "1"),
            ("  owner@xn--bcher-kva.de ", "1"),
            ("ｏｗｎｅｒ@bücher.de", "1"),
            ("Owner", "1"),
            ("Old@München.de", "2"),
            ("owner\u{200b}@bücher.de", ""),
            ("", ""),
        ] {
            assert_eq!(found(raw), id, "{raw:?}");
        }
        let by_email = |raw: &str| find_account_by_email(&store, raw).expect("read").is_some();
        assert!(by_email("owner@bücher.de"));
        assert!(!by_email("owner"), "a username is not an address");
    }
}
