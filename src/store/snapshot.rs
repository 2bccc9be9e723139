//! A whole store as plain records, for moving it to another backend (`authgate migrate-store`):
//! every backend exports one, read in one transaction, and imports one into an empty store in
//! one transaction, keeping its own indexes.
//!
//! Everything durable is copied: users (password hashes and every field), retired usernames,
//! the owner flag, settings overrides, sessions (under the expiry they are indexed by, so they
//! end when they would have), invites (by the hash of their code; the code itself was never
//! stored), mailed tokens, provider identities, second factors (secrets stay sealed: the
//! target must use the same `[security] encryption_key_file`), passkeys, API tokens and the
//! audit log with its ids (new entries continue after the highest). Short-lived state is not:
//! passkey ceremonies in progress, counters (lockout, failure and mail limits) and sign-ins
//! waiting for a provider; whoever was in the middle of one starts it again.

use std::collections::HashSet;

use super::records::{
    ApiTokenRecord, AuditRecord, FactorsRecord, IdentityRecord, InviteRecord, PasskeyRecord,
    SessionRecord, TokenRecord, UserRecord,
};
use super::{SessionKey, StoreError, StoredOverrides, WriteError};

/// The names of what a snapshot holds, as counts, differences and refusals show them.
pub(crate) mod kind {
    pub const USERS: &str = "users";
    pub const RETIRED_USERNAMES: &str = "retired usernames";
    pub const OWNER_FLAG: &str = "owner flag";
    pub const OVERRIDES: &str = "settings overrides";
    /// Where the owner flag and the overrides are kept.
    pub const SETTINGS: &str = "settings (the owner flag or overrides)";
    pub const SESSIONS: &str = "sessions";
    pub const INVITES: &str = "invites";
    pub const MAIL_TOKENS: &str = "mailed tokens";
    pub const IDENTITIES: &str = "provider identities";
    pub const FACTORS: &str = "second factors";
    pub const PASSKEYS: &str = "passkeys";
    pub const API_TOKENS: &str = "API tokens";
    pub const AUDIT: &str = "audit entries";
}

/// Everything durable a store holds, each kind in key order ([`Snapshot::sorted`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// By id.
    pub users: Vec<UserRecord>,
    /// (username, the user who gave it up), by username.
    pub retired_usernames: Vec<(String, String)>,
    /// Whether an owner was ever stored (setup is done).
    pub owner_exists: bool,
    pub overrides: StoredOverrides,
    /// By key; each record carries the expiry it is indexed (and swept) by.
    pub sessions: Vec<(SessionKey, SessionRecord)>,
    /// By the SHA-256 of the code.
    pub invites: Vec<(SessionKey, InviteRecord)>,
    /// By the SHA-256 of the token.
    pub mail_tokens: Vec<(SessionKey, TokenRecord)>,
    /// By (provider, subject).
    pub identities: Vec<IdentityRecord>,
    /// (user id, factors), by user id; users without any are left out.
    pub factors: Vec<(String, FactorsRecord)>,
    /// By credential id.
    pub passkeys: Vec<PasskeyRecord>,
    /// By the SHA-256 of the token.
    pub api_tokens: Vec<(SessionKey, ApiTokenRecord)>,
    /// By id.
    pub audit: Vec<(u64, AuditRecord)>,
}

/// Why a snapshot was not imported; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The target holds records already (of the kind named).
    #[error(
        "the target store is not empty (it has {0}); a store is copied only into an empty one"
    )]
    NotEmpty(&'static str),
    /// The snapshot breaks a rule of the store (records of a user it lacks, a taken email).
    #[error("the copy does not fit the target store: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImportError {
    /// A write refused while importing `what`: a storage failure stays one.
    pub(crate) fn refused(what: &str, e: WriteError) -> ImportError {
        match e {
            WriteError::Store(e) => ImportError::Store(e),
            other => ImportError::Inconsistent(format!("{what}: {other}")),
        }
    }
}

impl Snapshot {
    /// Each kind in key order, so that snapshots of equal stores are equal.
    pub fn sorted(mut self) -> Snapshot {
        self.users.sort_by(|a, b| a.id.cmp(&b.id));
        self.retired_usernames.sort();
        self.sessions.sort_by_key(|(k, _)| *k);
        self.invites.sort_by_key(|(k, _)| *k);
        self.mail_tokens.sort_by_key(|(k, _)| *k);
        self.identities
            .sort_by(|a, b| (&a.provider, &a.subject).cmp(&(&b.provider, &b.subject)));
        self.factors.retain(|(_, f)| *f != FactorsRecord::default());
        self.factors.sort_by(|a, b| a.0.cmp(&b.0));
        self.passkeys
            .sort_by(|a, b| a.credential_id.cmp(&b.credential_id));
        self.api_tokens.sort_by_key(|(k, _)| *k);
        self.audit.sort_by_key(|(id, _)| *id);
        self
    }

