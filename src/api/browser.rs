//! The browser side of the API: serving the pages, and turning the answer to a form post into
//! a 303 redirect (success) or the page again with the error (failure).

use std::sync::Arc;

use http::header::{LOCATION, SET_COOKIE};
use http::{Method, StatusCode};

use super::common::live_sessions;
use super::response::ApiResponse;
use super::ApiRequest;
use crate::app::{now_secs, App};
use crate::auth::redirect::{safe_redirect, RedirectPolicy};
use crate::error::ApiError;
use crate::pages::{self, FormValues, Page, ProviderLink, Site};

/// What the pages need to know about the gateway now.
pub async fn site(app: &App) -> Result<Site, ApiError> {
    let settings = app.settings().await?;
    Ok(Site {
        prefix: app.config.auth.prefix.clone(),
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
    })
}

/// A page as a response, with the headers every page is served with.
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

/// The account page URL, the fallback of every redirect after login.
pub fn account_url(app: &App) -> String {
    format!(
        "{}{}/",
        app.config.server.public_url.origin, app.config.auth.prefix
    )
}

/// Where a browser goes after logging in: `rd` if it is safe, else the account page.
pub fn after_login(app: &App, rd: &str) -> String {
    safe_redirect(rd, &RedirectPolicy::of(&app.config)).unwrap_or_else(|| account_url(app))
}

/// Where a browser goes after logging out: `rd` if it is safe, else the login page.
pub fn after_logout(app: &App, rd: &str) -> String {
    safe_redirect(rd, &RedirectPolicy::of(&app.config)).unwrap_or_else(|| {
        format!(
            "{}{}/login",
            app.config.server.public_url.origin, app.config.auth.prefix
        )
    })
}

/// A redirect response.
pub fn redirect(status: StatusCode, location: &str) -> ApiResponse {
    ApiResponse::new(status, "text/plain; charset=utf-8", "").with_header(LOCATION, location)
}

fn values_from_query(req: &ApiRequest) -> FormValues {
    FormValues {
        rd: query_param(req, "rd").unwrap_or_default(),
        token: query_param(req, "token").unwrap_or_default(),
        invite: query_param(req, "invite").unwrap_or_default(),
        ..FormValues::default()
    }
}

/// `GET /forgot-password`.
pub async fn forgot_page(
    app: Arc<App>,
    _req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    Ok(render(pages::forgot_password(
        &site(&app).await?,
        None,
        StatusCode::OK,
    )))
}

/// `GET /reset-password?token=`.
pub async fn reset_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    Ok(render(pages::reset_password(
        &site(&app).await?,
        &values_from_query(&req),
        None,
        StatusCode::OK,
    )))
}

/// `GET /verify-email?token=`.
pub async fn verify_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    Ok(render(pages::verify_email(
        &site(&app).await?,
        &values_from_query(&req),
        None,
        StatusCode::OK,
    )))
}

/// `GET /login`.
pub async fn login_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    Ok(render(pages::login(
        &site(&app).await?,
        &values_from_query(&req),
        None,
        StatusCode::OK,
    )))
}

