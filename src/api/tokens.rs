//! API tokens over the API: a signed-in person's own (`/tokens`), and service accounts with
//! theirs, which administrators manage (`/admin/service-accounts`). A token is shown once, in
//! the answer that creates it; lists never hold the secret.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use super::body::json_body;
use super::common::{new_user_id, refused, require_admin, require_session};
use super::response::ApiResponse;
use super::{validate, views, ApiRequest};
use crate::app::{now_secs, App};
use crate::auth::api_token::{self, NewApiToken, MAX_PER_USER};
use crate::auth::session::Identity;
use crate::error::ApiError;
use crate::store::{ApiTokenRecord, NewAccount, Role, Store, UserRecord, UserStatus, WriteError};

/// Service accounts get an address no mail can reach (RFC 2606 reserves `.invalid`).
pub const SERVICE_EMAIL_DOMAIN: &str = "service.invalid";
/// The shortest lifetime a token may be given (a short one suits a one-off job).
const MIN_LIFETIME_SECS: i64 = 1;

/// What a new token is to be: checked against its owner as they are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub name: String,
    /// Seconds from now; `None`: never expires.
    pub lifetime_secs: Option<i64>,
    /// Narrower role and groups; `None`: all of the owner's.
    pub groups: Option<Vec<String>>,
}

/// Why a token cannot be made as asked: the field and the problem.
pub type SpecProblem = (&'static str, String);

impl TokenSpec {
    /// Check a request against `owner`: a name of 1–64 characters, a lifetime of at least a
    /// second, and groups that are among the owner's role and groups (a token narrows, never
    /// widens).
    pub fn check(
        owner: &UserRecord,
        name: &str,
        lifetime: Option<std::time::Duration>,
        groups: Option<Vec<String>>,
    ) -> Result<TokenSpec, SpecProblem> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err((
                "name",
                "must be 1 to 64 characters without control characters".into(),
            ));
        }
        let lifetime_secs = match lifetime {
            None => None,
            Some(d) => {
                let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                if secs < MIN_LIFETIME_SECS {
                    return Err(("expiresIn", "must be at least a second".into()));
                }
                Some(secs)
            }
        };
        if let Some(groups) = &groups {
            let has = Identity::from_user(owner).groups;
            if let Some(g) = groups.iter().find(|g| !has.contains(g)) {
                return Err((
                    "groups",
                    format!(
                        "{g:?} is not among the account's role and groups ({})",
                        has.join(", ")
                    ),
                ));
            }
        }
        Ok(TokenSpec {
            name: name.to_string(),
            lifetime_secs,
            groups,
        })
    }
}

/// Make and store a token for `owner`. Returns the token (to show once) and its record.
pub async fn issue(
    store: &Store,
    owner: &UserRecord,
    spec: TokenSpec,
    now: i64,
) -> Result<(NewApiToken, ApiTokenRecord), WriteError> {
    let minted = api_token::mint().map_err(crate::store::StoreError::Unavailable)?;
    let record = ApiTokenRecord {
        id: api_token::public_id(&minted.key),
        user_id: owner.id.clone(),
        name: spec.name,
        prefix: minted.prefix.clone(),
        groups: spec.groups,
        created_at: now,
        expires_at: spec.lifetime_secs.map(|s| now.saturating_add(s)),
        last_used_at: None,
    };
    store
        .create_api_token(minted.key, record.clone(), MAX_PER_USER)
        .await?;
    Ok((minted, record))
}

/// A token as lists show it (never the secret).
pub fn token_view(t: &ApiTokenRecord, now: i64) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "prefix": t.prefix,
        "groups": t.groups,
        "createdAt": views::rfc3339(t.created_at),
        "expiresAt": t.expires_at.map(views::rfc3339),
        "lastUsedAt": t.last_used_at.map(views::rfc3339),
        "expired": t.expires_at.is_some_and(|e| e <= now),
    })
}

/// Read `{name, expiresIn?, groups?}` and check it against `owner`.
fn spec_from(req: &ApiRequest, owner: &UserRecord) -> Result<TokenSpec, ApiError> {
    let mut body = json_body(req)?;
    let name = body.required_text(&["name"]);
    let lifetime = match body.text(&["expiresIn", "expires_in"]) {
        None => Ok(None),
        Some(t) if t.trim().is_empty() || t.trim() == "never" => Ok(None),
        Some(t) => crate::config::parse_duration(&t).map(Some),
    };
    if lifetime.is_err() {
        body.problem(
            "expiresIn",
            "must be a duration such as \"90d\", or left out",
        );
    }
    let groups = match body.value(&["groups"]) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(|s| s.trim().to_string()))
            .collect::<Option<Vec<String>>>()
            .map(Some)
            .ok_or("must be an array of group names"),
        Some(_) => Err("must be an array of group names"),
    };
    if let Err(p) = &groups {
        body.problem("groups", *p);
    }
    body.finish()?;
    let (Some(name), Ok(lifetime), Ok(groups)) = (name, lifetime, groups) else {
        return Err(ApiError::invalid("invalid token request"));
    };
    TokenSpec::check(owner, &name, lifetime, groups).map_err(|(f, p)| ApiError::field(f, p))
}

