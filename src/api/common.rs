//! What most handlers share: the session a request must carry, new ids and tokens, the
//! session cookie, finding an account by what someone typed, and the one mapping of refused
//! writes to answers.

use std::sync::Arc;

use http::header::SET_COOKIE;

use super::response::ApiResponse;
use super::{validate, ApiRequest};
use crate::app::{now_secs, App};
use crate::auth::authenticator::Principal;
use crate::auth::cookie;
use crate::auth::session::{self, NewToken};
use crate::error::ApiError;
use crate::store::{
    NewSession, SessionKey, SessionRecord, SessionStage, SignIn, Store, StoreError, UserRecord,
    WriteError,
};

/// Longest user agent kept with a session.
const MAX_USER_AGENT: usize = 256;

/// A new random user id (128 bits, hex).
pub fn new_user_id() -> Result<String, ApiError> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// A new session or mailed token.
pub(crate) fn mint_token() -> Result<NewToken, ApiError> {
    session::new_token().map_err(ApiError::Internal)
}

/// The session a request must carry (a half-open one, still waiting for a second factor,
/// counts as none).
pub(crate) async fn require_session(app: &App, req: &ApiRequest) -> Result<Principal, ApiError> {
    match app.auth.authenticate(&req.headers, now_secs()).await? {
        Some(p) if p.complete() => Ok(p),
        _ => Err(ApiError::Unauthorized),
    }
}

/// The session of an owner or admin.
pub(crate) async fn require_admin(app: &App, req: &ApiRequest) -> Result<Principal, ApiError> {
    let principal = require_session(app, req).await?;
    if !principal.user.role.is_admin() {
        return Err(ApiError::Forbidden("administrators only".into()));
    }
    Ok(principal)
}

/// A session record for `user_id` opened now by this request, authenticated by `amr`.
pub(crate) fn new_session_record(
    app: &App,
    req: &ApiRequest,
    user_id: &str,
    remember: bool,
    now: i64,
    amr: Vec<String>,
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
        amr,
        stage: SessionStage::Complete,
    }
}

/// A new session for `user_id` with a fresh token (never an id from the request),
/// authenticated by `amr` (`pwd`, `provider:{name}`, ...).
pub(crate) fn new_session(
    app: &App,
    req: &ApiRequest,
    user_id: &str,
    remember: bool,
    now: i64,
    amr: Vec<String>,
) -> Result<(NewToken, NewSession), ApiError> {
    let token = mint_token()?;
    let session = NewSession {
        key: token.key,
        record: new_session_record(app, req, user_id, remember, now, amr),
        idle_secs: app.idle_secs(),
    };
    Ok((token, session))
}

/// A sign-in with the session it opens, replacing the sessions the browser presented.
pub(crate) fn sign_in_replacing(app: &App, req: &ApiRequest, session: NewSession) -> SignIn {
    SignIn {
        session,
        replaces: app.auth.presented_keys(&req.headers),
        identity: None,
    }
}

/// `resp` with the session cookie set.
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

/// `resp` with the session cookie cleared.
pub(crate) fn with_cleared_cookie(resp: ApiResponse, app: &App) -> ApiResponse {
    resp.with_header(SET_COOKIE, &cookie::clear_cookie(&app.config.session))
}

/// The answer to a refused write.
pub(crate) fn refused(e: WriteError) -> ApiError {
    match e {
        WriteError::EmailTaken => {
            ApiError::Conflict("this email address is already registered".into())
        }
        WriteError::EmailConfusable => ApiError::Conflict(
            "this email address looks too much like one that is already registered".into(),
        ),
        WriteError::UsernameTaken => ApiError::Conflict("this username is taken".into()),
        WriteError::AlreadySetup => ApiError::AlreadySetup,
        WriteError::NotFound => ApiError::NotFound,
        WriteError::LastOwner => {
            ApiError::Forbidden("the last owner cannot be demoted, disabled or deleted".into())
        }
        WriteError::InviteInvalid => ApiError::InvalidToken,
        WriteError::IdentityTaken => {
            ApiError::Conflict("this provider account is already linked to another account".into())
        }
        WriteError::TooMany => ApiError::Conflict(format!(
            "an account holds at most {} API tokens; revoke one first",
            crate::auth::api_token::MAX_PER_USER
        )),
        WriteError::Store(s) => s.into(),
    }
}

/// The account an identifier (an email or a username, as typed) names: looked up in its
/// canonical form; an address also as trimmed and lower-cased only, the form in which
/// addresses were stored before they were normalised.
pub async fn find_account(store: &Store, raw: &str) -> Result<Option<UserRecord>, StoreError> {
    let canonical = validate::identifier(raw);
    let legacy = raw.trim().to_lowercase();
    let legacy = (legacy != canonical && legacy.contains('@')).then_some(legacy);
    for key in std::iter::once(canonical).chain(legacy) {
        if key.is_empty() || key.len() > 254 {
            continue;
        }
        if let Some(user) = store.find_user(&key).await? {
            return Ok(Some(user));
        }
    }
    Ok(None)
}

/// [`find_account`] for what must be an email address (a provider's, a verification
/// request's): anything else finds nothing, so a username never stands in for an address.
pub(crate) async fn find_account_by_email(
    store: &Store,
    raw: &str,
) -> Result<Option<UserRecord>, StoreError> {
    if !validate::identifier(raw).contains('@') {
        return Ok(None);
    }
    find_account(store, raw).await
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

/// The audit event of a sign-in.
pub(crate) fn audit_login(app: &Arc<App>, req: &ApiRequest, user_id: &str, detail: Option<String>) {
    app.audit("login", Some(req.client_ip), Some(user_id), None, detail);
}

/// The user's sessions that are live now (expired ones wait for the sweep), as listed to them.
pub async fn live_sessions(
    app: &App,
    user: &UserRecord,
) -> Result<Vec<(SessionKey, SessionRecord)>, StoreError> {
    let now = now_secs();
    let idle = app.idle_secs();
    let mut sessions = app.store.user_sessions(&user.id).await?;
    sessions.retain(|(_, s)| session::is_live(s, user, idle, now));
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewAccount, Role, UserStatus};

    async fn stored(store: &Store, id: &str, email: &str, username: Option<&str>) {
        let user = UserRecord {
            username: username.map(str::to_string),
            ..UserRecord::new(id, email, Role::User, UserStatus::Active, 1)
        };
        store
            .create_user(NewAccount::of(user))
            .await
            .expect("created");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accounts_are_found_by_any_spelling_of_their_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_redb(&dir.path().join("db.redb"), 1 << 20).expect("store");
        stored(&store, "1", "owner@xn--bcher-kva.de", Some("owner")).await;
        // Stored before addresses were normalised: the domain as typed.
        stored(&store, "2", "old@m\u{fc}nchen.de", None).await;
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
            let found = find_account(&store, raw)
                .await
                .expect("read")
                .map(|u| u.id)
                .unwrap_or_default();
            assert_eq!(found, id, "{raw:?}");
        }
        let by_email = |raw: &'static str| {
            let store = store.clone();
            async move {
                find_account_by_email(&store, raw)
                    .await
                    .expect("read")
                    .is_some()
            }
        };
        assert!(by_email("owner@bücher.de").await);
        assert!(!by_email("owner").await, "a username is not an address");
    }
}
