//! Session tokens and the session check: 256 random bits sent as base64url, stored only as
//! their SHA-256; idle and absolute expiry, and the user's status, checked on every request.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::store::{Role, SessionKey, SessionRecord, UserRecord, UserStatus};

/// A freshly minted session token and its storage key.
pub struct NewToken {
    /// Sent to the client once; never stored.
    pub token: String,
    pub key: SessionKey,
}

/// Mint a token from the OS CSPRNG.
pub fn new_token() -> Result<NewToken, String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| format!("no randomness: {e}"))?;
    Ok(NewToken {
        token: URL_SAFE_NO_PAD.encode(raw),
        key: Sha256::digest(raw).into(),
    })
}

/// The storage key of a presented token, or `None` when it is not a well-formed token.
pub fn key_for(token: &str) -> Option<SessionKey> {
    if token.len() != 43 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(token.as_bytes()).ok()?;
    if raw.len() != 32 {
        return None;
    }
    Some(Sha256::digest(&raw).into())
}

/// The id by which a session is shown and revoked in the API (derived from the key, so it
/// reveals nothing usable as a token).
pub fn public_id(key: &SessionKey) -> String {
    key[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Who a valid session belongs to, as upstreams see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub email: String,
    pub username: Option<String>,
    /// Full name, or first and last name joined.
    pub name: Option<String>,
    pub role: Role,
    /// The role, then the user's groups.
    pub groups: Vec<String>,
    /// `groups` joined with commas.
    pub groups_header: String,
    /// The identity header values, rendered once: user, email, name, groups, user id, the
    /// session's authentication methods (empty when unset or not a valid header value).
    pub header_values: [http::HeaderValue; 6],
}

impl Identity {
    /// The identity of a stored user.
    pub fn from_user(user: &UserRecord) -> Identity {
        let name = user.full_name.clone().or_else(|| {
            let joined = [user.first_name.as_deref(), user.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!joined.is_empty()).then_some(joined)
        });
        // The role, then the groups; a stored group that spells a role (written before role
        // names were reserved) is dropped, so only the role itself can pass a role's rule.
        let mut groups = vec![user.role.as_str().to_string()];
        groups.extend(
            user.groups
                .iter()
                .filter(|g| {
                    !crate::store::RESERVED_GROUP_NAMES
                        .iter()
                        .any(|r| r.eq_ignore_ascii_case(g))
                })
                .cloned(),
        );
        let groups_header = groups.join(",");
        let value = |text: Option<&str>| {
            http::HeaderValue::from_bytes(text.unwrap_or("").as_bytes())
                .unwrap_or_else(|_| http::HeaderValue::from_static(""))
        };
        let header_values = [
            value(Some(user.username.as_deref().unwrap_or(&user.email))),
            value(Some(&user.email)),
            value(name.as_deref()),
            value(Some(&groups_header)),
            value(Some(&user.id)),
            value(None),
        ];
        Identity {
            user_id: user.id.clone(),
            email: user.email.clone(),
            username: user.username.clone(),
            name,
            role: user.role,
            groups_header,
            groups,
            header_values,
        }
    }

    /// This identity as one session sees it: with how that session was authenticated.
    pub fn with_methods(mut self, amr: &[String]) -> Identity {
        if let Ok(v) = http::HeaderValue::from_str(&amr.join(",")) {
            self.header_values[5] = v;
        }
        self
    }

    /// The user header's value: the username, or the email without one.
    pub fn user_header(&self) -> &str {
        self.username.as_deref().unwrap_or(&self.email)
    }

    #[cfg(test)]
    pub fn for_tests(
        id: &str,
        email: &str,
        username: Option<&str>,
        name: Option<&str>,
        role: &str,
        groups: &[&str],
    ) -> Identity {
        let role = match role {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            _ => Role::User,
        };
        let user = UserRecord {
            username: username.map(str::to_string),
            full_name: name.map(str::to_string),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..UserRecord::new(id, email, role, UserStatus::Active, 0)
        };
        Identity::from_user(&user)
    }
}

/// Whether a stored session (and its user) may be used at `now`.
pub fn is_live(session: &SessionRecord, user: &UserRecord, idle_secs: i64, now: i64) -> bool {
    now < session.expires_at
        && now < session.last_seen.saturating_add(idle_secs)
        && user.status == UserStatus::Active
        && user.expires_at.is_none_or(|t| now < t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_base64url_and_keys_are_their_sha256() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 43);
        assert!(a
            .token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(key_for(&a.token), Some(a.key));
        assert_ne!(
            a.key.to_vec(),
            URL_SAFE_NO_PAD.decode(&a.token).expect("decodes")
        );
    }

    #[test]
    fn malformed_tokens_have_no_key() {
        for bad in [
            "",
            "x",
            "not base64 at all!",
            &"A".repeat(44),
            &"*".repeat(43),
            "\u{0}",
        ] {
            assert_eq!(key_for(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn header_values_are_user_email_name_groups_id_and_methods() {
        let id = Identity::for_tests(
            "u1",
            "alice@example.com",
            Some("alice"),
            Some("Alice A"),
            "user",
            &["staff"],
        );
        let values: Vec<&[u8]> = id.header_values.iter().map(|v| v.as_bytes()).collect();
        assert_eq!(
            values,
            [
                &b"alice"[..],
                b"alice@example.com",
                b"Alice A",
                b"user,staff",
                b"u1",
                b""
            ]
        );
        let seen = id.with_methods(&["pwd".into(), "otp".into()]);
        assert_eq!(seen.header_values[5], "pwd,otp");
    }

    #[test]
    fn liveness_checks_idle_absolute_status_and_account_expiry() {
        let id = Identity::for_tests("u", "e@x.io", None, None, "user", &[]);
        assert_eq!(id.user_header(), "e@x.io");
        assert_eq!(id.groups_header, "user");
        let mut user = UserRecord {
            first_name: Some("A".into()),
            last_name: Some("B".into()),
            groups: vec!["admin".into(), "ops".into()],
            ..UserRecord::new("u", "e@x.io", Role::Admin, UserStatus::Active, 0)
        };
        let ident = Identity::from_user(&user);
        assert_eq!(ident.name.as_deref(), Some("A B"));
        assert_eq!(ident.groups_header, "admin,ops");
        // Groups that spell a role never count as one.
        user.role = Role::User;
        user.groups = vec!["owner".into(), "Admin".into(), "ops".into()];
        assert_eq!(Identity::from_user(&user).groups, vec!["user", "ops"]);
        user.role = Role::Admin;
        let s = SessionRecord {
            user_id: "u".into(),
            created_at: 0,
            expires_at: 100,
            last_seen: 10,
            indexed_expiry: 0,
            remember: false,
            ip: None,
            user_agent: None,
            amr: Vec::new(),
            stage: crate::store::SessionStage::Complete,
        };
        assert!(is_live(&s, &user, 50, 59));
        assert!(!is_live(&s, &user, 50, 60), "idle");
        assert!(!is_live(&s, &user, 500, 100), "absolute");
        user.status = UserStatus::Disabled;
        assert!(!is_live(&s, &user, 50, 20));
        user.status = UserStatus::Active;
        user.expires_at = Some(20);
        assert!(!is_live(&s, &user, 50, 20));
    }
}
