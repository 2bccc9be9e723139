//! Administration from the shell (`authgate user ...`, `invite create`, `token ...`,
//! `service-account add`, `migrate`, `migrate-store`), working on the store the config names
//! (the redb file while the server is stopped, or the PostgreSQL database). Each function
//! returns what to print, or an error message.

mod migrate;

pub use migrate::{migrate, migrate_store};

use crate::app::now_secs;
use crate::auth::password::hash_blocking;
use crate::config::{parse_duration, Config};
use crate::store::{
    AdminChange, AuditRecord, InviteRecord, NewAccount, Role, Store, UserRecord, UserStatus,
    WriteError,
};

fn open(config: &Config) -> Result<Store, String> {
    Store::open(config.storage.location()).map_err(|e| e.to_string())
}

/// `--groups a,b`: user groups under the one rule for group names (none without the flag).
fn groups_arg(groups: Option<&str>) -> Result<Vec<String>, String> {
    let Some(list) = groups else {
        return Ok(Vec::new());
    };
    let items = list
        .split(',')
        .map(|g| serde_json::json!(g.trim()))
        .collect();
    crate::api::parse_groups(&serde_json::Value::Array(items)).map_err(|p| format!("--groups: {p}"))
}

fn parse_role(word: &str) -> Result<Role, String> {
    match word {
        "owner" => Ok(Role::Owner),
        "admin" => Ok(Role::Admin),
        "user" => Ok(Role::User),
        other => Err(format!("{other:?} is not a role (owner, admin, user)")),
    }
}

async fn find(store: &Store, who: &str) -> Result<UserRecord, String> {
    if let Some(u) = store
        .get_user(who.trim())
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(u);
    }
    crate::api::find_account(store, who)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user {who:?} (give an id, an email or a username)"))
}

async fn audit(
    store: &Store,
    event: &str,
    target: Option<&str>,
    detail: Option<String>,
) -> Result<(), String> {
    let entry = AuditRecord {
        at: now_secs(),
        event: event.into(),
        actor: Some("cli".into()),
        target: target.map(str::to_string),
        ip: None,
        detail,
    };
    store
        .append_audit(vec![entry])
        .await
        .map_err(|e| e.to_string())
}

fn write_error(e: WriteError) -> String {
    match e {
        WriteError::EmailTaken => "this email address is already registered".into(),
        WriteError::EmailConfusable => {
            "this email address looks too much like one that is already registered".into()
        }
        WriteError::UsernameTaken => "this username is taken".into(),
        other => other.to_string(),
    }
}

fn check_password(config: &Config, password: &str) -> Result<(), String> {
    crate::api::validate_password(password, &config.auth).map_err(|p| format!("password {p}"))
}

/// A random password for accounts created without one.
fn random_password() -> Result<String, String> {
    use base64::Engine as _;
    let mut raw = [0u8; 18];
    getrandom::fill(&mut raw).map_err(|e| e.to_string())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// `user add`: an active user; without a password one is generated and printed once.
pub async fn user_add(
    config: &Config,
    email: &str,
    username: Option<&str>,
    role: &str,
    password: Option<String>,
) -> Result<String, String> {
    let role = parse_role(role)?;
    let email = crate::api::validate_email(email).map_err(|p| format!("email {p}"))?;
    let username = username
        .map(|u| crate::api::validate_username(u).map_err(|p| format!("username {p}")))
        .transpose()?;
    let (password, generated) = match password {
        Some(p) => (p, false),
        None => (random_password()?, true),
    };
    check_password(config, &password)?;
    let store = open(config)?;
    let now = now_secs();
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| e.to_string())?;
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let user = UserRecord {
        username,
        email_verified: true,
        password_hash: Some(hash_blocking(&password)?),
        ..UserRecord::new(&id, &email, role, UserStatus::Active, now)
    };
    let user = store
        .create_user(NewAccount::of(user))
        .await
        .map_err(write_error)?;
    audit(
        &store,
        "account_created",
        Some(&user.id),
        Some(format!("role={}", role.as_str())),
    )
    .await?;
    let mut out = format!("created {} {} ({})", user.id, user.email, role.as_str());
    if generated {
        out.push_str(&format!("\npassword: {password}"));
    }
    Ok(out)
}

/// `setup-code`: the code setup from another machine asks for, while no owner exists. Works
/// while the server runs (the code is a file beside `storage.path`, which the server created;
/// with PostgreSQL, each machine's gateway keeps its own there).
pub async fn setup_code(config: &Config) -> Result<String, String> {
    if let Some(code) = crate::auth::setup_code::read(config) {
        return Ok(code);
    }
    match Store::open(config.storage.location()) {
        Ok(store) => {
            if store.owner_exists().await.map_err(|e| e.to_string())? {
                Err("setup is complete: an owner exists, so there is no setup code".into())
            } else {
                crate::auth::setup_code::ensure(config)
            }
        }
        Err(crate::store::OpenError::InUse(_)) => Err(
            "setup is complete: the running gateway has an owner, so there is no setup code".into(),
        ),
        Err(e) => Err(e.to_string()),
    }
}

