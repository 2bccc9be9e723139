//! Creating accounts: setup (the owner) and registration, and the profile fields both read.

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;

use super::body::{form_or_json_body, Body};
use super::common::{
    audit_account_created, new_session, new_user_id, refused, with_session_cookie,
};
use super::response::ApiResponse;
use super::{validate, views, ApiRequest, CREATED};
use crate::app::{now_secs, App};
use crate::auth::signin::{may_register, Invite, Way};
use crate::config::{FieldMode, ProfileFields};
use crate::error::ApiError;
use crate::store::{NewAccount, ProfileChange, Role, UserRecord, UserStatus};

/// Read the profile fields. `creating`: absent required fields are errors and disabled fields
/// are ignored; otherwise (PATCH) a disabled field is an error and absent means unchanged.
pub(crate) fn read_profile(
    body: &mut Body,
    fields: &ProfileFields,
    creating: bool,
) -> ProfileChange {
    let mut p = ProfileChange::default();
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

/// `GET /setup/exists`.
pub async fn setup_exists(
    app: Arc<App>,
    _req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let exists = app.store.owner_exists().await?;
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "ok",
        json!({"exists": exists}),
    ))
}

/// A validated new account: the user and whether it signs in at once.
struct Application {
    user: UserRecord,
    log_in: bool,
}

/// Read and validate a setup or registration body, hash the password, and build the user.
async fn application(
    app: &App,
    req: &ApiRequest,
    role: Role,
    status: UserStatus,
    log_in: bool,
) -> Result<Application, ApiError> {
    let mut body = form_or_json_body(req)?;
    let (email, password) = read_credentials(&mut body, app);
    let profile = read_profile(&mut body, &app.config.auth.fields, true);
    body.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::invalid("email and password are required"));
    };
    let hash = app.hasher.hash(password).await?;
    let now = now_secs();
    let user = UserRecord {
        username: profile.username.flatten(),
        full_name: profile.full_name.flatten(),
        first_name: profile.first_name.flatten(),
        last_name: profile.last_name.flatten(),
        password_hash: Some(hash),
        last_login_at: log_in.then_some(now),
        ..UserRecord::new(&new_user_id()?, &email, role, status, now)
    };
    Ok(Application { user, log_in })
}

/// How the account is stored: as the first owner, or as a user with an invite's use.
enum Creation {
    Owner,
    User { invite: Option<String> },
}

/// Store a new account and answer 201, signed in when it may be.
async fn store_account(
    app: &Arc<App>,
    req: &ApiRequest,
    account: Application,
    creation: Creation,
    message: &str,
) -> Result<ApiResponse, ApiError> {
    let Application { user, log_in } = account;
    let now = user.created_at;
    let session = if log_in {
        Some(new_session(
            app,
            req,
            &user.id,
            false,
            now,
            vec!["pwd".into()],
        )?)
    } else {
        None
    };
    let first = session.as_ref().map(|(_, s)| s.clone());
    let user = match creation {
        Creation::Owner => app.store.create_owner(user, first).await,
        Creation::User { invite } => {
            app.store
                .create_user(NewAccount {
                    user,
                    invite,
                    identity: None,
                    session: first,
                })
                .await
        }
    }
    .map_err(refused)?;
    audit_account_created(app, req, &user, None);
    if app.config.auth.require_email_verification
        && !user.email_verified
        && user.role != Role::Owner
    {
        super::recovery::send_verification(app, &user, req.client_ip).await;
    }
    let resp = ApiResponse::ok(CREATED, message, json!({"user": views::user(&user)}));
    Ok(match session {
        Some((token, _)) => with_session_cookie(resp, app, &token.token, false),
        None => resp,
    })
}

/// `POST /setup`: create the owner while none exists.
pub async fn setup(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    if app.store.owner_exists().await? {
        return Err(ApiError::AlreadySetup);
    }
    check_setup_code(&app, &req).await?;
    let account = application(&app, &req, Role::Owner, UserStatus::Active, true).await?;
    let resp = store_account(&app, &req, account, Creation::Owner, "setup complete").await?;
    crate::auth::setup_code::remove(&app.config);
    Ok(resp)
}

/// Setup from a loopback client needs nothing more; from anywhere else the body must carry
/// the setup code (`setupCode`). Wrong codes count towards the client's failure limit.
async fn check_setup_code(app: &App, req: &ApiRequest) -> Result<(), ApiError> {
    if req.client_ip.is_loopback() {
        return Ok(());
    }
    let now = now_secs();
    super::signin::client_within_limit(app, req, now).await?;
    let given = form_or_json_body(req)?
        .text(&["setupCode", "setup_code"])
        .unwrap_or_default();
    let expected = crate::auth::setup_code::ensure(&app.config).map_err(ApiError::Internal)?;
    if crate::auth::setup_code::matches(&expected, &given) {
        return Ok(());
    }
    if !given.is_empty() {
        app.client_limit
            .record_failure(app.store.counters(), req.client_ip, now)
            .await?;
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
    let gate = app.gate().await?;
    let code = super::browser::query_param(&req, "invite").filter(|c| !c.is_empty());
    let invite = match &code {
        None => Invite::None,
        // Checked again, and counted, in the write; this spares the hash.
        Some(c) => match app.store.get_invite(c).await? {
            Some(i) if i.usable(now_secs()) => Invite::Usable,
            _ => Invite::Unusable,
        },
    };
    let status = may_register(&gate, Way::Password, invite)?;
    let verify = gate.require_email_verification;
    let log_in = status == UserStatus::Active && !verify;
    let account = application(&app, &req, Role::User, status, log_in).await?;
    let message = match (status, verify) {
        (UserStatus::Pending, _) => "registered; an administrator must approve the account",
        (_, true) => "registered; confirm your email address with the link we sent",
        _ => "registered",
    };
    let invite_mode = gate.registration == crate::config::Registration::Invite;
    store_account(
        &app,
        &req,
        account,
        Creation::User { invite: code },
        message,
    )
    .await
    .map_err(|e| match e {
        // Used up meanwhile: the same answer as an unusable code.
        ApiError::InvalidToken if invite_mode => ApiError::InviteRequired,
        other => other,
    })
}
