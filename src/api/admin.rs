//! Administration (role owner or admin): users, invites, sessions, the audit log, and the
//! expiry sweep (`/validate`).

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};
use subtle::ConstantTimeEq as _;

use super::body::json_body;
use super::browser::query_param;
use super::common::{refused, require_admin};
use super::response::ApiResponse;
use super::{views, ApiRequest, CREATED};
use crate::app::{now_secs, App};
use crate::auth::authenticator::{bearer_token, Principal};
use crate::error::ApiError;
use crate::store::{AdminChange, IdentityRecord, InviteRecord, Role, UserRecord, UserStatus};

/// Audit entries per page at most.
const AUDIT_PAGE_MAX: usize = 500;

fn parse_role(word: &str) -> Option<Role> {
    match word {
        "owner" => Some(Role::Owner),
        "admin" => Some(Role::Admin),
        "user" => Some(Role::User),
        _ => None,
    }
}

fn parse_status(word: &str) -> Option<UserStatus> {
    match word {
        "active" => Some(UserStatus::Active),
        "pending" => Some(UserStatus::Pending),
        "disabled" => Some(UserStatus::Disabled),
        _ => None,
    }
}

/// A list of group names (see [`crate::store::group_name`]), duplicates dropped.
pub fn parse_groups(value: &Value) -> Result<Vec<String>, &'static str> {
    let Some(items) = value.as_array() else {
        return Err("must be an array of group names");
    };
    let mut groups: Vec<String> = Vec::new();
    for item in items {
        let g = crate::store::group_name(item.as_str().ok_or("must be an array of group names")?)?;
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    Ok(groups)
}

/// The optional `groups` of a body (none: empty), its problem noted on the body.
pub(crate) fn groups_field(body: &mut super::Body) -> Option<Vec<String>> {
    let groups = match body.value(&["groups"]) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => parse_groups(&v),
    };
    groups.map_err(|p| body.problem("groups", p)).ok()
}

fn admin_user_view(u: &UserRecord) -> Value {
    let mut v = views::user(u);
    v["expiresAt"] = u.expires_at.map(views::rfc3339).unwrap_or(Value::Null);
    v["hasPassword"] = json!(u.password_hash.is_some());
    v
}

/// A user as admins see them, with their linked provider identities.
fn admin_user_with_identities(u: &UserRecord, identities: &[&IdentityRecord]) -> Value {
    let mut v = admin_user_view(u);
    v["identities"] = Value::Array(identities.iter().map(|i| views::identity(i)).collect());
    v
}

/// Whether an administrator with `actor` role may act on an account (or invite) with
/// `target_role`: only an owner may act on an owner, or make one. (Who is an administrator
/// at all is `require_admin`'s decision.)
fn may_touch(actor: Role, target_role: Role) -> Result<(), ApiError> {
    if target_role == Role::Owner && actor != Role::Owner {
        return Err(ApiError::Forbidden(
            "only an owner may change an owner".into(),
        ));
    }
    Ok(())
}

/// The accounts an administrator's search finds: by status word (empty for all) and a text
/// in the email, username or names.
pub(crate) async fn find_users(
    app: &App,
    status: Option<&str>,
    q: Option<&str>,
) -> Result<Vec<UserRecord>, ApiError> {
    let status = match status.map(str::trim).filter(|s| !s.is_empty()) {
        Some(word) => Some(
            parse_status(word)
                .ok_or_else(|| ApiError::field("status", "must be active, pending or disabled"))?,
        ),
        None => None,
    };
    let q = q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
    let mut users = app.store.list_users().await?;
    users.retain(|u| {
        status.is_none_or(|s| u.status == s)
            && q.as_deref().is_none_or(|q| {
                [
                    Some(&u.email),
                    u.username.as_ref(),
                    u.full_name.as_ref(),
                    u.first_name.as_ref(),
                    u.last_name.as_ref(),
                ]
                .into_iter()
                .flatten()
                .any(|f| f.to_lowercase().contains(q))
            })
    });
    Ok(users)
}

/// The account `id` if `actor` may act on it (404 when there is none).
async fn touchable(app: &App, actor: &Principal, id: &str) -> Result<UserRecord, ApiError> {
    let target = app.store.get_user(id).await?.ok_or(ApiError::NotFound)?;
    may_touch(actor.user.role, target.role)?;
    Ok(target)
}

