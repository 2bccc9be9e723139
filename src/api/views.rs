//! JSON views of stored records. No hash, token or counter ever appears here.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::store::UserRecord;

/// RFC 3339 UTC for Unix seconds.
pub fn rfc3339(secs: i64) -> Value {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map(Value::String)
        .unwrap_or(Value::Null)
}

/// A sign-in's answer: the user (with this sign-in as their last) and the session's expiry.
pub fn signed_in(u: &UserRecord, now: i64, expires_at: i64) -> Value {
    let mut shown = u.clone();
    shown.last_login_at = Some(now);
    json!({"user": user(&shown), "session": {"expiresAt": rfc3339(expires_at)}})
}

/// The public shape of a user.
pub fn user(u: &UserRecord) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "username": u.username,
        "fullName": u.full_name,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "role": u.role.as_str(),
        "groups": u.groups,
        "status": u.status.as_str(),
        "emailVerified": u.email_verified,
        "createdAt": rfc3339(u.created_at),
        "updatedAt": rfc3339(u.updated_at),
        "lastLoginAt": u.last_login_at.map(rfc3339).unwrap_or(Value::Null),
    })
}

/// A linked provider identity as the API shows it.
pub fn identity(i: &crate::store::IdentityRecord) -> Value {
    json!({
        "provider": i.provider,
        "subject": i.subject,
        "email": i.email,
        "linkedAt": rfc3339(i.linked_at),
        "lastLoginAt": i.last_login_at.map(rfc3339),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), json!("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(1_700_000_000), json!("2023-11-14T22:13:20Z"));
    }
}
