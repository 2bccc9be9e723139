//! Sign-in with outside providers: `GET /oauth/{provider}` sends the browser to the provider,
//! `GET /oauth/{provider}/callback` turns its answer into a local session (`/google` and
//! `/google/callback` alias the provider named `google`).
//!
//! Which local account an identity means: the one linked to (provider, subject); else, only
//! when the operator enabled `link_by_email` and the provider vouches for the address, the
//! account with that email (linked from then on); else a new account when `auto_register` and
//! the registration mode allow it. An address the provider does not mark verified never creates
//! or links an account.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::SET_COOKIE;
use http::StatusCode;

use super::browser::{after_login, query_param, redirect};
use super::common::{
    audit_account_created, audit_login, find_account_by_email, new_session, new_user_id, refused,
    require_session, sign_in_replacing, with_session_cookie,
};
use super::response::{error_response, ApiResponse};
use super::{validate, ApiRequest};
use crate::app::{now_secs, App};
use crate::auth::cookie;
use crate::auth::redirect::{safe_redirect, RedirectPolicy};
use crate::auth::second_factor::{stage_after_first_factor, Enrolled, HALF_OPEN_SECS};
use crate::auth::signin::{may_register, may_sign_in, password_sign_in_open, Invite, Way};
use crate::config::{FieldMode, Registration, SameSite};
use crate::error::ApiError;
use crate::oidc::flows::{FlowError, PendingFlow};
use crate::oidc::{ExternalIdentity, OidcError, Provider};
use crate::store::{
    IdentityRecord, IdentitySignIn, NewAccount, PasswordSignIn, Role, SessionStage, Unlink,
    UnlinkRule, UserRecord, UserStatus, WriteError,
};

/// The provider named in the path (`/oauth/{name}`), or `google` for the alias.
fn provider_of<'a>(app: &'a App, params: &[String]) -> Result<&'a Arc<Provider>, ApiError> {
    let name = params.first().map(String::as_str).unwrap_or("google");
    app.oidc.provider(name).ok_or(ApiError::NotFound)
}

impl From<OidcError> for ApiError {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::Unavailable(m) => ApiError::ProviderUnavailable(m),
            OidcError::Refused(m) => ApiError::SignInRefused(m),
        }
    }
}

/// An error as a page for browsers (with a way back, never an automatic retry), or the JSON
/// envelope for other clients. The flow cookie stays: a forged callback must not break a
/// sign-in the browser has in progress in another tab (it expires by itself).
async fn failure(app: &App, req: &ApiRequest, e: &ApiError) -> ApiResponse {
    let resp = if crate::access::wants_html(&req.headers) {
        // Logs an internal error's detail.
        let shown = e.client_message();
        let message = match e {
            ApiError::InvalidToken => {
                "This sign-in expired, was already used, or was started in another browser. Please start again.".to_string()
            }
            ApiError::Internal(_) => "Something went wrong on our side. Please try again.".to_string(),
            _ => capitalise(&shown),
        };
        let site = match super::browser::site(app).await {
            Ok(site) => site,
            Err(e) => return error_response(&e, true),
        };
        let mut page = super::browser::render(crate::pages::notice(
            &site,
            e.status(),
            "Sign-in did not complete",
            &message,
            &[(format!("{}/login", site.prefix), "Back to sign in")],
        ));
        if let Some(secs) = e.retry_after() {
            page = page.with_header(http::header::RETRY_AFTER, &secs.to_string());
        }
        page
    } else {
        error_response(e, false)
    };
    resp
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

/// The metrics label of a failed sign-in.
fn outcome(e: &ApiError) -> &'static str {
    match e {
        ApiError::InvalidToken => "bad_state",
        ApiError::SignInRefused(_) => "refused",
        ApiError::ProviderUnavailable(_) | ApiError::ServiceUnavailable { .. } => "unavailable",
        ApiError::RegistrationDisabled | ApiError::InviteRequired => "no_account",
        ApiError::AccountPending => "pending",
        ApiError::AccountDisabled | ApiError::EmailNotVerified => "disabled",
        ApiError::Forbidden(_) => "forbidden",
        ApiError::Conflict(_) => "conflict",
        ApiError::Unauthorized => "unauthorized",
        e if e.status().is_client_error() => "bad_request",
        _ => "error",
    }
}