/// `GET /admin/users[?status=&q=]`.
pub async fn list_users(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    require_admin(&app, &req).await?;
    let found = find_users(
        &app,
        query_param(&req, "status").as_deref(),
        query_param(&req, "q").as_deref(),
    )
    .await?;
    let identities = app.store.all_identities().await?;
    let users: Vec<Value> = found
        .iter()
        .map(|u| {
            let linked: Vec<&IdentityRecord> =
                identities.iter().filter(|i| i.user_id == u.id).collect();
            admin_user_with_identities(u, &linked)
        })
        .collect();
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "ok",
        json!({"users": users}),
    ))
}

/// `GET /admin/users/{id}`.
pub async fn get_user(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    require_admin(&app, &req).await?;
    let id = params.first().cloned().unwrap_or_default();
    let user = app.store.get_user(&id).await?.ok_or(ApiError::NotFound)?;
    let sessions = app.store.user_sessions(&id).await?.len();
    let identities = app.store.user_identities(&id).await?;
    let linked: Vec<&IdentityRecord> = identities.iter().collect();
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "ok",
        json!({"user": admin_user_with_identities(&user, &linked), "sessions": sessions}),
    ))
}

/// `DELETE /admin/users/{id}/identities/{provider}`: remove a user's link to a provider.
pub async fn unlink_identity(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let actor = require_admin(&app, &req).await?;
    let (id, provider) = match params.as_slice() {
        [id, provider] => (id.clone(), provider.clone()),
        _ => return Err(ApiError::NotFound),
    };
    touchable(&app, &actor, &id).await?;
    let outcome = app
        .store
        .unlink_identity(&id, &provider, crate::store::UnlinkRule::Always)
        .await?;
    if outcome != crate::store::Unlink::Done {
        return Err(ApiError::NotFound);
    }
    app.audit(
        "identity_unlinked",
        Some(req.client_ip),
        Some(&actor.user.id),
        Some(&id),
        Some(format!("provider={provider}")),
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "identity unlinked",
        Value::Null,
    ))
}

/// `PATCH /admin/users/{id}` `{role?, groups?, status?, expiresAt?, emailVerified?}`.
pub async fn patch_user(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let actor = require_admin(&app, &req).await?;
    let id = params.first().cloned().unwrap_or_default();
    let mut body = json_body(&req)?;
    let role = body.text(&["role"]).map(|w| parse_role(&w));
    let status = body.text(&["status"]).map(|w| parse_status(&w));
    let verified = body.flag(&["emailVerified", "email_verified"]);
    let groups = body.value(&["groups"]).map(|v| parse_groups(&v));
    let expires = body.value(&["expiresAt", "expires_at"]).map(|v| match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                .map(|t| Some(t.unix_timestamp()))
                .map_err(|_| "must be an RFC 3339 time or null")
        }
        _ => Err("must be an RFC 3339 time or null"),
    });
    if matches!(role, Some(None)) {
        body.problem("role", "must be owner, admin or user");
    }
    if matches!(status, Some(None)) {
        body.problem("status", "must be active, pending or disabled");
    }
    if let Some(Err(p)) = &groups {
        body.problem("groups", *p);
    }
    if let Some(Err(p)) = &expires {
        body.problem("expiresAt", *p);
    }
    body.finish()?;
    let target = touchable(&app, &actor, &id).await?;
    if let Some(Some(r)) = role {
        may_touch(actor.user.role, r)?;
        target
            .role
            .may_become(r)
            .map_err(|p| ApiError::field("role", p))?;
    }
    let change = AdminChange {
        role: role.flatten(),
        status: status.flatten(),
        groups: groups.and_then(Result::ok),
        expires_at: expires.and_then(Result::ok),
        email_verified: verified,
    };
    let (user, revoked) = app
        .store
        .admin_update(&id, change, now_secs())
        .await
        .map_err(refused)?;
    let detail = format!(
        "role={} status={} groups={} revoked={revoked}",
        user.role.as_str(),
        user.status.as_str(),
        user.groups.join(",")
    );
    app.audit(
        "admin_user_update",
        Some(req.client_ip),
        Some(&actor.user.id),
        Some(&user.id),
        Some(detail),
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "user updated",
        json!({"user": admin_user_view(&user), "revokedSessions": revoked}),
    ))
}

