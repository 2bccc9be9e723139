//! What a browser's form post gets back: on success a 303 to where it goes next (or a page
//! saying what happens next), on failure the same page again with the problem in plain words,
//! at the field it concerns, and a way forward.

use http::header::SET_COOKIE;
use http::{Method, StatusCode};
use serde_json::Value;

use super::browser::{
    account_for, after_login, after_logout, page_url, query_param, redirect, render, site, to_login,
};
use super::response::ApiResponse;
use super::ApiRequest;
use crate::app::{now_secs, App};
use crate::error::ApiError;
use crate::pages::account::Section;
use crate::pages::auth::{FormValues, Registered};
use crate::pages::describe::wait;
use crate::pages::{self, NextStep, Problem};

/// The forms the pages post (besides the admin pages, which answer for themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Login,
    Register,
    Setup,
    ChangePassword,
    Profile,
    Logout,
    LogoutAll,
    Unlink,
    EndSession,
    Forgot,
    Reset,
    Verify,
    Resend,
    /// The code after the password.
    SecondFactor,
    TotpSetup,
    TotpConfirm,
    TotpRemove,
    RecoveryCodes,
    PasskeyDelete,
    TokenCreate,
    TokenRevoke,
}

impl Form {
    fn of(path: &str) -> Option<Form> {
        Some(match path {
            "/login" => Form::Login,
            "/register" => Form::Register,
            "/setup" => Form::Setup,
            "/change-password" | "/password" => Form::ChangePassword,
            "/profile" => Form::Profile,
            "/logout" => Form::Logout,
            "/logout-all" => Form::LogoutAll,
            "/unlink" => Form::Unlink,
            "/forgot-password" => Form::Forgot,
            "/reset-password" => Form::Reset,
            "/verify-email" => Form::Verify,
            "/resend-verification" => Form::Resend,
            "/2fa/verify" => Form::SecondFactor,
            "/2fa/totp/setup" => Form::TotpSetup,
            "/2fa/totp/confirm" => Form::TotpConfirm,
            "/2fa/totp/remove" => Form::TotpRemove,
            "/2fa/recovery-codes" => Form::RecoveryCodes,
            "/tokens/new" => Form::TokenCreate,
            p if p.starts_with("/sessions/") && p.ends_with("/end") => Form::EndSession,
            p if p.starts_with("/passkeys/") && p.ends_with("/delete") => Form::PasskeyDelete,
            p if p.starts_with("/tokens/") && p.ends_with("/revoke") => Form::TokenRevoke,
            _ => return None,
        })
    }
}

/// What a form post needs to answer once its handler has run.
pub struct FormPost {
    form: Form,
    values: FormValues,
    /// The client is on the gateway's machine (setup needs no code).
    loopback: bool,
}

/// The form posts the pages make; `None` for anything else (answered as JSON).
pub fn form_post(req: &ApiRequest) -> Option<FormPost> {
    if req.method != Method::POST || !super::body::is_form(req) {
        return None;
    }
    let form = Form::of(&req.path)?;
    let mut values = FormValues::default();
    for (k, v) in form_urlencoded::parse(&req.body) {
        let slot = match k.as_ref() {
            "identifier" if form == Form::Resend => &mut values.identifier,
            "identifier" | "email" if form == Form::Login => &mut values.identifier,
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
        form,
        values,
        loopback: req.client_ip.is_loopback(),
    })
}

/// A problem at a field, in words for the person at the form: "is required" becomes "Please
/// fill this in.", "must be …" "Must be ….".
fn field_words(problem: &str) -> String {
    let p = problem.trim();
    let mut s = if p == "is required" {
        "Please fill this in".to_string()
    } else if let Some(rest) = p.strip_prefix("is ") {
        format!("This is {rest}")
    } else {
        let mut c = p.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default()
    };
    if !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    s
}

/// Sentence case with a full stop, for a message from the API.
fn sentence(message: &str) -> String {
    field_words(message)
}