/// A new random value for the flow cookie.
fn new_binding() -> Result<String, ApiError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// `GET /oauth/{provider}[?rd=&invite=&remember=1&link=1]` (and `/google`): send the browser to
/// the provider.
pub async fn start(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let result = begin(&app, &req, &params).await;
    if let (Ok(provider), Err(e)) = (provider_of(&app, &params), &result) {
        app.metrics
            .provider_login(&provider.config.name, outcome(e));
    }
    match result {
        Err(e @ ApiError::NotFound) => Err(e),
        Err(e) => Ok(failure(&app, &req, &e).await),
        ok => ok,
    }
}

async fn begin(
    app: &Arc<App>,
    req: &ApiRequest,
    params: &[String],
) -> Result<ApiResponse, ApiError> {
    let provider = provider_of(app, params)?;
    let rd = query_param(req, "rd")
        .filter(|rd| safe_redirect(rd, &RedirectPolicy::of(&app.config)).is_some())
        .unwrap_or_default();
    let invite = query_param(req, "invite").filter(|c| !c.is_empty() && c.len() <= 128);
    let on = |v: Option<String>| v.is_some_and(|v| matches!(v.as_str(), "1" | "true" | "on"));
    let remember = on(query_param(req, "remember"));
    let link_user = if on(query_param(req, "link")) {
        Some(require_session(app, req).await?.user.id.clone())
    } else {
        None
    };
    let auth = app.oidc.authorize(provider).await?;
    // One binding per browser: tabs signing in at once share it.
    let existing = cookie::flow_values(&req.headers, &app.config.session)
        .into_iter()
        .find(|v| v.len() == 43 && URL_SAFE_NO_PAD.decode(v).is_ok_and(|b| b.len() == 32));
    let binding = match existing {
        Some(b) => b,
        None => new_binding()?,
    };
    let mut flow = PendingFlow::new(
        &provider.config.name,
        &binding,
        auth.nonce,
        auth.pkce_verifier,
        rd,
        invite,
        link_user,
        now_secs(),
    );
    flow.remember = remember;
    flow.client = Some(crate::auth::limits::bucket(req.client_ip).to_string());
    app.oidc
        .flows
        .insert(app.store.flows(), &auth.state, flow)
        .await?;
    // Set again each time, so the cookie lives as long as the newest flow it binds.
    Ok(redirect(StatusCode::FOUND, auth.url.as_str()).with_header(
        SET_COOKIE,
        &cookie::set_flow_cookie(&app.config.session, &binding),
    ))
}

/// `GET /oauth/{provider}/callback` (and `/google/callback`): finish the sign-in.
pub async fn callback(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let provider = provider_of(&app, &params)?;
    let name = provider.config.name.clone();
    let result = finish(&app, &req, provider).await;
    app.metrics.provider_login(
        &name,
        match &result {
            Ok(_) => "success",
            Err(e) => outcome(e),
        },
    );
    match result {
        Ok(r) => Ok(r),
        Err(e) => {
            if !matches!(e, ApiError::InvalidToken) {
                app.audit(
                    "provider_login_failed",
                    Some(req.client_ip),
                    None,
                    None,
                    Some(format!("provider={name} code={}", e.code())),
                );
            }
            Ok(failure(&app, &req, &e).await)
        }
    }
}

