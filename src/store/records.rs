//! Stored records and their encoding: one version byte, then JSON; sessions, the most numerous
//! record, use a compact binary layout (version 2) and still read version 1. A new layout means
//! a new version byte, never a silent reinterpretation.

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
    /// A service account: no password, no interactive sign-in; reached only through its API
    /// tokens, which administrators create.
    Service,
}

impl Role {
    /// The API word.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::User => "user",
            Role::Service => "service",
        }
    }

    /// Owners and admins may use the admin endpoints.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// Whether an account with this role may be given `to`: a service account stays one, and
    /// a person never becomes one (it would keep a password and sessions it must not have).
    pub fn may_become(self, to: Role) -> Result<(), &'static str> {
        match (self == Role::Service, to == Role::Service) {
            (false, false) | (true, true) => Ok(()),
            (true, false) => Err("a service account cannot be given a person's role"),
            (false, true) => Err("an account cannot become a service account; create one instead"),
        }
    }
}

/// Names that are roles: never a user's group, so a group can never pass a route rule or an app's check meant for a role.
pub const RESERVED_GROUP_NAMES: [&str; 4] = ["owner", "admin", "user", "service"];

/// A user's group name as given by an admin, an invite or a provider's `default_groups`: the
/// one rule for group names. 1–64 of letters, digits, `_`, `.`, `-`, `:`, and not a role name
/// in any letter case (apps often compare groups case-insensitively).
pub fn group_name(raw: &str) -> Result<String, &'static str> {
    let g = raw.trim();
    let ok = (1..=64).contains(&g.len())
        && g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-:".contains(&b));
    if !ok {
        return Err("group names are 1 to 64 of letters, digits, '_', '.', '-', ':'");
    }
    if RESERVED_GROUP_NAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(g))
    {
        return Err(
            "owner, admin, user and service are roles, not group names; set the role instead",
        );
    }
    Ok(g.to_string())
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

impl UserRecord {
    /// A user with `role` and `status` created at `now`: no names, groups, password or
    /// expiry, address not verified, never signed in. Set the rest with struct update syntax.
    pub fn new(id: &str, email: &str, role: Role, status: UserStatus, now: i64) -> UserRecord {
        UserRecord {
            id: id.into(),
            email: email.into(),
            username: None,
            full_name: None,
            first_name: None,
            last_name: None,
            role,
            groups: Vec::new(),
            status,
            email_verified: false,
            password_hash: None,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            expires_at: None,
        }
    }
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
    /// How the session was authenticated, in the order it happened: `pwd`, `otp`,
    /// `recovery`, `passkey`, `provider:{name}`.
    #[serde(default)]
    pub amr: Vec<String>,
    /// What the session still lacks before anything but completing it accepts it.
    #[serde(default)]
    pub stage: SessionStage,
}

/// Whether a session is complete, or waits for a second factor or for one to be enrolled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionStage {
    #[default]
    Complete,
    /// The password was right; a second factor must follow.
    SecondFactor,
    /// Signed in, but a second factor is required and none is enrolled: enrolling only.
    Enrol,
}

impl SessionStage {
    fn byte(self) -> u8 {
        match self {
            SessionStage::Complete => 0,
            SessionStage::SecondFactor => 1,
            SessionStage::Enrol => 2,
        }
    }

    fn of_byte(b: u8) -> Option<SessionStage> {
        Some(match b {
            0 => SessionStage::Complete,
            1 => SessionStage::SecondFactor,
            2 => SessionStage::Enrol,
            _ => return None,
        })
    }
}

/// Sessions are the most numerous record: version 2 is a compact binary layout.
const SESSION_V2: u8 = 2;
/// Version 3: version 2, then the stage and the authentication methods.
const SESSION_V3: u8 = 3;