/// The forms that make an API token: a person's own (the account page) and an
/// administrator's for a service account.
fn makes_token(path: &str) -> bool {
    path == "/tokens/new"
        || (path.starts_with("/admin/service-accounts/") && path.ends_with("/tokens/new"))
}

/// The buttons that revoke an API token.
fn revokes_token(path: &str) -> bool {
    (path.starts_with("/tokens/") || path.starts_with("/admin/service-accounts/"))
        && path.ends_with("/revoke")
}

/// A problem with a field of the token form, in words for the person at it.
fn token_field_words(field: &str, problem: &str) -> String {
    match field {
        "name" => "Give it a name of 1 to 64 characters, on one line.".into(),
        "expiresIn" => "Choose one of the lifetimes offered.".into(),
        _ => field_words(problem),
    }
}

/// The problem an error is for a person at the page of `path`: plain words, at the field it
/// concerns, and a way forward where there is one.
pub fn problem(err: &ApiError, path: &str) -> Problem {
    let form = Form::of(path);
    let mut p = Problem::default();
    p.summary = match err {
        ApiError::Validation { fields, message } if makes_token(path) => {
            for (name, text) in fields {
                p.fields.insert(name.clone(), token_field_words(name, text));
            }
            if fields.is_empty() {
                sentence(message)
            } else {
                "The token was not created: please correct the marked fields.".into()
            }
        }
        // The only conflict a new token meets: the account holds as many as it may.
        ApiError::Conflict(_) if makes_token(path) => format!(
            "The token was not created: this account already holds {}, the most it may. Revoke one that is no longer needed first.",
            crate::auth::api_token::MAX_PER_USER
        ),
        ApiError::NotFound if revokes_token(path) => {
            "That token no longer exists: it was already revoked.".into()
        }
        ApiError::Validation { fields, message } => {
            for (name, text) in fields {
                p.fields.insert(name.clone(), field_words(text));
            }
            if fields.is_empty() {
                sentence(message)
            } else {
                "Please correct the marked fields.".into()
            }
        }
        ApiError::InvalidCredentials if form == Some(Form::ChangePassword) => {
            p.fields.insert(
                "currentPassword".into(),
                "This is not your current password.".into(),
            );
            "Your password was not changed.".into()
        }
        ApiError::InvalidCredentials if form == Some(Form::SecondFactor) => {
            p.fields.insert(
                "code".into(),
                "This code is not right. Enter the one the app shows now, or a recovery code.".into(),
            );
            "That did not work.".into()
        }
        ApiError::InvalidCredentials
            if matches!(form, Some(Form::TotpRemove | Form::RecoveryCodes)) =>
        {
            p.fields.insert("password".into(), "This is not your password.".into());
            "Nothing was changed.".into()
        }
        ApiError::InvalidCredentials => {
            "The email, username or password is not right. Check them and try again.".into()
        }
        ApiError::AccountLocked { retry_after_secs } => format!(
            "Too many failed attempts: this account is locked for {}. Try again then, or reset your password.",
            wait(*retry_after_secs)
        ),
        ApiError::RateLimited { retry_after_secs } => format!(
            "Too many attempts from your network. Please wait {} and try again.",
            wait(*retry_after_secs)
        ),
        ApiError::EmailNotVerified => {
            "Please confirm your email address first: open the link we sent you.".into()
        }
        ApiError::AccountPending => {
            "Your account is waiting for an administrator's approval. You can sign in once it is approved.".into()
        }
        ApiError::AccountDisabled => {
            "This account is disabled. If you think this is a mistake, ask an administrator.".into()
        }
        ApiError::RegistrationDisabled => "This site does not take new registrations.".into(),
        ApiError::InviteRequired => {
            "You need a valid invitation to register. The link may have expired or been used up: ask for a new one.".into()
        }
        ApiError::Conflict(message) => {
            let words = sentence(message);
            if message.contains("email") {
                p.fields.insert("email".into(), words.clone());
            } else if message.contains("username") {
                p.fields.insert("username".into(), words.clone());
            } else if message.contains("name") {
                p.fields.insert("name".into(), words.clone());
            }
            words
        }
        ApiError::AlreadySetup => "This site is already set up. Sign in instead.".into(),
        ApiError::SetupRequired => "This site has no owner yet: set it up first.".into(),
        ApiError::SetupCodeRequired => {
            p.fields.insert(
                "setupCode".into(),
                "Enter the setup code from the gateway's log.".into(),
            );
            "Setup from another machine needs the setup code.".into()
        }
        ApiError::InvalidToken => "This link has expired or was already used.".into(),
        ApiError::Unauthorized => "Please sign in to continue.".into(),
        ApiError::NotFound => "There is no page at this address.".into(),
        ApiError::MethodNotAllowed => "This page cannot do that.".into(),
        ApiError::ServiceUnavailable { .. } | ApiError::ProviderUnavailable(_) => {
            "The service is busy or briefly unavailable. Please try again in a moment.".into()
        }
        ApiError::SmtpNotConfigured => {
            "This site cannot send email. Ask an administrator to help you.".into()
        }
        ApiError::Internal(_) => {
            // Logs the detail; the person sees none of it.
            let _ = err.client_message();
            "Something went wrong on our side. Please try again.".into()
        }
        other => sentence(&other.client_message()),
    };
    if matches!(err, ApiError::EmailNotVerified) {
        p.next = Some(NextStep::ResendVerification {
            identifier: String::new(),
        });
    }
    p
}

