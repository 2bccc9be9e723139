//! Who must give a second factor, and how long a half-open session (a right password, the
//! factor still to come) may wait for it.

use crate::config::SecondFactorPolicy;
use crate::store::{FactorsRecord, Role, SessionStage};

/// A half-open session lives at most this long.
pub const HALF_OPEN_SECS: i64 = 300;

/// What a session opened by a right password (or a provider) still lacks: the factor of a
/// user who has one; enrolling one, when the policy requires it of this user and they have
/// none; nothing otherwise.
pub fn stage_after_first_factor(
    policy: SecondFactorPolicy,
    role: Role,
    factors: &FactorsRecord,
) -> SessionStage {
    if factors.any() {
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
pub fn methods(factors: &FactorsRecord) -> Vec<&'static str> {
    let mut out = Vec::new();
    if factors.totp.is_some() {
        out.push("totp");
    }
    if factors.recovery_left() > 0 {
        out.push("recovery");
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
            let f = if has { &totp } else { &none };
            assert_eq!(
                stage_after_first_factor(policy, role, f),
                want,
                "{policy:?} {role:?} {has}"
            );
        }
        assert_eq!(methods(&totp), vec!["totp", "recovery"]);
        let amr = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(gave_second_factor(&amr(&["pwd", "otp"])));
        assert!(gave_second_factor(&amr(&["provider:corp", "recovery"])));
        assert!(!gave_second_factor(&amr(&["pwd"])));
        assert!(!gave_second_factor(&amr(&["provider:corp"])));
        assert!(!gave_second_factor(&amr(&["provider:otp"])));
        assert!(methods(&none).is_empty());
    }
}