async fn finish(
    app: &Arc<App>,
    req: &ApiRequest,
    provider: &Arc<Provider>,
) -> Result<ApiResponse, ApiError> {
    let cfg = &provider.config;
    let state = query_param(req, "state").unwrap_or_default();
    let flow = app
        .oidc
        .flows
        .take(
            app.store.flows(),
            &state,
            &cfg.name,
            &cookie::flow_values(&req.headers, &app.config.session),
            now_secs(),
        )
        .await?
        .map_err(|e| {
            if e != FlowError::Unknown || !state.is_empty() {
                tracing::info!(provider = %cfg.name, reason = ?e, "sign-in callback with an unusable state");
            }
            ApiError::InvalidToken
        })?;
    if let Some(error) = query_param(req, "error") {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        return Err(ApiError::SignInRefused(format!(
            "{} did not sign you in ({error})",
            cfg.display_name
        )));
    }
    let code = query_param(req, "code")
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or_else(|| ApiError::SignInRefused("the provider sent no authorization code".into()))?;
    let ext = app
        .oidc
        .finish(
            provider,
            code,
            flow.nonce.clone(),
            flow.pkce_verifier.clone(),
        )
        .await?;
    if ext.subject.is_empty() || ext.subject.len() > 255 {
        return Err(ApiError::SignInRefused(
            "the provider gave no usable account id".into(),
        ));
    }
    // The address the provider vouches for, as it sent it.
    let email_ok = |ext: &ExternalIdentity| -> Result<String, ApiError> {
        let Some(email) = ext.email.clone() else {
            return Err(ApiError::Forbidden(format!(
                "{} did not share an email address",
                cfg.display_name
            )));
        };
        if !ext.email_verified {
            return Err(ApiError::Forbidden(format!(
                "your {} email address is not verified",
                cfg.display_name
            )));
        }
        Ok(email)
    };
    // What an account may be created with, and checked against `allowed_domains` (the domain
    // in its ASCII form).
    let usable = |email: &str| {
        validate::email(email).map_err(|_| {
            ApiError::Forbidden(format!(
                "{} gave an unusable email address",
                cfg.display_name
            ))
        })
    };
    if !cfg.allowed_domains.is_empty() {
        let email = usable(&email_ok(&ext)?)?;
        let domain = email.rsplit('@').next().unwrap_or_default();
        let allowed = |d: &str| cfg.allowed_domains.iter().any(|a| a == d);
        // Google: the address's domain alone does not show that the organisation manages the
        // account (a personal account may carry a work address); `hd` does.
        let managed = !cfg.hosted_domain || ext.hosted_domain.as_deref().is_some_and(allowed);
        if !allowed(domain) || !managed {
            app.audit(
                "provider_domain_refused",
                Some(req.client_ip),
                None,
                Some(&email),
                Some(format!(
                    "provider={} hd={}",
                    cfg.name,
                    ext.hosted_domain.as_deref().unwrap_or("-")
                )),
            );
            return Err(ApiError::Forbidden(if allowed(domain) {
                format!(
                    "only accounts managed by {domain} may sign in here; this {} account is not",
                    cfg.display_name
                )
            } else {
                format!("accounts of {domain} may not sign in here")
            }));
        }
    }
    if let Some(user_id) = &flow.link_user {
        return link(app, req, provider, &ext, user_id).await;
    }
    let found = app.store.find_identity(&cfg.name, &ext.subject).await?;
    if let Some((_, user)) = found {
        return sign_in(app, req, provider, &ext, user, &flow).await;
    }
    // Not linked yet: an existing account by email (only if the operator allows it), or a new one.
    let email = email_ok(&ext)?;
    if let Some(user) = find_account_by_email(&app.store, &email).await? {
        // Only an address the account has proven (or the owner's, set up by the operator):
        // anyone can register a password account under someone else's unverified address and
        // wait for its owner to sign in with a provider.
        let proven = user.email_verified || user.role == Role::Owner;
        if !cfg.link_by_email || !proven {
            return Err(ApiError::Conflict(format!(
                "an account with this email address already exists; sign in with it, then link {} from your account page",
                cfg.display_name
            )));
        }
        let identity = identity_record(&ext, &user.id);
        check_may_sign_in(app, provider, &user).await?;
        return link_and_sign_in(app, req, provider, identity, user, &flow).await;
    }
    let email = usable(&email)?;
    register(app, req, provider, &ext, email, &flow).await
}

fn identity_record(ext: &ExternalIdentity, user_id: &str) -> IdentityRecord {
    IdentityRecord {
        provider: ext.provider.clone(),
        subject: ext.subject.clone(),
        user_id: user_id.to_string(),
        email: ext.email.clone(),
        linked_at: now_secs(),
        last_login_at: None,
    }
}

/// The same checks as a password login once the password was right.
async fn check_may_sign_in(
    app: &App,
    provider: &Provider,
    user: &UserRecord,
) -> Result<(), ApiError> {
    may_sign_in(&app.gate().await?, way(provider), user, now_secs())
}

/// How the sign-in policy sees a sign-in through `provider`.
fn way(provider: &Provider) -> Way<'_> {
    Way::Provider {
        display_name: &provider.config.display_name,
        auto_register: provider.config.auto_register,
    }
}

/// The redirect that ends a successful sign-in, with the new session's cookie. With
/// `same_site = "strict"` a redirect would still belong to the provider's cross-site navigation
/// and arrive without the new cookie, so a page continues instead (a same-site navigation).
async fn signed_in(
    app: &App,
    flow: &PendingFlow,
    token: &str,
    stage: SessionStage,
) -> Result<ApiResponse, ApiError> {
    // A second factor, or enrolling one, comes first.
    let to = match stage {
        SessionStage::Complete => after_login(app, &flow.rd),
        SessionStage::SecondFactor => {
            super::browser::page_url(app, &format!("/2fa{}", crate::pages::rd_query(&flow.rd)))
        }
        SessionStage::Enrol => super::browser::page_url(app, "/2fa/setup"),
    };
    let resp = if app.config.session.same_site == SameSite::Strict {
        let site = super::browser::site(app).await?;
        super::browser::render(crate::pages::auth::continue_to(&site, &to))
    } else {
        redirect(StatusCode::SEE_OTHER, &to)
    };
    Ok(with_session_cookie(resp, app, token, flow.remember))
}