/// What a registration that did not sign in led to, from the API's answer.
fn registration_outcome(app: &App, resp: &ApiResponse) -> (String, Registered) {
    let data: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    let user = &data["data"]["user"];
    let email = user["email"].as_str().unwrap_or_default().to_string();
    let pending = user["status"].as_str() == Some("pending");
    let unconfirmed = user["emailVerified"].as_bool() == Some(false);
    let mail_sent =
        unconfirmed && app.config.auth.require_email_verification && app.mailer.is_some();
    (
        email,
        Registered {
            needs_approval: pending,
            mail_sent,
        },
    )
}

/// Turn a handler's answer to a form post into what a browser expects. A page that cannot be
/// rendered (the store failing) is the error page instead.
pub async fn form_outcome(
    app: &App,
    req: &ApiRequest,
    post: FormPost,
    result: Result<ApiResponse, ApiError>,
) -> ApiResponse {
    match form_answer(app, req, post, result).await {
        Ok(resp) => resp,
        Err(e) => super::error_response(&e, true),
    }
}

async fn form_answer(
    app: &App,
    req: &ApiRequest,
    post: FormPost,
    result: Result<ApiResponse, ApiError>,
) -> Result<ApiResponse, ApiError> {
    let FormPost {
        form,
        mut values,
        loopback,
    } = post;
    let site = site(app).await?;
    let resp = match result {
        Ok(resp) => resp,
        Err(err) => {
            let status = err.status();
            let mut p = problem(&err, &req.path);
            if let Some(NextStep::ResendVerification { identifier }) = &mut p.next {
                identifier.clone_from(&values.identifier);
            }
            let page = match form {
                Form::Login => pages::auth::login(&site, &values, Some(&p), None, status),
                Form::Register => pages::auth::register(&site, &values, Some(&p), status),
                Form::Setup => pages::auth::setup(&site, &values, Some(&p), status, !loopback),
                Form::Forgot => pages::auth::forgot_password(&site, Some(&p), status),
                Form::Reset | Form::Verify if matches!(err, ApiError::InvalidToken) => {
                    pages::auth::link_expired(&site, form == Form::Reset, status)
                }
                Form::Reset => {
                    let account = reset_account(app, &values.token).await?;
                    pages::auth::reset_password(&site, &values, &account, Some(&p), status)
                }
                Form::Verify => pages::auth::verify_email(&site, &values, Some(&p), status),
                Form::SecondFactor if !matches!(err, ApiError::Unauthorized) => {
                    let passkey = match app.auth.authenticate(&req.headers, now_secs()).await? {
                        Some(s) => !app.store.user_passkeys(&s.user.id).await?.is_empty(),
                        None => false,
                    };
                    pages::two_factor::verify(&site, &values.rd, passkey, Some(&p), status)
                }
                _ if matches!(err, ApiError::Unauthorized) => {
                    return Ok(to_login(app, &page_url(app, "/")));
                }
                Form::TotpConfirm | Form::TotpSetup => {
                    if let Some(page) =
                        super::browser::two_factor_setup_for(app, req, Some(&p), status).await?
                    {
                        return Ok(with_retry_after(page, &err));
                    }
                    return Ok(to_login(app, &page_url(app, "/")));
                }
                Form::ChangePassword
                | Form::Profile
                | Form::TotpRemove
                | Form::RecoveryCodes
                | Form::TokenCreate
                | Form::TokenRevoke => {
                    let section = match form {
                        Form::Profile => Section::Profile,
                        Form::ChangePassword => Section::Password,
                        Form::TokenCreate | Form::TokenRevoke => Section::Tokens,
                        _ => Section::TwoFactor,
                    };
                    if let Some(page) =
                        account_for(app, req, None, Some((section, &p)), status).await?
                    {
                        return Ok(with_retry_after(page, &err));
                    }
                    return Ok(to_login(app, &page_url(app, "/")));
                }
                _ => pages::auth::problem_page(&site, status, &p, true),
            };
            return Ok(with_retry_after(render(page), &err));
        }
    };
    let cookies: Vec<_> = resp
        .headers
        .iter()
        .filter(|(k, _)| k == SET_COOKIE)
        .cloned()
        .collect();
    let target = match form {
        Form::Logout => after_logout(app, &values.rd, "signed-out"),
        Form::LogoutAll => after_logout(app, &values.rd, "signed-out-everywhere"),
        Form::Forgot => return Ok(render(pages::auth::reset_link_sent(&site))),
        Form::Resend => {
            return Ok(render(pages::notice(
                &site,
                StatusCode::OK,
                "Check your email",
                "If this account's address still needs confirming, we have sent the link again. It may take a few minutes to arrive.",
                &[(format!("{}/login", site.prefix), "Back to sign in")],
            )))
        }
        Form::Verify => page_url(app, "/login?done=email-confirmed"),
        Form::Reset => page_url(app, "/login?done=password-reset"),
        Form::ChangePassword => page_url(app, "/?done=password-changed"),
        Form::Profile => page_url(app, "/?done=profile-saved"),
        Form::Unlink => page_url(app, "/?done=unlinked"),
        // Ending this device's own session signs it out.
        Form::EndSession if !cookies.is_empty() => page_url(app, "/login?done=signed-out"),
        Form::EndSession => page_url(app, "/?done=session-ended"),
        Form::TotpSetup => page_url(app, "/2fa/setup"),
        Form::TotpRemove => page_url(app, "/?done=two-factor-off"),
        Form::PasskeyDelete => page_url(app, "/?done=passkey-deleted"),
        Form::TokenRevoke => page_url(app, "/?done=token-revoked#tokens"),
        // Shown once on a page of its own: never in an address, never on the account page.
        Form::TokenCreate => {
            let data: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            return Ok(render(pages::tokens::created(
                &site,
                "Your new token",
                &super::token_pages::created_of(&data["data"]),
                pages::tokens::Whose::Yours,
                (page_url(app, "/#tokens"), "Back to your account"),
            )));
        }
        Form::TotpConfirm | Form::RecoveryCodes => {
            let data: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            let codes: Vec<String> = data["data"]["recoveryCodes"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            let mut page = render(pages::two_factor::recovery_codes(
                &site,
                &codes,
                &page_url(app, "/"),
            ));
            page.headers.extend(cookies);
            return Ok(page);
        }
        Form::Login if login_needs(&resp, "secondFactorRequired") => {
            page_url(app, &format!("/2fa{}", pages::rd_query(&values.rd)))
        }
        Form::Login if login_needs(&resp, "secondFactorEnrolRequired") => {
            page_url(app, "/2fa/setup")
        }
        Form::SecondFactor => after_login(app, &values.rd),
        Form::Register if cookies.is_empty() => {
            let (email, outcome) = registration_outcome(app, &resp);
            values.email = email;
            return Ok(render(pages::auth::registered(&site, &values.email, outcome)));
        }
        Form::Login | Form::Register | Form::Setup => after_login(app, &values.rd),
    };
    let mut out = redirect(StatusCode::SEE_OTHER, &target);
    out.headers.extend(cookies);
    Ok(out)
}

/// Whether a login's answer says the sign-in needs `what` next (a second factor, or enrolling
/// one).
fn login_needs(resp: &ApiResponse, what: &str) -> bool {
    let data: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    data["data"][what] == Value::Bool(true)
}

/// The address a reset link is for (empty when it is no longer valid).
async fn reset_account(app: &App, token: &str) -> Result<String, ApiError> {
    Ok(
        super::browser::token_account(app, token, crate::store::TokenKind::PasswordReset)
            .await?
            .unwrap_or_default(),
    )
}

fn with_retry_after(page: ApiResponse, err: &ApiError) -> ApiResponse {
    match err.retry_after() {
        Some(secs) => page.with_header(http::header::RETRY_AFTER, &secs.to_string()),
        None => page,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_problems_read_as_sentences() {
        let cases = [
            ("is required", "Please fill this in."),
            (
                "is not a valid email address",
                "This is not a valid email address.",
            ),
            (
                "must be at least 8 characters",
                "Must be at least 8 characters.",
            ),
            (
                "must differ from the current password",
                "Must differ from the current password.",
            ),
            ("this username is taken", "This username is taken."),
            ("Already a sentence.", "Already a sentence."),
        ];
        for (api, person) in cases {
            assert_eq!(field_words(api), person, "{api}");
        }
    }

    #[test]
    fn errors_become_plain_words_at_their_field_with_a_way_forward() {
        // (error, form path, summary contains, field with a problem)
        let cases: Vec<(ApiError, &str, &str, Option<&str>)> = vec![
            (ApiError::InvalidCredentials, "/login", "not right", None),
            (
                ApiError::InvalidCredentials,
                "/change-password",
                "not changed",
                Some("currentPassword"),
            ),
            (
                ApiError::AccountLocked {
                    retry_after_secs: 900,
                },
                "/login",
                "locked for 15 minutes",
                None,
            ),
            (
                ApiError::RateLimited {
                    retry_after_secs: 30,
                },
                "/login",
                "wait 1 minute",
                None,
            ),
            (
                ApiError::field("newPassword", "must be at least 8 characters"),
                "/change-password",
                "correct the marked",
                Some("newPassword"),
            ),
            (
                ApiError::Conflict("this email address is already registered".into()),
                "/register",
                "already registered",
                Some("email"),
            ),
            (
                ApiError::SetupCodeRequired,
                "/setup",
                "setup code",
                Some("setupCode"),
            ),
            (
                ApiError::EmailNotVerified,
                "/login",
                "confirm your email",
                None,
            ),
            (
                ApiError::Internal("db file gone".into()),
                "/login",
                "our side",
                None,
            ),
        ];
        for (err, path, summary, field) in cases {
            let p = problem(&err, path);
            assert!(p.summary.contains(summary), "{err:?}: {}", p.summary);
            assert!(
                !p.summary.contains("db file"),
                "internals shown: {}",
                p.summary
            );
            match field {
                Some(f) => assert!(p.fields.contains_key(f), "{err:?}: {:?}", p.fields),
                None => assert!(p.fields.is_empty(), "{err:?}: {:?}", p.fields),
            }
        }
        assert!(matches!(
            problem(&ApiError::EmailNotVerified, "/login").next,
            Some(NextStep::ResendVerification { .. })
        ));
    }
}