/// `compact`: rewrite the database file without its free space (server stopped).
pub fn compact(config: &Config) -> Result<String, String> {
    if config.storage.postgres.is_some() {
        return Err(
            "compact rewrites a redb file; with backend = \"postgres\" the database reclaims space itself (autovacuum; VACUUM FULL gives it back to the system)".into(),
        );
    }
    let path = &config.storage.path;
    let before = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let store = crate::store::redb::RedbStore::open(path).map_err(|e| e.to_string())?;
    store.compact().map_err(|e| e.to_string())?;
    let after = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(format!(
        "{}: {before} bytes before, {after} bytes after compaction",
        path.display()
    ))
}

/// `user list`: one line per user.
pub async fn user_list(config: &Config) -> Result<String, String> {
    let store = open(config)?;
    let mut users = store.list_users().await.map_err(|e| e.to_string())?;
    users.sort_by_key(|u| u.created_at);
    let mut out = format!(
        "{:<32}  {:<30}  {:<16}  {:<6}  {:<8}  groups",
        "id", "email", "username", "role", "status"
    );
    for u in users {
        out.push_str(&format!(
            "\n{:<32}  {:<30}  {:<16}  {:<6}  {:<8}  {}",
            u.id,
            u.email,
            u.username.as_deref().unwrap_or("-"),
            u.role.as_str(),
            u.status.as_str(),
            u.groups.join(",")
        ));
    }
    Ok(out)
}

/// `user passwd`: set the password and revoke every session of the user.
pub async fn user_passwd(config: &Config, who: &str, password: &str) -> Result<String, String> {
    check_password(config, password)?;
    let store = open(config)?;
    let user = find(&store, who).await?;
    if user.role == Role::Service {
        return Err("a service account has no password; it uses API tokens".into());
    }
    let hash = hash_blocking(password)?;
    let revoked = store
        .set_password(&user.id, hash, now_secs(), None)
        .await
        .map_err(write_error)?;
    audit(
        &store,
        "password_reset",
        Some(&user.id),
        Some(format!("revoked={revoked}")),
    )
    .await?;
    Ok(format!(
        "password of {} changed; {revoked} sessions revoked",
        user.email
    ))
}

/// Apply an administrative change (never leaving no owner) and audit it.
async fn admin_change(
    config: &Config,
    who: &str,
    detail: String,
    change: AdminChange,
) -> Result<(UserRecord, usize), String> {
    let store = open(config)?;
    let user = find(&store, who).await?;
    if let Some(role) = change.role {
        user.role.may_become(role)?;
    }
    let (after, revoked) = store
        .admin_update(&user.id, change, now_secs())
        .await
        .map_err(write_error)?;
    audit(
        &store,
        "admin_user_update",
        Some(&user.id),
        Some(format!("{detail} revoked={revoked}")),
    )
    .await?;
    Ok((after, revoked))
}

/// `user disable`: disable and revoke every session (never the last owner).
pub async fn user_disable(config: &Config, who: &str) -> Result<String, String> {
    let change = AdminChange {
        status: Some(UserStatus::Disabled),
        ..AdminChange::default()
    };
    let (user, revoked) = admin_change(config, who, "status=disabled".into(), change).await?;
    Ok(format!(
        "{} disabled; {revoked} sessions revoked",
        user.email
    ))
}

/// `user reset-2fa`: remove every second factor of a user (authenticator app, recovery codes,
/// passkeys) and revoke their sessions, for someone who lost them all.
pub async fn user_reset_second_factor(config: &Config, who: &str) -> Result<String, String> {
    let store = open(config)?;
    let user = find(&store, who).await?;
    let (passkeys, revoked) = store
        .reset_second_factors(&user.id)
        .await
        .map_err(|e| e.to_string())?;
    audit(
        &store,
        "second_factor_reset",
        Some(&user.id),
        Some(format!("passkeys={passkeys} revoked={revoked}")),
    )
    .await?;
    Ok(format!(
        "second factors of {} removed ({passkeys} passkeys); {revoked} sessions revoked",
        user.email
    ))
}

/// `user role`: change the role (never demoting the last owner).
pub async fn user_role(config: &Config, who: &str, role: &str) -> Result<String, String> {
    let role = parse_role(role)?;
    let change = AdminChange {
        role: Some(role),
        ..AdminChange::default()
    };
    let (user, _) = admin_change(config, who, format!("role={}", role.as_str()), change).await?;
    Ok(format!("{} is now {}", user.email, role.as_str()))
}

