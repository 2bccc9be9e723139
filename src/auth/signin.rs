//! The one sign-in policy: may this person create an account (registration mode, invite,
//! provider), and may this user sign in (status, expiry, verification, `native_signin`).
//! Password and provider sign-in both ask here.

use crate::config::Registration;
use crate::error::ApiError;
use crate::store::{Role, UserRecord, UserStatus};

/// How someone signs up or in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way<'a> {
    /// With a password (the API or the pages).
    Password,
    /// Through a sign-in provider (`display_name` for messages).
    Provider {
        display_name: &'a str,
        auto_register: bool,
    },
}

/// What a sign-up carries as an invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invite {
    None,
    /// A code that is usable now (it is checked, and counted, again in the write).
    Usable,
    /// A code that is unknown, used up or expired.
    Unusable,
}

/// The settings a sign-up is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// Setup created the owner.
    pub owner_exists: bool,
    pub registration: Registration,
    pub native_signin: bool,
    pub require_email_verification: bool,
}

/// The status a new account gets, or why it may not be created.
pub fn may_register(gate: &Gate, way: Way<'_>, invite: Invite) -> Result<UserStatus, ApiError> {
    match way {
        Way::Provider {
            display_name,
            auto_register: false,
        } => {
            return Err(ApiError::Forbidden(format!(
                "no account here is linked to this {display_name} account; ask an administrator"
            )))
        }
        Way::Password if gate.owner_exists && !gate.native_signin => {
            return Err(ApiError::Forbidden(
                "accounts with a password are disabled here; sign in with a provider".into(),
            ))
        }
        _ => {}
    }
    // Setup creates the owner; a registration first would leave the gateway ownerless.
    if !gate.owner_exists {
        return Err(ApiError::SetupRequired);
    }
    match (gate.registration, invite) {
        (Registration::Closed, _) => Err(ApiError::RegistrationDisabled),
        (_, Invite::Usable) => Ok(UserStatus::Active),
        (Registration::Invite, _) => Err(ApiError::InviteRequired),
        (_, Invite::Unusable) => Err(ApiError::InvalidToken),
        (Registration::Open, Invite::None) => Ok(UserStatus::Active),
        (Registration::Approval, Invite::None) => Ok(UserStatus::Pending),
    }
}

/// Whether password sign-in is open to `user`: always with `native_signin` on, else only for
/// the owner (who must never be locked out of their own gateway).
pub fn password_sign_in_open(native_signin: bool, user: &UserRecord) -> bool {
    native_signin || user.role == Role::Owner
}