/// `GET /register`.
pub async fn register_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    Ok(render(pages::register(
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
    Ok(render(pages::setup(
        &site(&app).await?,
        &values_from_query(&req),
        None,
        StatusCode::OK,
        !req.client_ip.is_loopback(),
    )))
}

/// `GET /` (the account page); without a session, the login page.
pub async fn account_page(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    match app.auth.authenticate(&req.headers, now_secs()).await? {
        Some(auth) if !auth.second_factor_pending => {
            let sessions = live_sessions(&app, &auth.user).await?;
            let linked = app.store.user_identities(&auth.user.id).await?;
            let site = site(&app).await?;
            Ok(render(pages::account(
                &site, &auth, &sessions, &linked, None,
            )))
        }
        _ => Ok(redirect(
            StatusCode::FOUND,
            &format!(
                "{}{}/login",
                app.config.server.public_url.origin, app.config.auth.prefix
            ),
        )),
    }
}

/// What a form post needs to answer once its handler has run.
pub struct FormPost {
    path: String,
    values: FormValues,
    /// The client is on the gateway's machine (setup needs no code).
    loopback: bool,
}

/// The form posts the pages make; `None` for anything else (answered as JSON).
pub fn form_post(req: &ApiRequest) -> Option<FormPost> {
    let pages = [
        "/login",
        "/register",
        "/setup",
        "/change-password",
        "/logout",
        "/logout-all",
        "/unlink",
        "/forgot-password",
        "/reset-password",
        "/verify-email",
    ];
    if req.method != Method::POST
        || !super::body::is_form(req)
        || !pages.contains(&req.path.as_str())
    {
        return None;
    }
    let mut values = FormValues::default();
    for (k, v) in form_urlencoded::parse(&req.body) {
        let slot = match k.as_ref() {
            "identifier" | "email" if req.path == "/login" => &mut values.identifier,
            "email" => &mut values.email,
            "username" => &mut values.username,
            "fullName" | "name" => &mut values.full_name,
            "firstName" => &mut values.first_name,
            "lastName" => &mut values.last_name,
            "rd" => &mut values.rd,
            "token" => &mut values.token,
            _ => continue,
        };
        if slot.is_empty() {
            *slot = v.chars().take(1024).collect();
        }
    }
    if values.rd.is_empty() {
        values.rd = query_param(req, "rd").unwrap_or_default();
    }
    values.invite = query_param(req, "invite").unwrap_or_default();
    Some(FormPost {
        path: req.path.clone(),
        values,
        loopback: req.client_ip.is_loopback(),
    })
}

/// Turn a handler's answer to a form post into what a browser expects. A page that cannot be
/// rendered (the store failing) is the error page instead.
pub async fn form_outcome(
    app: &App,
    post: FormPost,
    result: Result<ApiResponse, ApiError>,
) -> ApiResponse {
    let site = match site(app).await {
        Ok(site) => site,
        Err(e) => return super::error_response(&e, true),
    };
    let FormPost {
        path,
        values,
        loopback,
    } = post;
    match result {
        Ok(resp) => {
            let cookies: Vec<_> = resp
                .headers
                .iter()
                .filter(|(k, _)| k == SET_COOKIE)
                .cloned()
                .collect();
            let target = match path.as_str() {
                "/logout" | "/logout-all" => after_logout(app, &values.rd),
                "/forgot-password" => {
                    return render(pages::notice(
                        &site,
                        StatusCode::OK,
                        "Check your email",
                        "If an account exists for this address, we have sent a link to choose a new password. It is valid for 30 minutes.",
                    ))
                }
                "/verify-email" => {
                    return render(pages::notice(&site, StatusCode::OK, "Email address confirmed", "Thank you: you can sign in now."))
                }
                "/reset-password" => {
                    return render(pages::notice(&site, StatusCode::OK, "Password changed", "Sign in with your new password."))
                }
                "/register" if cookies.is_empty() => {
                    return render(pages::page(
                        StatusCode::CREATED,
                        "Account created",
                        "<h1>Account created</h1><p>An administrator must approve your account before you can sign in.</p>",
                    ));
                }
                _ => after_login(app, &values.rd),
            };
            let mut out = redirect(StatusCode::SEE_OTHER, &target);
            out.headers.extend(cookies);
            out
        }
        Err(err) => {
            let message = match &err {
                ApiError::Validation { fields, .. } if !fields.is_empty() => fields
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.client_message(),
            };
            let status = err.status();
            let page = match path.as_str() {
                "/login" => pages::login(&site, &values, Some(&message), status),
                "/register" => pages::register(&site, &values, Some(&message), status),
                "/setup" => pages::setup(&site, &values, Some(&message), status, !loopback),
                "/forgot-password" => pages::forgot_password(&site, Some(&message), status),
                "/reset-password" => pages::reset_password(&site, &values, Some(&message), status),
                "/verify-email" => pages::verify_email(&site, &values, Some(&message), status),
                _ => pages::page(
                    status,
                    "Something went wrong",
                    &format!(
                        "<h1>Something went wrong</h1><p class=\"error\" role=\"alert\">{}</p><p><a href=\"{}/\">Back to your account</a></p>",
                        pages::esc(&message),
                        pages::esc(&app.config.auth.prefix)
                    ),
                ),
            };
            let mut page = render(page);
            if let Some(secs) = err.retry_after() {
                page = page.with_header(http::header::RETRY_AFTER, &secs.to_string());
            }
            page
        }
    }
}