/// `invite create`: prints the code and the registration link.
pub async fn invite_create(
    config: &Config,
    role: &str,
    groups: Option<&str>,
    uses: u32,
    expires: Option<&str>,
) -> Result<String, String> {
    let role = parse_role(role)?;
    if uses == 0 {
        return Err("--uses must be at least 1".into());
    }
    let groups = groups_arg(groups)?;
    let now = now_secs();
    let expires_at = expires
        .map(|e| {
            parse_duration(e)
                .map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)))
        })
        .transpose()?;
    let store = open(config)?;
    let code = crate::api::new_invite_code().map_err(|e| e.to_string())?;
    let invite = InviteRecord {
        id: crate::store::invite_id(&crate::store::invite_key(&code)),
        role,
        groups,
        max_uses: uses,
        used: 0,
        expires_at,
        created_by: Some("cli".into()),
        created_at: now,
    };
    store
        .create_invite(code.clone(), invite)
        .await
        .map_err(|e| e.to_string())?;
    audit(
        &store,
        "invite_create",
        None,
        Some(format!("role={} uses={uses}", role.as_str())),
    )
    .await?;
    Ok(format!(
        "{code}\n{}{}/register?invite={code}",
        config.server.public_url.origin, config.auth.prefix
    ))
}

/// Comma-separated words, trimmed, empty ones dropped.
fn comma_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .collect()
}

/// `token create`: prints the new token, shown this once.
pub async fn token_create(
    config: &Config,
    who: &str,
    name: &str,
    groups: Option<&str>,
    expires: Option<&str>,
) -> Result<String, String> {
    use crate::api::tokens::{issue, TokenSpec};
    let lifetime = expires.map(parse_duration).transpose()?;
    let store = open(config)?;
    let owner = find(&store, who).await?;
    if owner.status != UserStatus::Active {
        return Err(format!("{} is not active; enable it first", owner.email));
    }
    let spec = TokenSpec::check(&owner, name, lifetime, groups.map(comma_list))
        .map_err(|(field, problem)| format!("{field}: {problem}"))?;
    let (minted, record) = issue(&store, &owner, spec, now_secs())
        .await
        .map_err(write_error)?;
    audit(
        &store,
        "token_create",
        Some(&owner.id),
        Some(format!("token={} name={}", record.id, record.name)),
    )
    .await?;
    Ok(minted.token)
}

/// `token list`: one line per token of a user (never the secret).
pub async fn token_list(config: &Config, who: &str) -> Result<String, String> {
    let store = open(config)?;
    let owner = find(&store, who).await?;
    let tokens = store
        .user_api_tokens(&owner.id)
        .await
        .map_err(|e| e.to_string())?;
    let when = |t: Option<i64>| {
        t.and_then(|t| crate::api::views::rfc3339(t).as_str().map(str::to_string))
            .unwrap_or_else(|| "-".into())
    };
    let mut out = format!(
        "{:<32}  {:<10}  {:<20}  {:<20}  {:<20}  groups",
        "id", "prefix", "name", "expires", "last used"
    );
    for t in tokens {
        out.push_str(&format!(
            "\n{:<32}  {:<10}  {:<20}  {:<20}  {:<20}  {}",
            t.id,
            t.prefix,
            t.name,
            when(t.expires_at),
            when(t.last_used_at),
            t.groups.map_or_else(|| "(all)".into(), |g| g.join(","))
        ));
    }
    Ok(out)
}

/// `token revoke`: delete one of a user's tokens by its id.
pub async fn token_revoke(config: &Config, who: &str, id: &str) -> Result<String, String> {
    let store = open(config)?;
    let owner = find(&store, who).await?;
    if !store
        .delete_api_token(&owner.id, id.trim())
        .await
        .map_err(|e| e.to_string())?
    {
        return Err(format!("{} has no token {id:?}", owner.email));
    }
    audit(
        &store,
        "token_revoke",
        Some(&owner.id),
        Some(format!("token={id}")),
    )
    .await?;
    Ok(format!("token {id} revoked"))
}

/// `service-account add`: an account for a machine, reached only through its tokens.
pub async fn service_account_add(
    config: &Config,
    name: &str,
    groups: Option<&str>,
) -> Result<String, String> {
    let groups = groups_arg(groups)?;
    let store = open(config)?;
    let id = crate::api::new_user_id().map_err(|e| e.to_string())?;
    let user = crate::api::tokens::service_account(&id, name, groups, now_secs())?;
    let user = store
        .create_user(NewAccount::of(user))
        .await
        .map_err(write_error)?;
    audit(&store, "service_account_create", Some(&user.id), None).await?;
    Ok(format!(
        "service account {} created ({}); give it a token with: authgate token create --user {} --name NAME",
        user.username.as_deref().unwrap_or(&user.id),
        user.id,
        user.username.as_deref().unwrap_or(&user.id),
    ))
}
