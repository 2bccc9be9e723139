//! Storage by capability: users, sessions, invites, mailed tokens, provider identities,
//! passkeys and their ceremonies' state, settings overrides, the audit log, counters (lockout,
//! failure and mail limits) and sign-ins waiting for a provider. Each is a trait of use-case
//! methods (`create_user` with its invite use, `open_session` replacing the sessions presented,
//! `revoke_user_sessions`, ...), so a backend decides how to make each one atomic: nothing
//! above this module composes transactions or sees the engine. A backend is chosen once at start ([`Store`]); it announces
//! committed changes that invalidate copies kept in memory through [`events::Events`].

#[cfg(test)]
mod conformance;
pub mod confusable;
mod error;
pub mod events;
pub mod memory;
pub mod postgres;
pub mod records;
pub mod redb;
pub mod snapshot;

use std::sync::Arc;

use async_trait::async_trait;

pub use confusable::email_skeleton;
pub use error::{OpenError, StoreError, WriteError};
pub use events::{Events, Listener, StoreEvent};
pub use records::{
    group_name, invite_id, invite_key, passkey_id, ApiTokenRecord, AuditRecord, FactorsRecord,
    FlowRecord, IdentityRecord, InviteRecord, PasskeyRecord, PendingTotp, RecoveryCode, Role,
    SessionRecord, SessionStage, TokenKind, TokenRecord, TotpFactor, UserRecord, UserStatus,
    RESERVED_GROUP_NAMES,
};
pub use snapshot::{ImportError, Snapshot};

/// SHA-256 of a session token: the only form in which a session id is stored.
pub type SessionKey = [u8; 32];

/// A session to store: its key, its record, and the idle timeout (for the expiry index).
#[derive(Debug, Clone)]
pub struct NewSession {
    pub key: SessionKey,
    pub record: SessionRecord,
    pub idle_secs: i64,
}

/// A new account, created in one transaction with what comes with it.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub user: UserRecord,
    /// An invite code: one use is counted, and the user gets the invite's role and groups
    /// (added to those already in `user`) and is active. Refused with
    /// [`WriteError::InviteInvalid`] when unknown, used up or expired.
    pub invite: Option<String>,
    /// A provider identity linked to the new user ([`WriteError::IdentityTaken`] when it is
    /// linked already).
    pub identity: Option<IdentityRecord>,
    /// The user's first session (they are signed in at once).
    pub session: Option<NewSession>,
}

impl NewAccount {
    /// Just the user: no invite, identity or first session.
    pub fn of(user: UserRecord) -> NewAccount {
        NewAccount {
            user,
            invite: None,
            identity: None,
            session: None,
        }
    }
}

/// A sign-in: the new session, the sessions the browser presented (replaced, never left
/// behind), and the provider identity it came through, if any.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub session: NewSession,
    pub replaces: Vec<SessionKey>,
    pub identity: Option<IdentitySignIn>,
}

/// How a provider identity takes part in a sign-in.
#[derive(Debug, Clone)]
pub enum IdentitySignIn {
    /// Through the identity already linked to the user: its address and sign-in time are
    /// noted ([`WriteError::NotFound`] when the link went away meanwhile).
    Linked {
        provider: String,
        subject: String,
        email: Option<String>,
    },
    /// Link this identity to the user now (`link_by_email`).
    Link(IdentityRecord),
}

/// Profile fields to change: `None` leaves a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub username: Option<Option<String>>,
    pub full_name: Option<Option<String>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
}

impl ProfileChange {
    /// `user` with these fields changed (every backend applies a change this way).
    pub fn applied_to(self, user: &UserRecord) -> UserRecord {
        let mut user = user.clone();
        for (slot, value) in [
            (&mut user.username, self.username),
            (&mut user.full_name, self.full_name),
            (&mut user.first_name, self.first_name),
            (&mut user.last_name, self.last_name),
        ] {
            if let Some(v) = value {
                *slot = v;
            }
        }
        user
    }
}