impl SessionRecord {
    /// Encode as version 3: the version byte; `created_at`, `expires_at`, `last_seen`,
    /// `indexed_expiry` as little-endian i64; a flags byte (1 remember, 2 ip, 4 user agent);
    /// `user_id` and `ip` each as a length byte and UTF-8; the user agent as a little-endian u16
    /// length and UTF-8; the stage byte (0 complete, 1 second factor, 2 enrol); the number of
    /// methods, each as a length byte and UTF-8.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let short = |s: &str, what: &str| {
            u8::try_from(s.len())
                .map_err(|_| StoreError::Corrupt(format!("session {what} too long to store")))
        };
        let ua = self.user_agent.as_deref().unwrap_or("");
        let ua_len = u16::try_from(ua.len())
            .map_err(|_| StoreError::Corrupt("session user agent too long to store".into()))?;
        let mut out = Vec::with_capacity(40 + self.user_id.len() + ua.len() + 16);
        out.push(SESSION_V3);
        for t in [
            self.created_at,
            self.expires_at,
            self.last_seen,
            self.indexed_expiry,
        ] {
            out.extend_from_slice(&t.to_le_bytes());
        }
        let flags = u8::from(self.remember)
            | (u8::from(self.ip.is_some()) << 1)
            | (u8::from(self.user_agent.is_some()) << 2);
        out.push(flags);
        out.push(short(&self.user_id, "user id")?);
        out.extend_from_slice(self.user_id.as_bytes());
        let ip = self.ip.as_deref().unwrap_or("");
        out.push(short(ip, "address")?);
        out.extend_from_slice(ip.as_bytes());
        out.extend_from_slice(&ua_len.to_le_bytes());
        out.extend_from_slice(ua.as_bytes());
        out.push(self.stage.byte());
        let count = u8::try_from(self.amr.len())
            .map_err(|_| StoreError::Corrupt("too many session methods to store".into()))?;
        out.push(count);
        for method in &self.amr {
            out.push(short(method, "method")?);
            out.extend_from_slice(method.as_bytes());
        }
        Ok(out)
    }

    /// Decode version 3, or 2 (a complete session, no methods recorded) or 1 (JSON) written by
    /// earlier builds.
    pub fn decode(bytes: &[u8]) -> Result<SessionRecord, StoreError> {
        let undecodable = || StoreError::Corrupt("undecodable session record".into());
        match bytes.first() {
            Some(&SESSION_V3) => decode_session_binary(&bytes[1..], true).ok_or_else(undecodable),
            Some(&SESSION_V2) => decode_session_binary(&bytes[1..], false).ok_or_else(undecodable),
            _ => decode(bytes),
        }
    }

    /// When the session dies if unused: the earlier of absolute expiry and idle expiry.
    pub fn effective_expiry(&self, idle_secs: i64) -> i64 {
        self.expires_at
            .min(self.last_seen.saturating_add(idle_secs))
    }
}

