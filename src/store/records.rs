//! Stored records and their encoding: one version byte, then JSON. A new layout means a new
//! version byte (and a migration), never a silent reinterpretation.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::StoreError;

/// Encoding version of every record written by this build.
const RECORD_V1: u8 = 1;

/// Encode a record with its version byte.
pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![RECORD_V1];
    serde_json::to_writer(&mut out, record)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode record: {e}")))?;
    Ok(out)
}

/// Decode a record written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&RECORD_V1, body)) => serde_json::from_slice(body)
            .map_err(|e| StoreError::Corrupt(format!("undecodable record: {e}"))),
        Some((v, _)) => Err(StoreError::Corrupt(format!("unknown record version {v}"))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

/// A user's role; the role also counts as a group for route checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    User,
}

impl Role {
    /// The API word.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    /// Owners and admins may use the admin endpoints.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// Whether a user may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Pending,
    Disabled,
}

impl UserStatus {
    /// The API word.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Pending => "pending",
            UserStatus::Disabled => "disabled",
        }
    }
}

/// A stored user. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    /// Trimmed and lower-cased.
    pub email: String,
    /// Lower-cased.
    pub username: Option<String>,
    pub full_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: Role,
    pub groups: Vec<String>,
    pub status: UserStatus,
    pub email_verified: bool,
    /// argon2id PHC string; `None` for accounts without a password.
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// A stored session, keyed by the SHA-256 of its token. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user_id: String,
    pub created_at: i64,
    /// Absolute expiry.
    pub expires_at: i64,
    pub last_seen: i64,
    /// The key under which the expiry index holds this session (set by the store).
    #[serde(default)]
    pub indexed_expiry: i64,
    pub remember: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionRecord {
    /// When the session dies if unused: the earlier of absolute expiry and idle expiry.
    pub fn effective_expiry(&self, idle_secs: i64) -> i64 {
        self.expires_at
            .min(self.last_seen.saturating_add(idle_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_version_byte() {
        let s = SessionRecord {
            user_id: "u".into(),
            created_at: 1,
            expires_at: 100,
            last_seen: 5,
            indexed_expiry: 0,
            remember: false,
            ip: Some("127.0.0.1".into()),
            user_agent: None,
        };
        let bytes = encode(&s).expect("encodes");
        assert_eq!(bytes[0], 1);
        assert_eq!(decode::<SessionRecord>(&bytes).expect("decodes"), s);
        assert!(decode::<SessionRecord>(&[]).is_err());
        assert!(decode::<SessionRecord>(&[9, b'{', b'}']).is_err());
        assert_eq!(s.effective_expiry(10), 15);
        assert_eq!(s.effective_expiry(1000), 100);
    }
}

/// An invitation to register. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRecord {
    pub code: String,
    pub role: Role,
    pub groups: Vec<String>,
    /// How many registrations it allows in all.
    pub max_uses: u32,
    pub used: u32,
    pub expires_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
}

impl InviteRecord {
    /// Whether one more registration may use it at `now`.
    pub fn usable(&self, now: i64) -> bool {
        self.used < self.max_uses && self.expires_at.is_none_or(|t| now < t)
    }
}

/// What a mailed token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    PasswordReset,
    EmailVerification,
}

/// A single-use mailed token, stored under the SHA-256 of its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub kind: TokenKind,
    pub user_id: String,
    pub expires_at: i64,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: i64,
    pub event: String,
    /// Who acted (user id), if known.
    pub actor: Option<String>,
    /// Whom or what it concerned (user id, identifier, invite), if anything.
    pub target: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}
