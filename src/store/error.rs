//! What can go wrong in storage, as the rest of the program sees it (no engine types).

use std::path::PathBuf;

/// A storage failure as the request path sees it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be read or written (I/O, full disk, closed, unreachable).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Why the database could not be opened at start-up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the folder {0}: {1}")]
    CreateDir(PathBuf, std::io::Error),
    #[error(
        "the database {0} is in use by another process (is an authgate server running? stop it, or run this command while it is stopped)"
    )]
    InUse(PathBuf),
    #[error(
        "the database {0} is corrupt or not an authgate database ({1}); refusing to start. The file was left untouched: restore it from a backup, or move it away to start empty"
    )]
    Corrupt(PathBuf, String),
    #[error("cannot open the database {0}: {1}")]
    Other(PathBuf, String),
    /// The shared database could not be reached or used (the message never holds its URL).
    #[error("cannot use the PostgreSQL database: {0}")]
    Database(String),
}

/// Why a write that creates or changes accounts, sessions or links was refused.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("email taken")]
    EmailTaken,
    /// The address looks like another account's (same UTS #39 skeleton).
    #[error("email looks like another account's")]
    EmailConfusable,
    #[error("username taken")]
    UsernameTaken,
    #[error("setup already done")]
    AlreadySetup,
    #[error("no such user")]
    NotFound,
    #[error("the last owner cannot be demoted, disabled or deleted")]
    LastOwner,
    /// The invite is unknown, used up or expired.
    #[error("invite unknown, used up or expired")]
    InviteInvalid,
    /// The provider identity is already linked to an account (another one, when linking).
    #[error("this identity is already linked to an account")]
    IdentityTaken,
    /// A per-user limit (of API tokens) is reached.
    #[error("too many")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}