/// Open a session for `user_id` through `identity`, audit the login, and send the browser on.
async fn open_session(
    app: &Arc<App>,
    req: &ApiRequest,
    provider: &Provider,
    user_id: &str,
    flow: &PendingFlow,
    identity: IdentitySignIn,
) -> Result<ApiResponse, ApiError> {
    let now = now_secs();
    let (token, mut session) = new_session(
        app,
        req,
        user_id,
        flow.remember,
        now,
        vec![format!("provider:{}", flow.provider)],
    )?;
    let role = app
        .store
        .get_user(user_id)
        .await?
        .map_or(Role::User, |u| u.role);
    let factors = app.store.factors(user_id).await?;
    let enrolled = Enrolled {
        factors: &factors,
        passkeys: app.store.user_passkeys(user_id).await?.len(),
    };
    let stage = stage_after_first_factor(app.config.auth.second_factor, role, enrolled);
    session.record.stage = stage;
    if stage == SessionStage::SecondFactor {
        session.record.expires_at = session.record.expires_at.min(now + HALF_OPEN_SECS);
    }
    let mut sign_in = sign_in_replacing(app, req, session);
    sign_in.identity = Some(identity);
    app.store.open_session(sign_in).await.map_err(|e| match e {
        // The link or the user went away meanwhile.
        WriteError::NotFound => ApiError::SignInRefused("the account is no longer linked".into()),
        other => refused(other),
    })?;
    audit_login(
        app,
        req,
        user_id,
        Some(format!("provider={}", provider.config.name)),
    );
    signed_in(app, flow, &token.token, stage).await
}

/// Sign in a user found through a linked identity.
async fn sign_in(
    app: &Arc<App>,
    req: &ApiRequest,
    provider: &Provider,
    ext: &ExternalIdentity,
    user: UserRecord,
    flow: &PendingFlow,
) -> Result<ApiResponse, ApiError> {
    check_may_sign_in(app, provider, &user).await?;
    let identity = IdentitySignIn::Linked {
        provider: provider.config.name.clone(),
        subject: ext.subject.clone(),
        email: ext.email.clone(),
    };
    open_session(app, req, provider, &user.id, flow, identity).await
}

/// Link a verified address's identity to the existing account with that address and sign in.
async fn link_and_sign_in(
    app: &Arc<App>,
    req: &ApiRequest,
    provider: &Provider,
    identity: IdentityRecord,
    user: UserRecord,
    flow: &PendingFlow,
) -> Result<ApiResponse, ApiError> {
    let signed_in = open_session(
        app,
        req,
        provider,
        &user.id,
        flow,
        IdentitySignIn::Link(identity),
    )
    .await?;
    app.audit(
        "identity_linked",
        Some(req.client_ip),
        Some(&user.id),
        None,
        Some(format!("provider={} by=email", provider.config.name)),
    );
    Ok(signed_in)
}

/// The answer to a refused link or identity sign-up.
fn identity_error(e: WriteError) -> ApiError {
    match e {
        // The account was deleted between finding it and linking it.
        WriteError::NotFound => ApiError::SignInRefused("the account no longer exists".into()),
        other => refused(other),
    }
}

/// `?link=1`: add the identity to the signed-in user's account.
async fn link(
    app: &Arc<App>,
    req: &ApiRequest,
    provider: &Provider,
    ext: &ExternalIdentity,
    user_id: &str,
) -> Result<ApiResponse, ApiError> {
    // The browser must still be signed in as the user who asked.
    let auth = require_session(app, req).await?;
    if auth.user.id != user_id {
        return Err(ApiError::Forbidden(
            "signed in as someone else than when linking started".into(),
        ));
    }
    app.store
        .link_identity(identity_record(ext, user_id))
        .await
        .map_err(identity_error)?;
    app.audit(
        "identity_linked",
        Some(req.client_ip),
        Some(user_id),
        None,
        Some(format!("provider={}", provider.config.name)),
    );
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &super::browser::account_url(app),
    ))
}