/// Whether `user` may sign in at `now` (the password, or the provider's answer, was right).
pub fn may_sign_in(gate: &Gate, way: Way<'_>, user: &UserRecord, now: i64) -> Result<(), ApiError> {
    // A service account is reached through its API tokens only, never by a person.
    if user.role == Role::Service {
        return Err(ApiError::Forbidden(
            "service accounts cannot sign in; they use API tokens".into(),
        ));
    }
    match user.status {
        UserStatus::Active if user.expires_at.is_some_and(|t| t <= now) => {
            return Err(ApiError::AccountDisabled)
        }
        UserStatus::Active => {}
        UserStatus::Pending => return Err(ApiError::AccountPending),
        UserStatus::Disabled => return Err(ApiError::AccountDisabled),
    }
    if gate.require_email_verification && !user.email_verified && user.role != Role::Owner {
        return Err(ApiError::EmailNotVerified);
    }
    if way == Way::Password && !password_sign_in_open(gate.native_signin, user) {
        return Err(ApiError::Forbidden(
            "password sign-in is disabled; use a sign-in provider".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(owner: bool, mode: Registration, native: bool) -> Gate {
        Gate {
            owner_exists: owner,
            registration: mode,
            native_signin: native,
            require_email_verification: false,
        }
    }

    fn code(r: &Result<UserStatus, ApiError>) -> &'static str {
        match r {
            Ok(UserStatus::Active) => "active",
            Ok(UserStatus::Pending) => "pending",
            Ok(UserStatus::Disabled) => "disabled",
            Err(e) => e.code(),
        }
    }

    const PROVIDER: Way<'static> = Way::Provider {
        display_name: "Corp",
        auto_register: true,
    };

    #[test]
    fn registration_matrix() {
        use super::Invite::{None as NoInvite, Unusable, Usable};
        use Registration::{Approval, Closed, Open};
        const INVITE: Registration = Registration::Invite;
        // (owner exists, mode, native sign-in, way, invite) → outcome
        let cases: &[(bool, Registration, bool, Way, super::Invite, &str)] = &[
            (false, Open, true, Way::Password, NoInvite, "SETUP_REQUIRED"),
            (false, Open, true, PROVIDER, NoInvite, "SETUP_REQUIRED"),
            (false, INVITE, true, Way::Password, Usable, "SETUP_REQUIRED"),
            (true, Open, true, Way::Password, NoInvite, "active"),
            (true, Approval, true, Way::Password, NoInvite, "pending"),
            (
                true,
                INVITE,
                true,
                Way::Password,
                NoInvite,
                "INVITE_REQUIRED",
            ),
            (
                true,
                Closed,
                true,
                Way::Password,
                NoInvite,
                "REGISTRATION_DISABLED",
            ),
            (true, Open, true, Way::Password, Usable, "active"),
            (true, Approval, true, Way::Password, Usable, "active"),
            (true, INVITE, true, Way::Password, Usable, "active"),
            (
                true,
                Closed,
                true,
                Way::Password,
                Usable,
                "REGISTRATION_DISABLED",
            ),
            (true, Open, true, Way::Password, Unusable, "INVALID_TOKEN"),
            (
                true,
                Approval,
                true,
                Way::Password,
                Unusable,
                "INVALID_TOKEN",
            ),
            (
                true,
                INVITE,
                true,
                Way::Password,
                Unusable,
                "INVITE_REQUIRED",
            ),
            (true, Open, false, Way::Password, NoInvite, "FORBIDDEN"),
            (true, Open, false, Way::Password, Usable, "FORBIDDEN"),
            (true, Open, false, PROVIDER, NoInvite, "active"),
            (true, Approval, true, PROVIDER, NoInvite, "pending"),
            (true, INVITE, true, PROVIDER, NoInvite, "INVITE_REQUIRED"),
            (true, INVITE, true, PROVIDER, Usable, "active"),
            (
                true,
                Closed,
                true,
                PROVIDER,
                Usable,
                "REGISTRATION_DISABLED",
            ),
        ];
        for (owner, mode, native, way, invite, want) in cases {
            let got = may_register(&gate(*owner, *mode, *native), *way, *invite);
            assert_eq!(
                code(&got),
                *want,
                "{owner} {mode:?} {native} {way:?} {invite:?}"
            );
        }
        let manual = Way::Provider {
            display_name: "Corp",
            auto_register: false,
        };
        let refused = may_register(&gate(true, Open, true), manual, NoInvite);
        assert!(
            matches!(&refused, Err(ApiError::Forbidden(m)) if m.contains("Corp")),
            "{refused:?}"
        );
    }

    fn user(role: Role, status: UserStatus, verified: bool, expires_at: Option<i64>) -> UserRecord {
        UserRecord {
            email_verified: verified,
            password_hash: Some("h".into()),
            expires_at,
            ..UserRecord::new("u", "u@example.com", role, status, 0)
        }
    }

    /// (role, status, verified, expires, verification required, native, way) → outcome
    type GateCase = (
        Role,
        UserStatus,
        bool,
        Option<i64>,
        bool,
        bool,
        Way<'static>,
        &'static str,
    );

    #[test]
    fn sign_in_gates() {
        use Role::*;
        use UserStatus::*;
        let cases: &[GateCase] = &[
            (User, Active, false, None, false, true, Way::Password, "ok"),
            // Service accounts never sign in, whatever the way.
            (
                Service,
                Active,
                true,
                None,
                false,
                true,
                Way::Password,
                "FORBIDDEN",
            ),
            (
                Service,
                Active,
                true,
                None,
                false,
                true,
                PROVIDER,
                "FORBIDDEN",
            ),
            (
                User,
                Pending,
                false,
                None,
                false,
                true,
                Way::Password,
                "ACCOUNT_PENDING",
            ),
            (
                User,
                Disabled,
                false,
                None,
                false,
                true,
                Way::Password,
                "ACCOUNT_DISABLED",
            ),
            (
                User,
                Active,
                false,
                Some(100),
                false,
                true,
                Way::Password,
                "ACCOUNT_DISABLED",
            ),
            (
                User,
                Active,
                false,
                Some(101),
                false,
                true,
                Way::Password,
                "ok",
            ),
            (
                User,
                Active,
                false,
                None,
                true,
                true,
                Way::Password,
                "EMAIL_NOT_VERIFIED",
            ),
            (User, Active, true, None, true, true, Way::Password, "ok"),
            (Owner, Active, false, None, true, true, Way::Password, "ok"),
            (
                User,
                Active,
                true,
                None,
                false,
                false,
                Way::Password,
                "FORBIDDEN",
            ),
            (
                Admin,
                Active,
                true,
                None,
                false,
                false,
                Way::Password,
                "FORBIDDEN",
            ),
            (Owner, Active, true, None, false, false, Way::Password, "ok"),
            (User, Active, true, None, false, false, PROVIDER, "ok"),
            (
                User,
                Pending,
                true,
                None,
                false,
                true,
                PROVIDER,
                "ACCOUNT_PENDING",
            ),
            (
                User,
                Active,
                false,
                None,
                true,
                true,
                PROVIDER,
                "EMAIL_NOT_VERIFIED",
            ),
            (
                Owner,
                Disabled,
                true,
                None,
                false,
                true,
                PROVIDER,
                "ACCOUNT_DISABLED",
            ),
        ];
        for (role, status, verified, expires, verify, native, way, want) in cases {
            let g = Gate {
                owner_exists: true,
                registration: Registration::Open,
                native_signin: *native,
                require_email_verification: *verify,
            };
            let got = may_sign_in(&g, *way, &user(*role, *status, *verified, *expires), 100);
            let got = match got {
                Ok(()) => "ok",
                Err(e) => e.code(),
            };
            assert_eq!(
                got, *want,
                "{role:?} {status:?} {verified} {expires:?} {verify} {native} {way:?}"
            );
        }
    }
}
