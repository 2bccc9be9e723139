//! API tokens for scripts, monitors and native clients: their form (`agt_` and 256 random
//! bits, stored only as SHA-256), the three ways a request may present one, which headers
//! carry a gateway credential and so never reach an upstream, the `WWW-Authenticate`
//! challenge a refusal carries, and the identity a token stands for (its owner's, narrowed to
//! the token's groups).

use std::borrow::Cow;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};

pub use crate::error::Challenge;
use sha2::{Digest, Sha256};

use crate::auth::session::Identity;
use crate::auth::session_cache::Cached;
use crate::store::{ApiTokenRecord, SessionKey, UserRecord, UserStatus};

/// What every token starts with, so a leaked one is recognisable (secret scanners, logs).
pub const PREFIX: &str = "agt_";
/// Tokens one account may hold.
pub const MAX_PER_USER: usize = 100;
/// Characters of a token kept to tell it apart in lists (`agt_` and six more).
const SHOWN: usize = PREFIX.len() + 6;
/// The `Remote-Auth-Methods` value of a request authenticated by a token.
pub const METHOD: &str = "token";

/// A freshly minted token: shown once, never stored.
pub struct NewApiToken {
    pub token: String,
    pub key: SessionKey,
    /// The first characters, kept to tell tokens apart.
    pub prefix: String,
}

/// Mint a token from the OS CSPRNG.
pub fn mint() -> Result<NewApiToken, String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| format!("no randomness: {e}"))?;
    let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
    Ok(NewApiToken {
        key: digest(&token),
        prefix: token[..SHOWN].to_string(),
        token,
    })
}

/// The storage key of a presented token, or `None` when it is not a well-formed token. The
/// whole text (prefix included) is hashed, so a token's key is never a session's.
pub fn key_for(token: &str) -> Option<SessionKey> {
    let body = token.strip_prefix(PREFIX)?;
    if body.len() != 43 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(body.as_bytes()).ok()?;
    (raw.len() == 32).then(|| digest(token))
}

fn digest(token: &str) -> SessionKey {
    Sha256::digest(token.as_bytes()).into()
}

/// The id a token is shown and revoked by (derived from the key; reveals nothing usable).
pub fn public_id(key: &SessionKey) -> String {
    crate::auth::session::public_id(key)
}

/// How a request presented its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer agt_…`.
    Bearer,
    /// `Authorization: Basic` with the token as the password.
    Basic,
    /// `session.token_header`.
    Header,
}

/// The gateway token a request presents, if any.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented<'h> {
    /// None: any `Authorization` is the app's own.
    Nothing,
    One {
        token: Cow<'h, str>,
        via: Via,
    },
    /// Different tokens at once, or something in the token header that is no token: refused.
    Unclear,
}

/// One `Authorization` value, if it carries a gateway token: a bearer `agt_…`, or Basic
/// credentials whose password is one (any user name: git and WebDAV clients send one).
fn from_authorization(value: &HeaderValue) -> Option<(Cow<'_, str>, Via)> {
    let text = value.to_str().ok()?.trim();
    let (scheme, rest) = text.split_once(|c: char| c.is_ascii_whitespace())?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return rest
            .starts_with(PREFIX)
            .then_some((Cow::Borrowed(rest), Via::Bearer));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest.as_bytes()).ok()?;
        // The user name may be in any charset (RFC 7617): only the password is read.
        let colon = decoded.iter().position(|b| *b == b':')?;
        let password = &decoded[colon + 1..];
        if !password.starts_with(PREFIX.as_bytes()) {
            return None;
        }
        // A password that claims to be a token but is not text counts as one (a bad one), so
        // it is refused and never forwarded.
        let password = String::from_utf8_lossy(password).into_owned();
        return Some((Cow::Owned(password), Via::Basic));
    }
    None
}

/// The gateway token `headers` present: in `Authorization` (Bearer or Basic) or in
/// `token_header`. Anything in the token header counts as a token (it is the gateway's own
/// header); an `Authorization` that is not a gateway token is the app's and is ignored here.
pub fn presented<'h>(headers: &'h HeaderMap, token_header: Option<&HeaderName>) -> Presented<'h> {
    let mut found: Option<(Cow<'h, str>, Via)> = None;
    let own = token_header
        .into_iter()
        .flat_map(|name| headers.get_all(name).iter())
        .map(|v| match v.to_str() {
            Ok(t) => Some((Cow::Borrowed(t.trim()), Via::Header)),
            Err(_) => None,
        });
    let authorization = headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(from_authorization)
        .map(Some);
    for candidate in own.chain(authorization) {
        let Some((token, via)) = candidate else {
            return Presented::Unclear;
        };
        match &found {
            Some((seen, _)) if *seen != token => return Presented::Unclear,
            Some(_) => {}
            None => found = Some((token, via)),
        }
    }
    match found {
        Some((token, via)) => Presented::One { token, via },
        None => Presented::Nothing,
    }
}