/// `DELETE /me/identities/{provider}`, or `POST /unlink` with `provider` (the account page's
/// form): remove the signed-in user's link to a provider, unless it is their last way to sign
/// in (no other configured provider linked, and no password that may be used here).
pub async fn unlink_mine(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let auth = require_session(&app, &req).await?;
    let provider = match params.first() {
        Some(p) => p.clone(),
        None => {
            let mut body = super::body::form_or_json_body(&req)?;
            let p = body.required_text(&["provider"]);
            body.finish()?;
            p.unwrap_or_default()
        }
    };
    let configured: Vec<String> = app
        .oidc
        .providers()
        .iter()
        .map(|p| p.config.name.clone())
        .collect();
    let native = app.settings().await?.native_signin;
    let rule = UnlinkRule::KeepAWayIn {
        configured,
        password: if native {
            PasswordSignIn::Everyone
        } else {
            PasswordSignIn::OwnerOnly
        },
    };
    let outcome = app
        .store
        .unlink_identity(&auth.user.id, &provider, rule)
        .await?;
    match outcome {
        Unlink::NotLinked => Err(ApiError::NotFound),
        Unlink::Refused => Err(ApiError::Conflict(
            if auth.user.password_hash.is_none() && password_sign_in_open(native, &auth.user) {
                "this is your only way to sign in: set a password (forgot password) or link another provider first"
            } else {
                "this is your only way to sign in: link another provider first"
            }
            .into(),
        )),
        Unlink::Done => {
            app.audit(
                "identity_unlinked",
                Some(req.client_ip),
                Some(&auth.user.id),
                Some(&auth.user.id),
                Some(format!("provider={provider}")),
            );
            Ok(ApiResponse::ok(
                StatusCode::OK,
                "identity unlinked",
                serde_json::Value::Null,
            ))
        }
    }
}

/// Create the account of a first sign-in, as the registration mode allows.
async fn register(
    app: &Arc<App>,
    req: &ApiRequest,
    provider: &Provider,
    ext: &ExternalIdentity,
    email: String,
    flow: &PendingFlow,
) -> Result<ApiResponse, ApiError> {
    let cfg = &provider.config;
    let gate = app.gate().await?;
    let invite = flow.invite.clone();
    // The code is checked, and counted, in the write.
    let carried = if invite.is_some() {
        Invite::Usable
    } else {
        Invite::None
    };
    let status = may_register(&gate, way(provider), carried)?;
    let fields = &app.config.auth.fields;
    let mut username = None;
    if fields.username != FieldMode::Off {
        if let Some(candidate) = ext
            .username
            .as_deref()
            .and_then(|u| validate::username(u).ok())
        {
            if app.store.find_user(&candidate).await?.is_none() {
                username = Some(candidate);
            }
        }
    }
    let full_name = if fields.full_name != FieldMode::Off {
        ext.name
            .as_deref()
            .and_then(|n| validate::name(n).ok().flatten())
    } else {
        None
    };
    let now = now_secs();
    let log_in = status == UserStatus::Active;
    let user = UserRecord {
        username,
        full_name,
        groups: cfg.default_groups.clone(),
        email_verified: true,
        last_login_at: log_in.then_some(now),
        ..UserRecord::new(&new_user_id()?, &email, Role::User, status, now)
    };
    let (token, mut session) = new_session(
        app,
        req,
        &user.id,
        flow.remember,
        now,
        vec![format!("provider:{}", flow.provider)],
    )?;
    // A new account has no factor: enrolling one first where the policy asks.
    let stage = stage_after_first_factor(
        app.config.auth.second_factor,
        user.role,
        Enrolled {
            factors: &Default::default(),
            passkeys: 0,
        },
    );
    session.record.stage = stage;
    let mut account = NewAccount {
        identity: Some(identity_record(ext, &user.id)),
        user,
        invite,
        session: log_in.then_some(session),
    };
    let bad_invite = if gate.registration == Registration::Invite {
        ApiError::InviteRequired
    } else {
        ApiError::InvalidToken
    };
    let mut created = app.store.create_user(account.clone()).await;
    if matches!(created, Err(WriteError::UsernameTaken)) {
        // Taken (or retired) since we looked: create without one.
        account.user.username = None;
        created = app.store.create_user(account).await;
    }
    let user = match created {
        Ok(u) => u,
        Err(WriteError::IdentityTaken) => {
            // The same person's first sign-in finished in another tab: sign in to that account.
            let (_, user) = app
                .store
                .find_identity(&cfg.name, &ext.subject)
                .await?
                .ok_or_else(|| ApiError::Conflict("please try again".into()))?;
            return sign_in(app, req, provider, ext, user, flow).await;
        }
        Err(WriteError::InviteInvalid) => return Err(bad_invite),
        Err(e) => return Err(identity_error(e)),
    };
    audit_account_created(app, req, &user, Some(&cfg.name));
    if !log_in {
        return Err(ApiError::AccountPending);
    }
    audit_login(app, req, &user.id, Some(format!("provider={}", cfg.name)));
    signed_in(app, flow, &token.token, stage).await
}