/// Create a token for `owner` from the request and answer it, shown this once. With
/// `session` (a person making their own), the session must outlive the write: a password
/// reset or sign-out everywhere that committed just before it ended the session but could not
/// see this token, so the token is deleted again, never shown.
async fn create_for(
    app: &App,
    req: &ApiRequest,
    owner: &UserRecord,
    actor: &str,
    session: Option<&crate::store::SessionKey>,
) -> Result<ApiResponse, ApiError> {
    if owner.status != UserStatus::Active {
        return Err(ApiError::Forbidden(
            "the account is not active; enable it first".into(),
        ));
    }
    let spec = spec_from(req, owner)?;
    let now = now_secs();
    let (minted, record) = issue(&app.store, owner, spec, now).await.map_err(refused)?;
    if let Some(key) = session {
        if app.store.get_session(key).await?.is_none() {
            app.store.delete_api_token(&owner.id, &record.id).await?;
            return Err(ApiError::Unauthorized);
        }
    }
    app.audit(
        "token_create",
        Some(req.client_ip),
        Some(actor),
        Some(&owner.id),
        Some(format!("token={} name={}", record.id, record.name)),
    );
    let mut data = token_view(&record, now);
    data["token"] = json!(minted.token);
    Ok(ApiResponse::ok(
        StatusCode::CREATED,
        "token created: copy it now, it is not shown again",
        data,
    ))
}

async fn list_for(app: &App, owner: &UserRecord) -> Result<ApiResponse, ApiError> {
    let now = now_secs();
    let tokens = app.store.user_api_tokens(&owner.id).await?;
    let data: Vec<Value> = tokens.iter().map(|t| token_view(t, now)).collect();
    Ok(ApiResponse::ok(StatusCode::OK, "ok", Value::Array(data)))
}

async fn revoke_for(
    app: &App,
    req: &ApiRequest,
    owner: &UserRecord,
    id: &str,
    actor: &str,
) -> Result<ApiResponse, ApiError> {
    if !app.store.delete_api_token(&owner.id, id).await? {
        return Err(ApiError::NotFound);
    }
    app.audit(
        "token_revoke",
        Some(req.client_ip),
        Some(actor),
        Some(&owner.id),
        Some(format!("token={id}")),
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "token revoked",
        Value::Null,
    ))
}

/// `POST /tokens` `{name, expiresIn?, groups?}`.
pub async fn create(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let me = require_session(&app, &req).await?;
    create_for(&app, &req, &me.user, &me.user.id, Some(&me.key)).await
}

/// `GET /tokens`.
pub async fn list(app: Arc<App>, req: ApiRequest, _: Vec<String>) -> Result<ApiResponse, ApiError> {
    let me = require_session(&app, &req).await?;
    list_for(&app, &me.user).await
}

/// `DELETE /tokens/{id}`.
pub async fn revoke(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let me = require_session(&app, &req).await?;
    let id = params.first().map(String::as_str).unwrap_or_default();
    revoke_for(&app, &req, &me.user, id, &me.user.id).await
}

/// A new service account named `name` (a username) with `groups`: no password, active.
pub fn service_account(
    id: &str,
    name: &str,
    groups: Vec<String>,
    now: i64,
) -> Result<UserRecord, String> {
    let username = validate::username(name).map_err(str::to_string)?;
    Ok(UserRecord {
        username: Some(username.clone()),
        groups,
        email_verified: true,
        ..UserRecord::new(
            id,
            &format!("{username}@{SERVICE_EMAIL_DOMAIN}"),
            Role::Service,
            UserStatus::Active,
            now,
        )
    })
}

fn service_view(u: &UserRecord, tokens: usize) -> Value {
    let mut v = views::user(u);
    v["tokens"] = json!(tokens);
    v
}

/// `POST /admin/service-accounts` `{name, groups?}`.
pub async fn create_service_account(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let actor = require_admin(&app, &req).await?;
    let mut body = json_body(&req)?;
    let name = body.required_text(&["name", "username"]);
    let groups = super::admin::groups_field(&mut body);
    body.finish()?;
    let (Some(name), Some(groups)) = (name, groups) else {
        return Err(ApiError::invalid("invalid service account"));
    };
    let now = now_secs();
    let user = service_account(&new_user_id()?, &name, groups, now)
        .map_err(|p| ApiError::field("name", p))?;
    let user = app
        .store
        .create_user(NewAccount::of(user))
        .await
        .map_err(|e| match e {
            WriteError::UsernameTaken | WriteError::EmailTaken | WriteError::EmailConfusable => {
                ApiError::Conflict("this name is taken".into())
            }
            other => refused(other),
        })?;
    app.audit(
        "service_account_create",
        Some(req.client_ip),
        Some(&actor.user.id),
        Some(&user.id),
        Some(format!("groups={}", user.groups.join(","))),
    );
    Ok(ApiResponse::ok(
        StatusCode::CREATED,
        "service account created",
        service_view(&user, 0),
    ))
}