/// Which request headers carry a gateway credential and are removed before forwarding: the
/// token header whenever present, and `Authorization` when any of its values is a gateway
/// token or, with `bearer_sessions` (`session.bearer`), a bearer that is a session token in
/// form (whether or not it was the one that authenticated the request: a live session of
/// someone else must not reach the app either). An `Authorization` of the app's own passes
/// untouched.
pub fn credential_headers(
    headers: &HeaderMap,
    token_header: Option<&HeaderName>,
    bearer_sessions: bool,
) -> Vec<HeaderName> {
    let mut out = Vec::new();
    if let Some(name) = token_header.filter(|n| headers.contains_key(*n)) {
        out.push(name.clone());
    }
    let ours = headers
        .get_all(AUTHORIZATION)
        .iter()
        .any(|v| from_authorization(v).is_some() || (bearer_sessions && is_session_bearer(v)));
    if ours {
        out.push(AUTHORIZATION);
    }
    out
}

/// A `Bearer` whose token has the form of a session token.
fn is_session_bearer(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let mut words = text.split_ascii_whitespace();
    matches!(
        (words.next(), words.next(), words.next()),
        (Some(scheme), Some(token), None)
            if scheme.eq_ignore_ascii_case("bearer")
                && crate::auth::session::key_for(token).is_some()
    )
}

/// Whether a refusal may offer HTTP Basic: only to clients that are not a browser's script.
/// A browser answers a Basic challenge to `fetch` with its own password dialog over the app,
/// so requests that say they come from a page (`Sec-Fetch-Mode`, `X-Requested-With`) are
/// offered Bearer only; git, curl, WebDAV and media clients send neither.
pub fn offers_basic(headers: &HeaderMap) -> bool {
    !headers.contains_key("sec-fetch-mode") && !headers.contains_key("x-requested-with")
}

/// A token found live in the store, with the identity it stands for.
#[derive(Debug)]
pub struct LiveToken {
    pub key: SessionKey,
    pub token: ApiTokenRecord,
    pub user: UserRecord,
    /// The owner's identity narrowed to the token's groups, methods `token`.
    pub identity: Identity,
    /// The earlier of the token's and the account's expiry.
    pub valid_until: i64,
}

impl LiveToken {
    /// The token as usable at `now`, or `None` when it has expired or its owner may not use
    /// it (not active, past the account's expiry).
    pub fn check(
        key: SessionKey,
        token: ApiTokenRecord,
        user: UserRecord,
        now: i64,
    ) -> Option<LiveToken> {
        let valid_until = token
            .expires_at
            .unwrap_or(i64::MAX)
            .min(user.expires_at.unwrap_or(i64::MAX));
        if now >= valid_until || user.status != UserStatus::Active {
            return None;
        }
        let identity = narrowed(&Identity::from_user(&user), token.groups.as_deref())
            .with_methods(&[METHOD.to_string()]);
        Some(LiveToken {
            key,
            token,
            user,
            identity,
            valid_until,
        })
    }
}

impl Cached for LiveToken {
    fn key(&self) -> &SessionKey {
        &self.key
    }
    fn user_id(&self) -> &str {
        &self.user.id
    }
    fn valid_until(&self) -> i64 {
        self.valid_until
    }
    fn last_seen(&self) -> i64 {
        // Never used: no use on record, so the first one is due at once (not a minute after
        // the token was made, which would leave `lastUsedAt` empty after it was used).
        self.token.last_used_at.unwrap_or(0)
    }
}