/// `DELETE /admin/users/{id}`.
pub async fn delete_user(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let actor = require_admin(&app, &req).await?;
    let id = params.first().cloned().unwrap_or_default();
    let target = touchable(&app, &actor, &id).await?;
    app.store.delete_user(&id).await.map_err(refused)?;
    app.audit(
        "admin_user_delete",
        Some(req.client_ip),
        Some(&actor.user.id),
        Some(&id),
        Some(target.email),
    );
    Ok(ApiResponse::ok(StatusCode::OK, "user deleted", Value::Null))
}

/// `DELETE /admin/users/{id}/second-factor`: remove every second factor of the account and
/// end its sessions (someone who lost their phone and their codes). Only an owner for an
/// owner.
pub async fn reset_second_factor(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let actor = require_admin(&app, &req).await?;
    let id = params.first().cloned().unwrap_or_default();
    touchable(&app, &actor, &id).await?;
    let (passkeys, n) = app.store.reset_second_factors(&id).await?;
    app.audit(
        "second_factor_reset",
        Some(req.client_ip),
        Some(&actor.user.id),
        Some(&id),
        Some(format!("passkeys={passkeys} revoked={n}")),
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "second factors removed",
        json!({"revokedSessions": n}),
    ))
}

/// `DELETE /admin/users/{id}/sessions`.
pub async fn revoke_user_sessions(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let actor = require_admin(&app, &req).await?;
    let id = params.first().cloned().unwrap_or_default();
    touchable(&app, &actor, &id).await?;
    let n = app.store.revoke_user_sessions(&id, None).await?;
    app.audit(
        "admin_sessions_revoke",
        Some(req.client_ip),
        Some(&actor.user.id),
        Some(&id),
        Some(format!("revoked={n}")),
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "sessions revoked",
        json!({"revokedSessions": n}),
    ))
}

fn invite_view(i: &InviteRecord) -> Value {
    json!({
        "id": i.id,
        "role": i.role.as_str(),
        "groups": i.groups,
        "uses": i.max_uses,
        "used": i.used,
        "expiresAt": i.expires_at.map(views::rfc3339).unwrap_or(Value::Null),
        "createdAt": views::rfc3339(i.created_at),
        "createdBy": i.created_by,
    })
}

/// A new random invite code (128 bits, base64url).
pub fn new_invite_code() -> Result<String, ApiError> {
    use base64::Engine as _;
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// `POST /admin/invites` `{role?, groups?, uses?, expiresIn?}`.
pub async fn create_invite(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let actor = require_admin(&app, &req).await?;
    let mut body = json_body(&req)?;
    let role = match body.text(&["role"]) {
        None => Some(Role::User),
        Some(w) => parse_role(&w),
    };
    if role.is_none() {
        body.problem("role", "must be owner, admin or user");
    }
    let groups = groups_field(&mut body);
    let uses = match body.value(&["uses", "maxUses"]) {
        None | Some(Value::Null) => Some(1),
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=100_000).contains(n))
            .map(|n| n as u32),
    };
    if uses.is_none() {
        body.problem("uses", "must be a whole number from 1 to 100000");
    }
    let expires_in = body
        .text(&["expiresIn", "expires_in"])
        .map(|t| crate::config::parse_duration(&t));
    if let Some(Err(_)) = &expires_in {
        body.problem("expiresIn", "must be a duration such as \"7d\"");
    }
    body.finish()?;
    let (Some(role), Some(groups), Some(uses)) = (role, groups, uses) else {
        return Err(ApiError::invalid("invalid invite"));
    };
    may_touch(actor.user.role, role)?;
    let now = now_secs();
    let code = new_invite_code()?;
    let invite = InviteRecord {
        id: crate::store::invite_id(&crate::store::invite_key(&code)),
        role,
        groups,
        max_uses: uses,
        used: 0,
        expires_at: match expires_in {
            Some(Ok(d)) => Some(now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
            _ => None,
        },
        created_by: Some(actor.user.id.clone()),
        created_at: now,
    };
    app.store
        .create_invite(code.clone(), invite.clone())
        .await?;
    app.audit(
        "invite_create",
        Some(req.client_ip),
        Some(&actor.user.id),
        None,
        Some(format!("role={} uses={uses}", role.as_str())),
    );
    // The code is shown this once; only its hash is stored.
    let mut data = invite_view(&invite);
    data["code"] = json!(code);
    data["link"] = json!(format!(
        "{}{}/register?invite={code}",
        app.config.server.public_url.origin, app.config.auth.prefix
    ));
    Ok(ApiResponse::ok(CREATED, "invite created", data))
}