/// What an administrator changes about a user: `None` leaves a field.
#[derive(Debug, Clone, Default)]
pub struct AdminChange {
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
    pub groups: Option<Vec<String>>,
    pub expires_at: Option<Option<i64>>,
    pub email_verified: Option<bool>,
}

impl AdminChange {
    /// `user` with these fields changed (every backend applies a change this way).
    pub fn applied_to(self, user: &UserRecord) -> UserRecord {
        let mut user = user.clone();
        if let Some(r) = self.role {
            user.role = r;
        }
        if let Some(s) = self.status {
            user.status = s;
        }
        if let Some(g) = self.groups {
            user.groups = g;
        }
        if let Some(e) = self.expires_at {
            user.expires_at = e;
        }
        if let Some(v) = self.email_verified {
            user.email_verified = v;
        }
        user
    }
}

/// Whether a password counts as a way to sign in when deciding if a link may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSignIn {
    /// Everyone with a password may use it.
    Everyone,
    /// Only the owner (`native_signin = false`).
    OwnerOnly,
}

/// The rule an unlink is checked against, inside the write.
#[derive(Debug, Clone)]
pub enum UnlinkRule {
    /// An administrator removes the link: no condition.
    Always,
    /// The user removes their own link: it must not be their last way to sign in (another
    /// linked provider still in `configured`, or a password that counts).
    KeepAWayIn {
        configured: Vec<String>,
        password: PasswordSignIn,
    },
}

/// The outcome of removing a user's link to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlink {
    Done,
    /// The user has no link to that provider.
    NotLinked,
    /// It is the user's last way to sign in.
    Refused,
}

/// Settings stored in the database that override the file, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredOverrides {
    /// A registration mode word (`open`, `approval`, `invite`, `closed`).
    pub registration: Option<String>,
    pub native_signin: Option<bool>,
}

/// A change to one stored override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override<T> {
    Keep,
    Set(T),
    /// Back to the file's value.
    Clear,
}

impl<T> Override<T> {
    /// The same change, of `f(value)`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Override<U> {
        match self {
            Override::Keep => Override::Keep,
            Override::Set(v) => Override::Set(f(v)),
            Override::Clear => Override::Clear,
        }
    }
}

/// What a counter counts; each kind is kept (and bounded) apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterKind {
    /// Failed password or code checks of a known account (keyed by user id).
    AccountFailures,
    /// Failed checks of identifiers that name no account (bounded apart, so floods of made-up
    /// names never push real accounts out).
    UnknownFailures,
    /// Failed attempts of a client (IPv4 address or IPv6 /64), all accounts together.
    ClientFailures,
    /// Mails to one account.
    MailRecipient,
    /// Mail-sending requests of one client.
    MailClient,
}

/// Events of a key within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventWindow {
    pub count: u32,
    /// The oldest counted event's time (Unix seconds); 0 when there is none.
    pub oldest: i64,
}

/// A limit on events: at most `max` within `window` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: i64,
}

/// Whether an event was admitted under its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Refused; `first` is true for the first refusal since the key was last allowed.
    Refused {
        first: bool,
    },
}

/// How many sign-ins may wait for a provider: in all, and per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLimits {
    pub capacity: usize,
    pub per_client: usize,
    /// A flow older than this (seconds) may be dropped to make room.
    pub ttl: i64,
}

