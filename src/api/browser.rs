//! The browser side of the API: serving the pages and their assets, and where a browser is
//! sent next. What a form post gets back is in `forms`.

use std::sync::Arc;

use http::header::LOCATION;
use http::{HeaderMap, StatusCode};

use super::common::live_sessions;
use super::response::ApiResponse;
use super::ApiRequest;
use crate::app::{now_secs, App};
use crate::auth::redirect::{safe_redirect, RedirectPolicy};
use crate::auth::session::{self, Identity};
use crate::error::ApiError;
use crate::pages::account::{ordered, AccountView, Section, SessionLine};
use crate::pages::auth::FormValues;
use crate::pages::{self, Brand, Page, Problem, ProviderLink, Site};
use crate::store::{SessionStage, TokenKind};

/// What the pages need to know about the gateway now.
pub async fn site(app: &App) -> Result<Site, ApiError> {
    let settings = app.settings().await?;
    let prefix = &app.config.auth.prefix;
    let ui = &app.config.ui;
    Ok(Site {
        prefix: prefix.clone(),
        brand: Brand {
            title: ui.title.clone(),
            logo_url: app
                .assets
                .has_logo()
                .then(|| app.assets.url(prefix, "logo")),
            style_url: app.assets.url(prefix, "style.css"),
            icon_url: app.assets.url(prefix, "icon"),
            help_text: ui.help_text.clone(),
        },
        providers: app
            .oidc
            .providers()
            .iter()
            .map(|p| ProviderLink {
                name: p.config.name.clone(),
                display_name: p.config.display_name.clone(),
            })
            .collect(),
        mail: app.mailer.is_some(),
        native_signin: settings.native_signin,
        registration: settings.registration,
        owner_exists: app.store.owner_exists().await?,
        password_min_length: app.config.auth.password_min_length,
        fields: app.config.auth.fields,
        passkeys: app.passkeys.is_some(),
    })
}

/// A page as a response, with the headers every page is served with (`Cache-Control:
/// no-store` is added to every API answer by the dispatcher).
pub fn render(page: Page) -> ApiResponse {
    ApiResponse::new(page.status, "text/html; charset=utf-8", page.html)
        .with_header(http::header::CONTENT_SECURITY_POLICY, Page::csp())
        .with_header(http::header::X_FRAME_OPTIONS, "DENY")
        .with_header(http::header::REFERRER_POLICY, "no-referrer")
        .with_header(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")
}

/// A query parameter, decoded.
pub fn query_param(req: &ApiRequest, name: &str) -> Option<String> {
    let query = req.query.as_deref()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// An absolute address of a page under the prefix.
pub fn page_url(app: &App, path: &str) -> String {
    format!(
        "{}{}{path}",
        app.config.server.public_url.origin, app.config.auth.prefix
    )
}

/// The account page URL, the fallback of every redirect after login.
pub fn account_url(app: &App) -> String {
    page_url(app, "/")
}

/// Where a browser goes after logging in: `rd` if it is safe, else the account page.
pub fn after_login(app: &App, rd: &str) -> String {
    safe_redirect(rd, &RedirectPolicy::of(&app.config)).unwrap_or_else(|| account_url(app))
}

/// Where a browser goes after logging out: `rd` if it is safe, else the login page saying
/// so (`done` names the message).
pub fn after_logout(app: &App, rd: &str, done: &str) -> String {
    safe_redirect(rd, &RedirectPolicy::of(&app.config))
        .unwrap_or_else(|| page_url(app, &format!("/login?done={done}")))
}

/// A redirect response.
pub fn redirect(status: StatusCode, location: &str) -> ApiResponse {
    ApiResponse::new(status, "text/plain; charset=utf-8", "").with_header(LOCATION, location)
}

/// The words for a `?done=` key after a redirect (a fixed table: nothing from the address is
/// shown).
pub fn done_message(key: &str) -> Option<&'static str> {
    Some(match key {
        "signed-out" => "You have signed out.",
        "signed-out-everywhere" => "You have signed out on every device.",
        "password-reset" => "Your new password is set. Sign in with it.",
        "email-confirmed" => "Your email address is confirmed. You can sign in now.",
        "password-changed" => "Your password is changed. Your other sessions were signed out.",
        "profile-saved" => "Your profile is saved.",
        "session-ended" => "That session has ended.",
        "unlinked" => "The provider is unlinked.",
        "approved" => "The account is approved: they can sign in now.",
        "saved" => "Changes saved.",
        "revoked" => "They are signed out everywhere.",
        "deleted" => "The account is deleted.",
        "invite-deleted" => "The invitation is deleted.",
        "settings-saved" => "Settings saved.",
        "mail-sent" => "If the address needs confirming, we have sent the email again.",
        "two-factor-off" => "Two-step verification is off.",
        "passkey-added" => "Passkey added: you can sign in with it now.",
        "passkey-deleted" => "Passkey deleted.",
        "token-revoked" => "The token is revoked: it no longer works.",
        "service-account-created" => "Service account created. Make a token for it below.",
        "two-factor-reset" => "Their second factors are removed and they are signed out everywhere: they sign in with their password alone (and enrol again where required).",
        _ => return None,
    })
}

/// The `?done=` message of a request, if it names one.
pub fn done_of(req: &ApiRequest) -> Option<&'static str> {
    query_param(req, "done").and_then(|k| done_message(&k))
}