/// The service accounts, with how many tokens each holds.
pub async fn service_accounts(app: &App) -> Result<Vec<(UserRecord, usize)>, ApiError> {
    let mut out = Vec::new();
    for u in app.store.list_users().await? {
        if u.role == Role::Service {
            let n = app.store.user_api_tokens(&u.id).await?.len();
            out.push((u, n));
        }
    }
    Ok(out)
}

/// `GET /admin/service-accounts`.
pub async fn list_service_accounts(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    require_admin(&app, &req).await?;
    let data: Vec<Value> = service_accounts(&app)
        .await?
        .iter()
        .map(|(u, n)| service_view(u, *n))
        .collect();
    Ok(ApiResponse::ok(StatusCode::OK, "ok", Value::Array(data)))
}

/// The service account `id` (404 for anyone else).
pub async fn service_account_by_id(app: &App, id: &str) -> Result<UserRecord, ApiError> {
    match app.store.get_user(id).await? {
        Some(u) if u.role == Role::Service => Ok(u),
        _ => Err(ApiError::NotFound),
    }
}

/// `POST /admin/service-accounts/{id}/tokens` `{name, expiresIn?, groups?}`.
pub async fn create_service_token(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let actor = require_admin(&app, &req).await?;
    let account = service_account_by_id(&app, params.first().map_or("", String::as_str)).await?;
    create_for(&app, &req, &account, &actor.user.id, None).await
}

/// `GET /admin/service-accounts/{id}/tokens`.
pub async fn list_service_tokens(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    require_admin(&app, &req).await?;
    let account = service_account_by_id(&app, params.first().map_or("", String::as_str)).await?;
    list_for(&app, &account).await
}

/// `DELETE /admin/service-accounts/{id}/tokens/{tokenId}`.
pub async fn revoke_service_token(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let actor = require_admin(&app, &req).await?;
    let account = service_account_by_id(&app, params.first().map_or("", String::as_str)).await?;
    let id = params.get(1).map(String::as_str).unwrap_or_default();
    revoke_for(&app, &req, &account, id, &actor.user.id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_requests_are_checked_against_their_owner() {
        let owner = UserRecord {
            groups: vec!["git".into(), "media".into()],
            ..UserRecord::new("u1", "a@example.com", Role::User, UserStatus::Active, 0)
        };
        let g = |list: &[&str]| Some(list.iter().map(|s| s.to_string()).collect());
        let day = Some(Duration::from_secs(86_400));
        let long = "x".repeat(65);
        // (name, lifetime, groups) → the field at fault, if any
        type Case<'a> = (
            &'a str,
            Option<Duration>,
            Option<Vec<String>>,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            ("backup", None, None, None),
            ("  ci  ", day, g(&["git"]), None),
            ("ci", day, g(&["user", "git", "media"]), None),
            ("ci", day, g(&[]), None),
            ("", None, None, Some("name")),
            ("a\nb", None, None, Some("name")),
            (&long, None, None, Some("name")),
            (
                "ci",
                Some(Duration::from_millis(500)),
                None,
                Some("expiresIn"),
            ),
            ("ci", None, g(&["admin"]), Some("groups")),
            ("ci", None, g(&["git", "ops"]), Some("groups")),
        ];
        for (name, lifetime, groups, fault) in cases {
            let got = TokenSpec::check(&owner, name, lifetime, groups.clone());
            assert_eq!(
                got.as_ref().err().map(|(f, _)| *f),
                fault,
                "{name:?} {groups:?}"
            );
        }
        let ok = TokenSpec::check(&owner, " ci ", day, None).expect("valid");
        assert_eq!((ok.name.as_str(), ok.lifetime_secs), ("ci", Some(86_400)));
    }

    #[test]
    fn service_accounts_have_no_password_and_an_unreachable_address() {
        let u = service_account("id1", "Backup-Job", vec!["backups".into()], 5).expect("valid");
        assert_eq!(u.role, Role::Service);
        assert_eq!(u.username.as_deref(), Some("backup-job"));
        assert_eq!(u.email, "backup-job@service.invalid");
        assert!(u.password_hash.is_none());
        assert!(service_account("id2", "x", vec![], 5).is_err());
    }
}