/// `GET /admin/invites`.
pub async fn list_invites(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let actor = require_admin(&app, &req).await?;
    let mut invites = app.store.list_invites().await?;
    invites.sort_by_key(|i| std::cmp::Reverse(i.created_at));
    // Only owners see invites that make owners.
    let list: Vec<Value> = invites
        .iter()
        .filter(|i| may_touch(actor.user.role, i.role).is_ok())
        .map(invite_view)
        .collect();
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "ok",
        json!({"invites": list}),
    ))
}

/// `DELETE /admin/invites/{id}` (the code itself is accepted too). An owner-role invite is,
/// for an admin, as if it did not exist.
pub async fn delete_invite(
    app: Arc<App>,
    req: ApiRequest,
    params: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let actor = require_admin(&app, &req).await?;
    let given = params.first().cloned().unwrap_or_default();
    let by_code = crate::store::invite_id(&crate::store::invite_key(&given));
    let owner_role_too = actor.user.role == Role::Owner;
    let deleted = app.store.delete_invite(&given, owner_role_too).await?
        || app.store.delete_invite(&by_code, owner_role_too).await?;
    if !deleted {
        return Err(ApiError::NotFound);
    }
    app.audit(
        "invite_delete",
        Some(req.client_ip),
        Some(&actor.user.id),
        None,
        None,
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "invite deleted",
        Value::Null,
    ))
}

/// `GET /admin/audit[?before=ID&limit=N]`: newest first.
pub async fn audit_log(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    require_admin(&app, &req).await?;
    let before = match query_param(&req, "before") {
        Some(b) => Some(
            b.parse::<u64>()
                .map_err(|_| ApiError::field("before", "must be an entry id"))?,
        ),
        None => None,
    };
    let limit = match query_param(&req, "limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=AUDIT_PAGE_MAX).contains(n))
            .ok_or_else(|| ApiError::field("limit", "must be from 1 to 500"))?,
        None => 100,
    };
    let entries = app.store.list_audit(before, limit).await?;
    let next = if entries.len() == limit {
        entries.last().map(|(id, _)| *id)
    } else {
        None
    };
    let list: Vec<Value> = entries
        .iter()
        .map(|(id, e)| {
            json!({"id": id, "at": views::rfc3339(e.at), "event": e.event, "actor": e.actor,
                   "target": e.target, "ip": e.ip, "detail": e.detail})
        })
        .collect();
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "ok",
        json!({"entries": list, "next": next}),
    ))
}

/// `POST|GET /validate`: disable accounts past their expiry, drop their sessions, delete expired
/// sessions. For an admin session, or a cron job with `security.validate_token` as bearer token.
pub async fn validate(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let by_token = match (
        &app.config.security.validate_token,
        bearer_token(&req.headers),
    ) {
        (Some(secret), Some(given)) => bool::from(secret.0.as_bytes().ct_eq(given.as_bytes())),
        _ => false,
    };
    let actor = if by_token {
        None
    } else {
        Some(require_admin(&app, &req).await?)
    };
    let now = now_secs();
    let (updated, from_accounts) = app.store.expire_accounts(now).await?;
    let mut swept = 0;
    loop {
        let n = app.store.sweep_expired_sessions(now, 5_000).await?;
        swept += n;
        if n < 5_000 {
            break;
        }
    }
    for id in &updated {
        app.audit(
            "account_expired",
            Some(req.client_ip),
            actor.as_ref().map(|a| a.user.id.as_str()),
            Some(id),
            None,
        );
    }
    let data = json!({"removedSessions": from_accounts + swept, "updatedIds": updated});
    Ok(ApiResponse::ok(StatusCode::OK, "validated", data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owners_touch_owners() {
        use Role::{Admin, Owner, User};
        // (actor, target) → allowed
        let cases = [
            (Owner, Owner, true),
            (Owner, Admin, true),
            (Owner, User, true),
            (Admin, Owner, false),
            (Admin, Admin, true),
            (Admin, User, true),
            (User, Owner, false),
        ];
        for (actor, target, allowed) in cases {
            let got = may_touch(actor, target);
            assert_eq!(got.is_ok(), allowed, "{actor:?} → {target:?}");
            if let Err(e) = got {
                assert_eq!(e.code(), "FORBIDDEN");
            }
        }
    }
}