fn decode_session_binary(mut b: &[u8], v3: bool) -> Option<SessionRecord> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Some(head)
    }
    fn int(b: &mut &[u8]) -> Option<i64> {
        Some(i64::from_le_bytes(take(b, 8)?.try_into().ok()?))
    }
    fn text(b: &mut &[u8], n: usize) -> Option<String> {
        String::from_utf8(take(b, n)?.to_vec()).ok()
    }
    let created_at = int(&mut b)?;
    let expires_at = int(&mut b)?;
    let last_seen = int(&mut b)?;
    let indexed_expiry = int(&mut b)?;
    let flags = *take(&mut b, 1)?.first()?;
    let id_len = usize::from(*take(&mut b, 1)?.first()?);
    let user_id = text(&mut b, id_len)?;
    let ip_len = usize::from(*take(&mut b, 1)?.first()?);
    let ip = text(&mut b, ip_len)?;
    let ua_len = usize::from(u16::from_le_bytes(take(&mut b, 2)?.try_into().ok()?));
    let ua = text(&mut b, ua_len)?;
    let mut stage = SessionStage::Complete;
    let mut amr = Vec::new();
    if v3 {
        stage = SessionStage::of_byte(*take(&mut b, 1)?.first()?)?;
        let count = *take(&mut b, 1)?.first()?;
        for _ in 0..count {
            let len = usize::from(*take(&mut b, 1)?.first()?);
            amr.push(text(&mut b, len)?);
        }
    }
    if !b.is_empty() || flags & !7 != 0 {
        return None;
    }
    Some(SessionRecord {
        user_id,
        created_at,
        expires_at,
        last_seen,
        indexed_expiry,
        remember: flags & 1 != 0,
        ip: (flags & 2 != 0).then_some(ip),
        user_agent: (flags & 4 != 0).then_some(ua),
        amr,
        stage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_accounts_stay_apart_from_people() {
        use Role::*;
        // (from, to, allowed)
        let cases = [
            (User, Admin, true),
            (Owner, User, true),
            (Service, Service, true),
            (Service, User, false),
            (Service, Owner, false),
            (User, Service, false),
            (Admin, Service, false),
        ];
        for (from, to, ok) in cases {
            assert_eq!(from.may_become(to).is_ok(), ok, "{from:?} → {to:?}");
        }
    }

    #[test]
    fn role_names_are_never_group_names() {
        for ok in ["staff", "ops:write", "team-a", "Owners", "users", "a.b_c"] {
            assert_eq!(group_name(ok).as_deref(), Ok(ok), "{ok}");
        }
        assert_eq!(group_name("  staff ").as_deref(), Ok("staff"));
        for bad in [
            "owner",
            "OWNER",
            "Admin",
            "user",
            "service",
            "",
            "a b",
            "a,b",
            &"x".repeat(65),
        ] {
            assert!(group_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sessions_round_trip_compactly_and_old_json_still_reads() {
        let s = SessionRecord {
            user_id: "0123456789abcdef0123456789abcdef".into(),
            created_at: 1_700_000_000,
            expires_at: 1_700_604_800,
            last_seen: 1_700_000_100,
            indexed_expiry: 1_700_007_300,
            remember: true,
            ip: Some("2001:db8::1".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into()),
            amr: Vec::new(),
            stage: crate::store::SessionStage::Complete,
        };
        let bytes = s.encode().expect("encode");
        assert!(bytes.len() < 140, "{}", bytes.len());
        assert_eq!(SessionRecord::decode(&bytes).expect("decode"), s);
        let bare = SessionRecord {
            ip: None,
            user_agent: None,
            amr: Vec::new(),
            stage: crate::store::SessionStage::Complete,
            remember: false,
            ..s.clone()
        };
        assert_eq!(
            SessionRecord::decode(&bare.encode().expect("encode")).expect("decode"),
            bare
        );
        // Written by earlier builds: JSON (v1), and v2, which ends before the stage and the
        // methods (a complete session, no methods recorded).
        assert_eq!(
            SessionRecord::decode(&encode(&s).expect("v1")).expect("v1"),
            s
        );
        let mut v2 = bytes[..bytes.len() - 2].to_vec();
        v2[0] = SESSION_V2;
        assert_eq!(SessionRecord::decode(&v2).expect("v2"), s);
        // A half-open session with its methods.
        let half = SessionRecord {
            amr: vec!["pwd".into(), "provider:corp".into()],
            stage: SessionStage::SecondFactor,
            ..s.clone()
        };
        let half_bytes = half.encode().expect("encode");
        assert_eq!(SessionRecord::decode(&half_bytes).expect("decode"), half);
        let mut bad_stage = half_bytes.clone();
        let at = bytes.len() - 2;
        bad_stage[at] = 9;
        assert!(SessionRecord::decode(&bad_stage).is_err());
        for n in 0..half_bytes.len() {
            assert!(SessionRecord::decode(&half_bytes[..n]).is_err(), "{n}");
        }
        // Every truncation and a trailing byte are errors, never a panic.
        for n in 0..bytes.len() {
            assert!(SessionRecord::decode(&bytes[..n]).is_err(), "{n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(SessionRecord::decode(&longer).is_err());
        let long_id = SessionRecord {
            user_id: "x".repeat(300),
            ..s
        };
        assert!(long_id.encode().is_err());
    }

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
            amr: Vec::new(),
            stage: crate::store::SessionStage::Complete,
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
    /// Shown and used to delete it; derived from the code's hash (the code itself is never
    /// stored: it is shown once, when the invite is created).
    pub id: String,
    pub role: Role,
    pub groups: Vec<String>,
    /// How many registrations it allows in all.
    pub max_uses: u32,
    pub used: u32,
    pub expires_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// An invite as `invites_v1` stored it, with its code in clear (read once, to migrate).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct InviteRecordV1 {
    pub code: String,
    pub role: Role,
    pub groups: Vec<String>,
    pub max_uses: u32,
    pub used: u32,
    pub expires_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// The storage key of an invite code: its SHA-256.
pub fn invite_key(code: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(code.as_bytes()).into()
}

/// The id an invite is shown and deleted by: the first half of its key, in hex.
pub fn invite_id(key: &[u8; 32]) -> String {
    key[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl InviteRecord {
    /// Whether one more registration may use it at `now`.
    pub fn usable(&self, now: i64) -> bool {
        self.used < self.max_uses && self.expires_at.is_none_or(|t| now < t)
    }
}

/// A provider account linked to a local user. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
    /// The address the provider gave at the last sign-in (informational).
    pub email: Option<String>,
    pub linked_at: i64,
    pub last_login_at: Option<i64>,
}

/// A user's passkey (WebAuthn credential). The credential itself is opaque here: the passkey
/// module's serialised form, with its public key, counter and backup state. Times are Unix
/// seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyRecord {
    /// Shown and used to delete it: [`passkey_id`] of the credential id.
    pub id: String,
    pub user_id: String,
    /// The id the authenticator presents (unique among all users' passkeys).
    #[serde(with = "base64url")]
    pub credential_id: Vec<u8>,
    /// The user's name for it ("Laptop", "YubiKey").
    pub name: String,
    /// The serialised credential (JSON text).
    pub credential: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// An API token, keyed by the SHA-256 of the token (the token itself is never stored).
/// Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    /// Shown and used to revoke it (derived from the key, never usable as the token).
    pub id: String,
    pub user_id: String,
    /// The owner's name for it ("backup job", "laptop git").
    pub name: String,
    /// The token's first characters (`agt_` and a few more), so people can tell tokens apart.
    pub prefix: String,
    /// The role and groups the token may use at most; `None`: all of the owner's.
    pub groups: Option<Vec<String>>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// Recorded in batches, so up to a minute or two behind.
    pub last_used_at: Option<i64>,
}

/// The id a passkey is shown and deleted by: the first half of its credential id's SHA-256, in
/// hex (credential ids may be a kilobyte long).
pub fn passkey_id(credential_id: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(credential_id);
    hash[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes as unpadded base64url text in a JSON record.
mod base64url {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// A sign-in waiting for a provider's answer, as stored (the state itself is the key, hashed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    pub provider: String,
    /// SHA-256 of the flow cookie's value, binding the flow to the browser that started it.
    pub binding: [u8; 32],
    pub nonce: String,
    pub pkce_verifier: String,
    pub rd: String,
    pub invite: Option<String>,
    /// Link the identity to this signed-in user instead of signing in.
    pub link_user: Option<String>,
    /// A persistent session ("keep me signed in").
    pub remember: bool,
    /// Who started it (IPv4 address or IPv6 /64), for the per-client limit.
    pub client: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
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

/// A user's second factors. Stored per user; the default is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorsRecord {
    /// An active authenticator app.
    #[serde(default)]
    pub totp: Option<TotpFactor>,
    /// A secret shown for enrolment, waiting for its first code.
    #[serde(default)]
    pub pending_totp: Option<PendingTotp>,
    /// Recovery codes (SHA-256 of each), with when each was used.
    #[serde(default)]
    pub recovery: Vec<RecoveryCode>,
}

impl FactorsRecord {
    /// Whether the user has a second factor to ask for.
    pub fn any(&self) -> bool {
        self.totp.is_some()
    }

    /// Recovery codes not used yet.
    pub fn recovery_left(&self) -> usize {
        self.recovery.iter().filter(|c| c.used_at.is_none()).count()
    }

    // The changes every backend makes inside one atomic read-modify-write; each returns
    // whether the record changed (and must be written back).

    /// Keep a secret waiting for its first code.
    pub fn begin_totp(&mut self, pending: PendingTotp) -> bool {
        self.pending_totp = Some(pending);
        true
    }

    /// The waiting secret becomes the active one, with new recovery codes.
    pub fn confirm_totp(&mut self, step: u64, recovery: Vec<[u8; 32]>, now: i64) -> bool {
        let Some(pending) = self.pending_totp.take() else {
            return false;
        };
        self.totp = Some(TotpFactor {
            sealed_secret: pending.sealed_secret,
            enabled_at: now,
            last_step: step,
        });
        self.recovery = RecoveryCode::unused(recovery);
        true
    }

    /// A step later than the last accepted one is accepted once.
    pub fn accept_step(&mut self, step: u64) -> bool {
        match &mut self.totp {
            Some(t) if step > t.last_step => {
                t.last_step = step;
                true
            }
            _ => false,
        }
    }

    /// An unused code with this hash is used once.
    pub fn use_code(&mut self, hash: [u8; 32], now: i64) -> bool {
        match self
            .recovery
            .iter_mut()
            .find(|c| c.used_at.is_none() && c.hash == hash)
        {
            Some(code) => {
                code.used_at = Some(now);
                true
            }
            None => false,
        }
    }

    /// A new set of recovery codes.
    pub fn replace_codes(&mut self, hashes: Vec<[u8; 32]>) -> bool {
        self.recovery = RecoveryCode::unused(hashes);
        true
    }

    /// No factor at all.
    pub fn remove_all(&mut self) -> bool {
        *self = FactorsRecord::default();
        true
    }
}

/// An active TOTP factor: the secret sealed at rest, and the last step accepted (a code of
/// that step or an earlier one is never accepted again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpFactor {
    pub sealed_secret: Vec<u8>,
    pub enabled_at: i64,
    pub last_step: u64,
}

/// A TOTP secret shown for enrolment and not confirmed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTotp {
    pub sealed_secret: Vec<u8>,
    pub created_at: i64,
}

/// One recovery code, by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCode {
    pub hash: [u8; 32],
    pub used_at: Option<i64>,
}

impl RecoveryCode {
    /// A new set of codes, none used.
    fn unused(hashes: Vec<[u8; 32]>) -> Vec<RecoveryCode> {
        hashes
            .into_iter()
            .map(|hash| RecoveryCode {
                hash,
                used_at: None,
            })
            .collect()
    }
}
