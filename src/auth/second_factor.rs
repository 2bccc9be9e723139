//! Who must give a second factor, and how long a half-open session (a right password, the
//! factor still to come) may wait for it.

use crate::config::SecondFactorPolicy;
use crate::store::{FactorsRecord, Role, SessionStage};

/// A half-open session lives at most this long.
pub const HALF_OPEN_SECS: i64 = 300;

/// The second factors a user has: their stored TOTP and recovery codes, and how many
/// passkeys.
#[derive(Debug, Clone, Copy)]
pub struct Enrolled<'a> {
    pub factors: &'a FactorsRecord,
    pub passkeys: usize,
}

impl Enrolled<'_> {
    /// Whether there is a second factor to ask for.
    pub fn any(&self) -> bool {
        self.factors.any() || self.passkeys > 0
    }
}

/// What a session opened by a right password (or a provider) still lacks: the factor of a
/// user who has one; enrolling one, when the policy requires it of this user and they have
/// none; nothing otherwise.
pub fn stage_after_first_factor(
    policy: SecondFactorPolicy,
    role: Role,
    enrolled: Enrolled<'_>,
) -> SessionStage {
    if enrolled.any() {
        return SessionStage::SecondFactor;
    }
    let required = match policy {
        SecondFactorPolicy::Optional => false,
        SecondFactorPolicy::Required => true,
        SecondFactorPolicy::RequiredForAdmins => matches!(role, Role::Owner | Role::Admin),
    };
    if required {
        SessionStage::Enrol
    } else {
        SessionStage::Complete
    }
}

/// Whether a session's methods include a second factor (a code, a recovery code, a passkey).
pub fn gave_second_factor(amr: &[String]) -> bool {
    amr.iter()
        .any(|m| matches!(m.as_str(), "otp" | "recovery" | "passkey"))
}

/// The second factors a user can give now, as the login answer names them.
pub fn methods(enrolled: Enrolled<'_>) -> Vec<&'static str> {
    let mut out = Vec::new();
    if enrolled.factors.totp.is_some() {
        out.push("totp");
    }
    if enrolled.factors.recovery_left() > 0 {
        out.push("recovery");
    }
    if enrolled.passkeys > 0 {
        out.push("passkey");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RecoveryCode, TotpFactor};

    #[test]
    fn who_must_give_or_enrol_a_second_factor() {
        use SecondFactorPolicy::{Optional, Required, RequiredForAdmins};
        use SessionStage::{Complete, Enrol, SecondFactor};
        let none = FactorsRecord::default();
        let totp = FactorsRecord {
            totp: Some(TotpFactor {
                sealed_secret: vec![1],
                enabled_at: 0,
                last_step: 0,
            }),
            pending_totp: None,
            recovery: vec![RecoveryCode {
                hash: [0; 32],
                used_at: None,
            }],
        };
        // (policy, role, has a factor) → stage
        let cases = [
            (Optional, Role::User, false, Complete),
            (Optional, Role::Owner, false, Complete),
            (Optional, Role::User, true, SecondFactor),
            (Required, Role::User, false, Enrol),
            (Required, Role::User, true, SecondFactor),
            (RequiredForAdmins, Role::User, false, Complete),
            (RequiredForAdmins, Role::Admin, false, Enrol),
            (RequiredForAdmins, Role::Owner, false, Enrol),
            (RequiredForAdmins, Role::Owner, true, SecondFactor),
        ];
        for (policy, role, has, want) in cases {
            let factors = if has { &totp } else { &none };
            let enrolled = Enrolled {
                factors,
                passkeys: 0,
            };
            assert_eq!(
                stage_after_first_factor(policy, role, enrolled),
                want,
                "{policy:?} {role:?} {has}"
            );
        }
        let only_passkey = Enrolled {
            factors: &none,
            passkeys: 1,
        };
        assert_eq!(
            stage_after_first_factor(Optional, Role::User, only_passkey),
            SecondFactor
        );
        assert_eq!(methods(only_passkey), vec!["passkey"]);
        let with_app = Enrolled {
            factors: &totp,
            passkeys: 0,
        };
        assert_eq!(methods(with_app), vec!["totp", "recovery"]);
        let amr = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(gave_second_factor(&amr(&["pwd", "otp"])));
        assert!(gave_second_factor(&amr(&["provider:corp", "recovery"])));
        assert!(!gave_second_factor(&amr(&["pwd"])));
        assert!(!gave_second_factor(&amr(&["provider:corp"])));
        assert!(!gave_second_factor(&amr(&["provider:otp"])));
        let nothing = Enrolled {
            factors: &none,
            passkeys: 0,
        };
        assert!(methods(nothing).is_empty());
    }
}