/// Users and their accounts.
#[async_trait]
pub trait Users: Send + Sync {
    /// Whether an owner has been stored (setup is done).
    async fn owner_exists(&self) -> Result<bool, StoreError>;
    /// Number of users.
    async fn user_count(&self) -> Result<u64, StoreError>;
    /// A user by id.
    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
    /// A user by canonical email (an identifier with `@`) or username.
    async fn find_user(&self, identifier: &str) -> Result<Option<UserRecord>, StoreError>;
    /// All users, in id order.
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Create the first owner (and its first session). Racing calls: exactly one wins, the
    /// others get [`WriteError::AlreadySetup`].
    async fn create_owner(
        &self,
        user: UserRecord,
        session: Option<NewSession>,
    ) -> Result<UserRecord, WriteError>;
    /// Create an account with its invite use, identity and first session, in one transaction;
    /// unique emails, look-alike emails and usernames are decided there. Returns the user as
    /// stored.
    async fn create_user(&self, account: NewAccount) -> Result<UserRecord, WriteError>;
    /// Change profile fields (a taken or retired username: [`WriteError::UsernameTaken`]).
    async fn update_profile(
        &self,
        id: &str,
        change: ProfileChange,
        now: i64,
    ) -> Result<UserRecord, WriteError>;
    /// An administrator's change. Refuses one that would leave no active owner
    /// ([`WriteError::LastOwner`]); a user no longer active loses every session in the same
    /// transaction. Returns the user and how many sessions ended.
    async fn admin_update(
        &self,
        id: &str,
        change: AdminChange,
        now: i64,
    ) -> Result<(UserRecord, usize), WriteError>;
    /// Delete a user with their sessions and links; never the last active owner. Returns the
    /// user as it was.
    async fn delete_user(&self, id: &str) -> Result<UserRecord, WriteError>;
    /// Set a password hash and end every session of the user but `keep`. Without `keep` (a
    /// reset by an administrator) the user's API tokens are revoked too; a user changing their
    /// own password keeps them. Returns how many sessions ended.
    async fn set_password(
        &self,
        id: &str,
        hash: String,
        now: i64,
        keep: Option<SessionKey>,
    ) -> Result<usize, WriteError>;
    /// Replace a hash by one with current parameters, if it is still `old`.
    async fn upgrade_password_hash(
        &self,
        id: &str,
        old: String,
        new: String,
    ) -> Result<bool, StoreError>;
    /// Disable every active account past its `expires_at` and end its sessions. Returns the
    /// ids changed and how many sessions ended.
    async fn expire_accounts(&self, now: i64) -> Result<(Vec<String>, usize), StoreError>;
}

/// Sessions.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Store a sign-in's session, note the login time on the user (and the identity), delete
    /// the sessions it replaces, and end the user's oldest sessions beyond the per-user cap,
    /// in one transaction.
    async fn open_session(&self, sign_in: SignIn) -> Result<(), WriteError>;
    /// A session and its user: the session check's one read.
    async fn get_session(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError>;
    /// Delete sessions (logout). Returns how many existed.
    async fn end_sessions(&self, keys: Vec<SessionKey>) -> Result<usize, StoreError>;
    /// End every session of a user but `keep`. Returns how many ended.
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<SessionKey>,
    ) -> Result<usize, StoreError>;
    /// The sessions of a user.
    async fn user_sessions(
        &self,
        user_id: &str,
    ) -> Result<Vec<(SessionKey, SessionRecord)>, StoreError>;
    /// Record last-seen times (batched, advisory); never brings back a deleted session.
    async fn touch_sessions(
        &self,
        touches: Vec<(SessionKey, i64)>,
        idle_secs: i64,
    ) -> Result<usize, StoreError>;
    /// Delete at most `limit` sessions expired at `now`. Returns how many.
    async fn sweep_expired_sessions(&self, now: i64, limit: usize) -> Result<usize, StoreError>;
    /// Number of stored sessions.
    async fn session_count(&self) -> Result<u64, StoreError>;
    /// Cap the sessions one user may have; a sign-in beyond it ends the oldest.
    fn set_sessions_per_user(&self, max: usize);
}

/// Invites (stored by the hash of their code).
#[async_trait]
pub trait Invites: Send + Sync {
    /// Store a new invite under its code's hash (the code itself is not stored).
    async fn create_invite(&self, code: String, invite: InviteRecord) -> Result<(), StoreError>;
    /// An invite by code.
    async fn get_invite(&self, code: &str) -> Result<Option<InviteRecord>, StoreError>;
    /// All invites.
    async fn list_invites(&self) -> Result<Vec<InviteRecord>, StoreError>;
    /// Delete an invite by id; owner-role invites only when `owner_role_too`. Returns whether
    /// one was deleted.
    async fn delete_invite(&self, id: &str, owner_role_too: bool) -> Result<bool, StoreError>;
}