    /// How many records of each kind it holds (the owner flag and overrides aside).
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            (kind::USERS, self.users.len()),
            (kind::RETIRED_USERNAMES, self.retired_usernames.len()),
            (kind::SESSIONS, self.sessions.len()),
            (kind::INVITES, self.invites.len()),
            (kind::MAIL_TOKENS, self.mail_tokens.len()),
            (kind::IDENTITIES, self.identities.len()),
            (kind::FACTORS, self.factors.len()),
            (kind::PASSKEYS, self.passkeys.len()),
            (kind::API_TOKENS, self.api_tokens.len()),
            (kind::AUDIT, self.audit.len()),
        ]
    }

    /// The kinds in which `other` differs from this one (both [`Snapshot::sorted`]).
    pub fn differences(&self, other: &Snapshot) -> Vec<&'static str> {
        [
            (kind::USERS, self.users == other.users),
            (
                kind::RETIRED_USERNAMES,
                self.retired_usernames == other.retired_usernames,
            ),
            (kind::OWNER_FLAG, self.owner_exists == other.owner_exists),
            (kind::OVERRIDES, self.overrides == other.overrides),
            (kind::SESSIONS, self.sessions == other.sessions),
            (kind::INVITES, self.invites == other.invites),
            (kind::MAIL_TOKENS, self.mail_tokens == other.mail_tokens),
            (kind::IDENTITIES, self.identities == other.identities),
            (kind::FACTORS, self.factors == other.factors),
            (kind::PASSKEYS, self.passkeys == other.passkeys),
            (kind::API_TOKENS, self.api_tokens == other.api_tokens),
            (kind::AUDIT, self.audit == other.audit),
        ]
        .into_iter()
        .filter(|(_, same)| !same)
        .map(|(kind, _)| kind)
        .collect()
    }

    /// Records belonging to a user the snapshot lacks, per kind (none where there are none).
    /// Nothing can reach them; a race of a deletion with an enrolment may leave a second
    /// factor behind. Mailed tokens and retired usernames may outlive their user and are not
    /// counted.
    pub fn orphans(&self) -> Vec<(&'static str, usize)> {
        let known: HashSet<&str> = self.users.iter().map(|u| u.id.as_str()).collect();
        let lost = |owners: Vec<&str>| owners.iter().filter(|id| !known.contains(*id)).count();
        [
            (
                kind::SESSIONS,
                lost(self.sessions.iter().map(|(_, s)| &*s.user_id).collect()),
            ),
            (
                kind::IDENTITIES,
                lost(self.identities.iter().map(|i| &*i.user_id).collect()),
            ),
            (
                kind::FACTORS,
                lost(self.factors.iter().map(|(id, _)| &**id).collect()),
            ),
            (
                kind::PASSKEYS,
                lost(self.passkeys.iter().map(|p| &*p.user_id).collect()),
            ),
            (
                kind::API_TOKENS,
                lost(self.api_tokens.iter().map(|(_, t)| &*t.user_id).collect()),
            ),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }

    /// Leave out the records [`Snapshot::orphans`] counts; returns how many there were.
    pub fn drop_orphans(&mut self) -> usize {
        let before = self.records();
        let known: HashSet<String> = self.users.iter().map(|u| u.id.clone()).collect();
        self.sessions.retain(|(_, s)| known.contains(&s.user_id));
        self.identities.retain(|i| known.contains(&i.user_id));
        self.factors.retain(|(id, _)| known.contains(id));
        self.passkeys.retain(|p| known.contains(&p.user_id));
        self.api_tokens.retain(|(_, t)| known.contains(&t.user_id));
        before - self.records()
    }

    /// Refuse a snapshot with [`Snapshot::orphans`]: both backends import only what the
    /// shared one's references allow.
    pub(crate) fn check(&self) -> Result<(), ImportError> {
        let orphans = self.orphans();
        if orphans.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = orphans.iter().map(|(k, n)| format!("{n} {k}")).collect();
        Err(ImportError::Inconsistent(format!(
            "{} belong to users it does not hold",
            list.join(", ")
        )))
    }

    /// Records of every kind together.
    fn records(&self) -> usize {
        self.counts().iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests;