fn values_from_query(req: &ApiRequest) -> FormValues {
    FormValues {
        rd: query_param(req, "rd").unwrap_or_default(),
        token: query_param(req, "token").unwrap_or_default(),
        invite: query_param(req, "invite").unwrap_or_default(),
        ..FormValues::default()
    }
}

/// `GET /assets/{name}`: the stylesheet, the icon, the logo.
pub async fn asset(
    app: Arc<App>,
    _req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let name = params.first().map(String::as_str).unwrap_or_default();
    let asset = app.assets.get(name).ok_or(ApiError::NotFound)?;
    Ok(
        ApiResponse::new(StatusCode::OK, asset.content_type, asset.bytes.clone())
            .with_header(http::header::CACHE_CONTROL, pages::assets::CACHE_CONTROL)
            .with_header(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            // An SVG opened on its own runs nothing either.
            .with_header(
                http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox",
            ),
    )
}

/// `GET /forgot-password`.
pub async fn forgot_page(
    app: Arc<App>,
    _req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    Ok(render(pages::auth::forgot_password(
        &site(&app).await?,
        None,
        StatusCode::OK,
    )))
}

/// The account a live mailed token of `kind` is for, if it is one.
pub(crate) async fn token_account(
    app: &App,
    raw: &str,
    kind: TokenKind,
) -> Result<Option<String>, ApiError> {
    let Some(key) = session::key_for(raw) else {
        return Ok(None);
    };
    let Some(token) = app.store.get_token(&key).await? else {
        return Ok(None);
    };
    if token.kind != kind || token.expires_at <= now_secs() {
        return Ok(None);
    }
    Ok(app.store.get_user(&token.user_id).await?.map(|u| u.email))
}

/// `GET /reset-password?token=`: the form, or at once the way to a new link when this one is
/// used or expired.
pub async fn reset_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let values = values_from_query(&req);
    let site = site(&app).await?;
    Ok(render(
        match token_account(&app, &values.token, TokenKind::PasswordReset).await? {
            Some(email) => {
                pages::auth::reset_password(&site, &values, &email, None, StatusCode::OK)
            }
            None => pages::auth::link_expired(&site, true, StatusCode::BAD_REQUEST),
        },
    ))
}

/// `GET /verify-email?token=`.
pub async fn verify_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let values = values_from_query(&req);
    let site = site(&app).await?;
    Ok(render(
        match token_account(&app, &values.token, TokenKind::EmailVerification).await? {
            Some(_) => pages::auth::verify_email(&site, &values, None, StatusCode::OK),
            None => pages::auth::link_expired(&site, false, StatusCode::BAD_REQUEST),
        },
    ))
}

/// `GET /login`; someone already signed in goes on to `rd` (or their account).
pub async fn login_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let values = values_from_query(&req);
    Ok(render(pages::auth::login(
        &site(&app).await?,
        &values,
        None,
        done_of(&req),
        StatusCode::OK,
    )))
}

/// `GET /register`.
pub async fn register_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    Ok(render(pages::auth::register(
        &site(&app).await?,
        &values_from_query(&req),
        None,
        StatusCode::OK,
    )))
}

/// `GET /setup`.
pub async fn setup_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    Ok(render(pages::auth::setup(
        &site(&app).await?,
        &values_from_query(&req),
        None,
        StatusCode::OK,
        !req.client_ip.is_loopback(),
    )))
}

/// The login page's address for a browser that has no session, coming back to `back`.
pub fn to_login(app: &App, back: &str) -> ApiResponse {
    redirect(
        StatusCode::FOUND,
        &page_url(app, &format!("/login?rd={}", pages::query_value(back))),
    )
}

/// The account page for the signed-in user of `req`, with a notice or a problem at one of
/// its forms; `None` without a session.
pub async fn account_for(
    app: &App,
    req: &ApiRequest,
    notice: Option<&str>,
    problem: Option<(Section, &Problem)>,
    status: StatusCode,
) -> Result<Option<ApiResponse>, ApiError> {
    let Some(auth) = app.auth.authenticate(&req.headers, now_secs()).await? else {
        return Ok(None);
    };
    if !auth.complete() {
        return Ok(None);
    }
    let sessions = live_sessions(app, &auth.user)
        .await?
        .into_iter()
        .map(|(key, record)| SessionLine {
            public_id: session::public_id(&key),
            current: key == auth.key,
            record,
        })
        .collect();
    let factors = app.store.factors(&auth.user.id).await?;
    let view = AccountView {
        display_name: auth.identity.user_header().to_string(),
        sessions: ordered(sessions),
        linked: app.store.user_identities(&auth.user.id).await?,
        user: auth.user.clone(),
        now: now_secs(),
        totp: factors.totp.is_some(),
        recovery_left: factors.recovery_left(),
        passkeys: app.store.user_passkeys(&auth.user.id).await?,
        tokens: app.store.user_api_tokens(&auth.user.id).await?,
        token_groups: Identity::from_user(&auth.user).groups,
    };
    let site = site(app).await?;
    Ok(Some(render(pages::account::account(
        &site, &view, notice, problem, status,
    ))))
}