/// Single-use tokens sent by mail (stored by their hash).
#[async_trait]
pub trait MailTokens: Send + Sync {
    /// Store a token under its key.
    async fn put_token(&self, key: SessionKey, token: TokenRecord) -> Result<(), StoreError>;
    /// A stored token (not consumed).
    async fn get_token(&self, key: &SessionKey) -> Result<Option<TokenRecord>, StoreError>;
    /// Use a reset token: set the password, end every session, revoke every API token, burn
    /// the token. Returns the
    /// user id, or `None` for an unknown, used, expired or wrong-kind token.
    async fn reset_password(
        &self,
        key: SessionKey,
        hash: String,
        now: i64,
    ) -> Result<Option<String>, WriteError>;
    /// Use a verification token. Returns the user id, or `None` as above.
    async fn verify_email(&self, key: SessionKey, now: i64) -> Result<Option<String>, WriteError>;
    /// Delete at most `limit` tokens expired at `now`. Returns how many.
    async fn sweep_expired_tokens(&self, now: i64, limit: usize) -> Result<usize, StoreError>;
}

/// Users' second factors. Every check that must not pass twice (a TOTP step, a recovery code)
/// is one atomic write, so two requests racing with the same code cannot both succeed.
#[async_trait]
pub trait SecondFactors: Send + Sync {
    /// The user's factors (the empty record when they have none).
    async fn factors(&self, user_id: &str) -> Result<FactorsRecord, StoreError>;
    /// Keep a TOTP secret waiting for its first code, replacing one waiting before.
    async fn begin_totp(&self, user_id: &str, pending: PendingTotp) -> Result<(), StoreError>;
    /// Make the waiting secret the active one, `step` its last accepted step, with a new set of
    /// recovery codes. `false` when no secret waits (nothing changes).
    async fn confirm_totp(
        &self,
        user_id: &str,
        step: u64,
        recovery: Vec<[u8; 32]>,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Accept `step` if it is later than the last accepted one, and remember it. `false` when
    /// it is not (a replay) or there is no active TOTP.
    async fn accept_totp_step(&self, user_id: &str, step: u64) -> Result<bool, StoreError>;
    /// Use the recovery code with this hash. `false` when it is unknown or used.
    async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: [u8; 32],
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Replace the recovery codes with a new set.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: Vec<[u8; 32]>,
    ) -> Result<(), StoreError>;
    /// Remove every second factor of the user (TOTP, waiting secret, recovery codes).
    async fn remove_factors(&self, user_id: &str) -> Result<(), StoreError>;
}

/// Provider identities linked to users.
#[async_trait]
pub trait Identities: Send + Sync {
    /// The identity (provider, subject) and its user.
    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(IdentityRecord, UserRecord)>, StoreError>;
    /// A user's identities.
    async fn user_identities(&self, user_id: &str) -> Result<Vec<IdentityRecord>, StoreError>;
    /// Every identity.
    async fn all_identities(&self) -> Result<Vec<IdentityRecord>, StoreError>;
    /// Link an identity to its user (no sign-in); re-linking to the same user only
    /// refreshes it.
    async fn link_identity(&self, identity: IdentityRecord) -> Result<(), WriteError>;
    /// Remove a user's link to a provider, checked against `rule` in the same transaction.
    async fn unlink_identity(
        &self,
        user_id: &str,
        provider: &str,
        rule: UnlinkRule,
    ) -> Result<Unlink, StoreError>;
}