/// The owner's identity as a token limited to `allowed` sees it: only the role and groups the
/// owner has now that the token also lists (never more than the owner's, whatever the token
/// was created with). `None`: everything the owner has.
pub fn narrowed(owner: &Identity, allowed: Option<&[String]>) -> Identity {
    let Some(allowed) = allowed else {
        return owner.clone();
    };
    let mut identity = owner.clone();
    identity.groups.retain(|g| allowed.contains(g));
    identity.groups_header = identity.groups.join(",");
    identity.header_values[3] = HeaderValue::from_str(&identity.groups_header)
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    identity
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Role;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn minted_tokens_are_recognised_and_keyed_apart_from_sessions() {
        let t = mint().expect("mint");
        assert!(t.token.starts_with("agt_") && t.token.len() == 47);
        assert_eq!(key_for(&t.token), Some(t.key));
        assert!(t.token.starts_with(&t.prefix) && t.prefix.len() == 10);
        let body = &t.token[4..];
        // (presented, recognised)
        let cases = [
            (t.token.clone(), true),
            (body.to_string(), false),
            (format!("agt_{}", &body[1..]), false),
            (format!("{}x", t.token), false),
            (format!("agt_{}", "!".repeat(43)), false),
            ("agt_".to_string(), false),
        ];
        for (text, ok) in cases {
            assert_eq!(key_for(&text).is_some(), ok, "{text}");
        }
        assert_ne!(
            key_for(&t.token),
            crate::auth::session::key_for(body),
            "a token's body used as a session id names no token"
        );
        assert_ne!(mint().expect("mint").token, t.token);
    }

    #[test]
    fn tokens_are_found_in_each_way_and_only_there() {
        let t = mint().expect("mint").token;
        let u = mint().expect("mint").token;
        let own: HeaderName = HeaderName::from_static("x-authgate-token");
        let one = |via| Presented::One {
            token: Cow::Owned(t.clone()),
            via,
        };
        // (request headers, result)
        let cases: Vec<(Vec<(&str, String)>, Presented<'_>)> = vec![
            (vec![], Presented::Nothing),
            (
                vec![("authorization", format!("Bearer {t}"))],
                one(Via::Bearer),
            ),
            (
                vec![("authorization", format!("bearer   {t} "))],
                one(Via::Bearer),
            ),
            (vec![("authorization", basic("git", &t))], one(Via::Basic)),
            (vec![("authorization", basic("", &t))], one(Via::Basic)),
            (vec![("x-authgate-token", t.clone())], one(Via::Header)),
            // The app's own credentials are not the gateway's.
            (
                vec![("authorization", "Bearer app-jwt".into())],
                Presented::Nothing,
            ),
            (
                vec![("authorization", basic("alice", "hunter2"))],
                Presented::Nothing,
            ),
            (
                vec![("authorization", "Digest x".into())],
                Presented::Nothing,
            ),
            (
                vec![("authorization", format!("Bearer\t{t}"))],
                one(Via::Bearer),
            ),
            (
                vec![(
                    "authorization",
                    format!(
                        "Basic {}",
                        STANDARD.encode([b"J\xf6rg:".as_slice(), t.as_bytes()].concat())
                    ),
                )],
                one(Via::Basic),
            ),
            (
                vec![("authorization", "Basic !!!".into())],
                Presented::Nothing,
            ),
            // The app keeps its Authorization while the token rides in the gateway's header.
            (
                vec![
                    ("authorization", "Bearer app-jwt".into()),
                    ("x-authgate-token", t.clone()),
                ],
                one(Via::Header),
            ),
            // The same token twice is one; two different ones are refused.
            (
                vec![
                    ("x-authgate-token", t.clone()),
                    ("authorization", format!("Bearer {t}")),
                ],
                one(Via::Header),
            ),
            (
                vec![
                    ("x-authgate-token", t.clone()),
                    ("authorization", format!("Bearer {u}")),
                ],
                Presented::Unclear,
            ),
            (
                vec![
                    ("authorization", format!("Bearer {t}")),
                    ("authorization", basic("x", &u)),
                ],
                Presented::Unclear,
            ),
            // The gateway's header holds tokens only: anything else there is a bad token.
            (
                vec![("x-authgate-token", "hello".into())],
                Presented::One {
                    token: Cow::Owned("hello".into()),
                    via: Via::Header,
                },
            ),
        ];
        for (pairs, want) in cases {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let h = headers(&pairs);
            assert_eq!(presented(&h, Some(&own)), want, "{pairs:?}");
        }
        // Without a token header, only Authorization counts.
        let h = headers(&[("x-authgate-token", &t)]);
        assert_eq!(presented(&h, None), Presented::Nothing);
    }

    #[test]
    fn gateway_credentials_never_reach_the_upstream_and_the_apps_do() {
        let t = mint().expect("mint").token;
        let own = HeaderName::from_static("x-authgate-token");
        let bearer = format!("Bearer {t}");
        let basic_token = basic("git", &t);
        let app_basic = basic("alice", "pw");
        let session = format!(
            "Bearer {}",
            crate::auth::session::new_token().expect("token").token
        );
        // (headers, bearer session used, removed)
        type Case<'a> = (Vec<(&'a str, &'a str)>, bool, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![], false, vec![]),
            (
                vec![("authorization", &bearer)],
                false,
                vec!["authorization"],
            ),
            (
                vec![("authorization", &basic_token)],
                false,
                vec!["authorization"],
            ),
            (vec![("authorization", &app_basic)], false, vec![]),
            (vec![("authorization", "Bearer app-jwt")], false, vec![]),
            (
                vec![("authorization", &session)],
                true,
                vec!["authorization"],
            ),
            // Without bearer sessions a bearer of that form is the app's.
            (vec![("authorization", &session)], false, vec![]),
            (vec![("authorization", "Bearer app-jwt")], true, vec![]),
            (
                vec![
                    ("authorization", "Bearer app-jwt"),
                    ("x-authgate-token", &t),
                ],
                false,
                vec!["x-authgate-token"],
            ),
            (
                vec![("x-authgate-token", "junk")],
                false,
                vec!["x-authgate-token"],
            ),
        ];
        for (pairs, session_bearer, want) in cases {
            let got = credential_headers(&headers(&pairs), Some(&own), session_bearer);
            let got: Vec<&str> = got.iter().map(HeaderName::as_str).collect();
            assert_eq!(got, want, "{pairs:?}");
        }
    }

    #[test]
    fn challenges_offer_basic_only_outside_browsers() {
        // (headers, Basic offered)
        let cases: [(&[(&str, &str)], bool); 4] = [
            (&[], true),
            (&[("user-agent", "git/2.43")], true),
            (&[("sec-fetch-mode", "cors")], false),
            (&[("x-requested-with", "XMLHttpRequest")], false),
        ];
        for (pairs, want) in cases {
            assert_eq!(offers_basic(&headers(pairs)), want, "{pairs:?}");
        }
    }

    fn owner(groups: &[&str], role: Role) -> UserRecord {
        UserRecord {
            groups: groups.iter().map(|g| g.to_string()).collect(),
            username: Some("ci".into()),
            ..UserRecord::new("u1", "ci@example.com", role, UserStatus::Active, 0)
        }
    }

    fn record(groups: Option<&[&str]>, expires_at: Option<i64>) -> ApiTokenRecord {
        ApiTokenRecord {
            id: "t1".into(),
            user_id: "u1".into(),
            name: "ci".into(),
            prefix: "agt_abcdef".into(),
            groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
            created_at: 0,
            expires_at,
            last_used_at: None,
        }
    }

    #[test]
    fn a_token_narrows_its_owner_and_never_widens() {
        let live = |user: UserRecord, groups: Option<&[&str]>| {
            LiveToken::check([1; 32], record(groups, None), user, 10).map(|l| l.identity.groups)
        };
        let u = || owner(&["media", "git"], Role::User);
        // (owner, token groups, groups the token carries)
        type Case<'a> = (UserRecord, Option<&'a [&'a str]>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (u(), None, vec!["user", "media", "git"]),
            (u(), Some(&["git"]), vec!["git"]),
            (u(), Some(&["git", "admins"]), vec!["git"]),
            (u(), Some(&["admin", "git"]), vec!["git"]),
            (u(), Some(&[]), vec![]),
            (
                owner(&["git"], Role::Admin),
                Some(&["admin"]),
                vec!["admin"],
            ),
            // The owner lost the group since: so does the token.
            (owner(&[], Role::User), Some(&["git"]), vec![]),
        ];
        for (user, groups, want) in cases {
            assert_eq!(
                live(user, groups),
                Some(want.iter().map(|g| g.to_string()).collect())
            );
        }
        let l = LiveToken::check([1; 32], record(Some(&["git"]), None), u(), 10).expect("live");
        assert_eq!(l.identity.header_values[3], "git");
        assert_eq!(l.identity.header_values[5], "token");
    }

    #[test]
    fn the_first_use_of_a_token_is_due_for_recording_at_once() {
        use crate::auth::authenticator::TOUCH_INTERVAL_SECS;
        let made_at = 1_000_000;
        let fresh = ApiTokenRecord {
            created_at: made_at,
            ..record(None, None)
        };
        let l = LiveToken::check([1; 32], fresh.clone(), owner(&[], Role::User), made_at)
            .expect("live");
        assert!(made_at - l.last_seen() >= TOUCH_INTERVAL_SECS);
        let used = ApiTokenRecord {
            last_used_at: Some(made_at),
            ..fresh
        };
        let l = LiveToken::check([1; 32], used, owner(&[], Role::User), made_at + 1).expect("live");
        assert_eq!(l.last_seen(), made_at, "then at most once a minute");
    }

    #[test]
    fn expired_tokens_and_unusable_owners_are_refused() {
        let disabled = UserRecord {
            status: UserStatus::Disabled,
            ..owner(&[], Role::User)
        };
        let expired_account = UserRecord {
            expires_at: Some(10),
            ..owner(&[], Role::User)
        };
        // (token expiry, owner, at, usable)
        let cases = [
            (None, owner(&[], Role::User), 10, true),
            (Some(11), owner(&[], Role::Service), 10, true),
            (Some(10), owner(&[], Role::User), 10, false),
            (None, disabled, 10, false),
            (None, expired_account.clone(), 9, true),
            (None, expired_account, 10, false),
        ];
        for (expiry, user, now, usable) in cases {
            let got = LiveToken::check([1; 32], record(None, expiry), user, now);
            assert_eq!(got.is_some(), usable, "{expiry:?} at {now}");
        }
    }
}