/// `GET /` (the account page); without a session, the login page.
pub async fn account_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    match account_for(&app, &req, done_of(&req), None, StatusCode::OK).await? {
        Some(page) => Ok(page),
        None => Ok(redirect(StatusCode::FOUND, &page_url(&app, "/login"))),
    }
}

/// The page a browser's navigation gets for an error (a missing page, a refusal, an upstream
/// that failed), with a way onward. `path` is below the prefix for API pages.
pub async fn error_page(app: &App, headers: &HeaderMap, path: &str, err: &ApiError) -> ApiResponse {
    let site = match site(app).await {
        Ok(site) => site,
        Err(e) => return super::error_response(&e, true),
    };
    let signed_in = matches!(
        app.auth.authenticate(headers, now_secs()).await,
        Ok(Some(ref a)) if a.complete()
    );
    let problem = super::forms::problem(err, path);
    let mut page = render(pages::auth::problem_page(
        &site,
        err.status(),
        &problem,
        signed_in,
    ));
    if let Some(secs) = err.retry_after() {
        page = page.with_header(http::header::RETRY_AFTER, &secs.to_string());
    }
    page
}

/// `GET /2fa`: the code after the password, for a half-open session.
pub async fn two_factor_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let rd = query_param(&req, "rd").unwrap_or_default();
    let Some(p) = app.auth.authenticate(&req.headers, now_secs()).await? else {
        return Ok(redirect(StatusCode::FOUND, &page_url(&app, "/login")));
    };
    let passkey = !app.store.user_passkeys(&p.user.id).await?.is_empty();
    let has_factor = passkey || app.store.factors(&p.user.id).await?.any();
    let verify = |site: Site| {
        render(pages::two_factor::verify(
            &site,
            &rd,
            passkey,
            None,
            StatusCode::OK,
        ))
    };
    match p.stage() {
        SessionStage::SecondFactor => Ok(verify(site(&app).await?)),
        SessionStage::Complete => {
            // Stepping up for a route that needs the factor, or already done.
            if crate::auth::second_factor::gave_second_factor(&p.session.amr) {
                Ok(redirect(StatusCode::FOUND, &after_login(&app, &rd)))
            } else if has_factor {
                Ok(verify(site(&app).await?))
            } else {
                Ok(redirect(StatusCode::FOUND, &page_url(&app, "/2fa/setup")))
            }
        }
        SessionStage::Enrol => Ok(redirect(StatusCode::FOUND, &page_url(&app, "/2fa/setup"))),
    }
}

/// The setup page for the session of `req`: the start, or the waiting secret's QR code and
/// the confirmation form; `None` without a session that may enrol.
pub async fn two_factor_setup_for(
    app: &App,
    req: &ApiRequest,
    problem: Option<&Problem>,
    status: StatusCode,
) -> Result<Option<ApiResponse>, ApiError> {
    let Some(p) = app.auth.authenticate(&req.headers, now_secs()).await? else {
        return Ok(None);
    };
    if !matches!(p.stage(), SessionStage::Complete | SessionStage::Enrol) {
        return Ok(None);
    }
    let factors = app.store.factors(&p.user.id).await?;
    if factors.totp.is_some() {
        return Ok(Some(redirect(
            StatusCode::SEE_OTHER,
            &page_url(app, "/#two-factor"),
        )));
    }
    let enrolment = match &factors.pending_totp {
        Some(pending) => {
            let secret = app
                .sealing
                .open(&pending.sealed_secret, p.user.id.as_bytes())
                .map_err(|e| ApiError::Internal(format!("a TOTP secret does not open: {e}")))?;
            let account = p.user.username.as_deref().unwrap_or(&p.user.email);
            Some(
                crate::auth::totp::enrolment(&secret, &app.config.ui.title, account)
                    .map_err(ApiError::Internal)?,
            )
        }
        None => None,
    };
    let site = site(app).await?;
    Ok(Some(render(pages::two_factor::setup(
        &site,
        enrolment.as_ref(),
        p.stage() == SessionStage::Enrol,
        problem,
        status,
    ))))
}

/// `GET /2fa/setup`.
pub async fn two_factor_setup_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    match two_factor_setup_for(&app, &req, None, StatusCode::OK).await? {
        Some(page) => Ok(page),
        None => Ok(redirect(StatusCode::FOUND, &page_url(&app, "/login"))),
    }
}