/// Users' passkeys (WebAuthn credentials), found by credential id at sign-in.
#[async_trait]
pub trait Passkeys: Send + Sync {
    /// A user's passkeys, oldest first.
    async fn user_passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError>;
    /// The passkey with this credential id, and its user.
    async fn find_passkey(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<(PasskeyRecord, UserRecord)>, StoreError>;
    /// Store a new passkey for its user. Returns false when that credential is registered
    /// already (to anyone); [`WriteError::NotFound`] when the user is gone.
    async fn add_passkey(&self, passkey: PasskeyRecord) -> Result<bool, WriteError>;
    /// After a sign-in with it: keep the credential as updated (counter, backup state) and the
    /// time. Returns false when it was deleted meanwhile (it is not brought back).
    async fn note_passkey_use(
        &self,
        credential_id: &[u8],
        credential: String,
        at: i64,
    ) -> Result<bool, StoreError>;
    /// Delete a user's passkey by its shown id. Returns whether there was one.
    async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Delete every passkey of a user. Returns how many there were.
    async fn remove_passkeys(&self, user_id: &str) -> Result<usize, StoreError>;
}

/// The state of passkey ceremonies between start and finish: single-use, short-lived.
#[async_trait]
pub trait Challenges: Send + Sync {
    /// Keep a ceremony's state under `key` until `expires_at` (Unix seconds), replacing any
    /// state already there.
    async fn put_challenge(
        &self,
        key: [u8; 32],
        state: Vec<u8>,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Take a ceremony's state out: it can never be taken again. `None` when unknown, taken
    /// already, or expired at `now`.
    async fn take_challenge(&self, key: [u8; 32], now: i64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Delete at most `limit` states expired at `now`. Returns how many.
    async fn sweep_expired_challenges(&self, now: i64, limit: usize) -> Result<usize, StoreError>;
}

/// API tokens (stored by the SHA-256 of the token).
#[async_trait]
pub trait ApiTokens: Send + Sync {
    /// Store a new token for its user, who may hold at most `max_per_user`
    /// ([`WriteError::TooMany`] beyond; [`WriteError::NotFound`] when the user is gone, not
    /// active or past their expiry, as decided in the write).
    async fn create_api_token(
        &self,
        key: SessionKey,
        token: ApiTokenRecord,
        max_per_user: usize,
    ) -> Result<(), WriteError>;
    /// The token with this key and its user: the token check's one read.
    async fn find_api_token(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(ApiTokenRecord, UserRecord)>, StoreError>;
    /// A user's tokens, oldest first.
    async fn user_api_tokens(&self, user_id: &str) -> Result<Vec<ApiTokenRecord>, StoreError>;
    /// Delete one of a user's tokens by its shown id. Returns whether there was one.
    async fn delete_api_token(&self, user_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Record last-use times (batched, advisory); never brings back a deleted token.
    async fn note_api_token_use(&self, uses: Vec<(SessionKey, i64)>) -> Result<usize, StoreError>;
}

/// Settings overrides (`POST /auth/config/update`).
#[async_trait]
pub trait Settings: Send + Sync {
    /// The stored overrides.
    async fn overrides(&self) -> Result<StoredOverrides, StoreError>;
    /// Change overrides in one transaction; returns them afterwards.
    async fn set_overrides(
        &self,
        registration: Override<String>,
        native_signin: Override<bool>,
    ) -> Result<StoredOverrides, StoreError>;
}

/// The audit log.
#[async_trait]
pub trait Audit: Send + Sync {
    /// Append entries in order, in one transaction.
    async fn append_audit(&self, entries: Vec<AuditRecord>) -> Result<(), StoreError>;
    /// Entries newest first, below `before` (an entry id), at most `limit`.
    async fn list_audit(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>, StoreError>;
    /// Delete at most `limit` entries older than `cutoff`, oldest first, always keeping the
    /// newest. Returns how many.
    async fn sweep_audit(&self, cutoff: i64, limit: usize) -> Result<usize, StoreError>;
}

/// Counters for lockout, failure limits and mail limits.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Record one event of `key` at `now`, keeping at most `keep` recent ones, and return the
    /// events within the last `window` seconds (the new one included).
    async fn add_event(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        window: i64,
        keep: u32,
    ) -> Result<EventWindow, StoreError>;
    /// The events of `key` within the last `window` seconds.
    async fn count(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        window: i64,
    ) -> Result<EventWindow, StoreError>;
    /// Forget `key`'s events (and lock).
    async fn clear(&self, kind: CounterKind, key: &str) -> Result<(), StoreError>;
    /// Record an event only if every limit still allows one (atomically).
    async fn admit(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        limits: &[Limit],
    ) -> Result<Admission, StoreError>;
    /// Lock `key` until `until` (Unix seconds).
    async fn lock(&self, kind: CounterKind, key: &str, until: i64) -> Result<(), StoreError>;
    /// When `key`'s lock ends, while it is locked at `now`.
    async fn locked_until(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError>;
}

/// Sign-ins waiting for a provider's answer (a callback may reach another instance).
#[async_trait]
pub trait SignInFlows: Send + Sync {
    /// Keep a flow under the hash of its state. A client at its limit loses its oldest; when
    /// full, expired flows go first, then the oldest flow of the busiest client.
    async fn put_flow(
        &self,
        key: [u8; 32],
        flow: FlowRecord,
        limits: FlowLimits,
    ) -> Result<(), StoreError>;
    /// Take a flow out: it can never be taken again.
    async fn take_flow(&self, key: [u8; 32]) -> Result<Option<FlowRecord>, StoreError>;
}

/// A backend: every capability, its health, and its change announcements. Counters and
/// waiting sign-ins are reached through it, so a single-process backend can keep them in
/// memory while a shared one stores them.
#[async_trait]
pub trait Backend:
    Users
    + Sessions
    + Invites
    + MailTokens
    + Identities
    + Settings
    + Audit
    + SecondFactors
    + Passkeys
    + Challenges
    + ApiTokens
{
    /// Whether the database answers reads and writes (for `/auth/health`).
    async fn healthy(&self) -> bool;
    /// Try to get a failed database working again; returns whether it works now.
    async fn recover(&self) -> bool;
    /// Where committed changes are announced.
    fn events(&self) -> &Events;
    /// The counters the limits use.
    fn counters(&self) -> &dyn Counters;
    /// The sign-ins waiting for a provider.
    fn flows(&self) -> &dyn SignInFlows;
    /// Whether what was read may be kept in memory now: a shared backend says no while it
    /// cannot hear other instances' changes.
    fn may_keep_copies(&self) -> bool {
        true
    }
    /// Everything durable, read in one transaction (for moving to another backend).
    async fn export(&self) -> Result<Snapshot, StoreError>;
    /// Store `snapshot` in one transaction, refused ([`ImportError::NotEmpty`]) unless this
    /// store holds nothing durable yet. Nothing is announced: no copy can be kept of what
    /// was not there.
    async fn import(&self, snapshot: Snapshot) -> Result<(), ImportError>;
}

/// Where the state is kept, as the config names it.
#[derive(Debug, Clone, Copy)]
pub enum Location<'a> {
    /// The embedded redb file.
    Redb {
        path: &'a std::path::Path,
        cache_bytes: usize,
    },
    /// A PostgreSQL database (the URL may hold a password).
    Postgres { url: &'a str, pool_size: usize },
}

/// The storage backend chosen at start; cheap to clone.
#[derive(Clone)]
pub struct Store(Arc<dyn Backend>);

impl Store {
    /// Use `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Store {
        Store(backend)
    }

    /// Remove every second factor of a user (authenticator app, recovery codes, passkeys) and
    /// end their sessions, for someone who lost them all. Returns (passkeys removed, sessions
    /// ended).
    pub async fn reset_second_factors(&self, user_id: &str) -> Result<(usize, usize), StoreError> {
        self.remove_factors(user_id).await?;
        let passkeys = self.remove_passkeys(user_id).await?;
        let revoked = self.revoke_user_sessions(user_id, None).await?;
        Ok((passkeys, revoked))
    }

    /// The backend `config` names: the redb file, or the PostgreSQL database (connected, its
    /// schema migrated, listening for other instances' changes).
    pub fn open(location: Location<'_>) -> Result<Store, OpenError> {
        match location {
            Location::Postgres { url, pool_size } => Ok(Store(Arc::new(
                self::postgres::PgStore::open(url, pool_size)?,
            ))),
            Location::Redb { path, cache_bytes } => Store::open_redb(path, cache_bytes),
        }
    }

    /// The embedded redb backend on the file at `path`.
    pub fn open_redb(path: &std::path::Path, cache_bytes: usize) -> Result<Store, OpenError> {
        Ok(Store(Arc::new(self::redb::RedbStore::open_with_cache(
            path,
            cache_bytes,
        )?)))
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}
