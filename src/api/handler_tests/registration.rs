//! `POST /register` in every registration mode, with and without an invite: the answer, the
//! session it opens, and the account stored.

use serde_json::json;

use super::{Harness, PASSWORD};
use crate::store::UserStatus;

/// The invite a case presents.
#[derive(Debug, Clone, Copy)]
enum Invite {
    None,
    /// Fresh, one use.
    Usable,
    /// Its one use already taken.
    UsedUp,
    /// Never issued.
    Unknown,
}

/// The outcome a case expects: created with this status (signed in when active), or refused
/// with this status and code.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Created(UserStatus),
    Refused(u16, &'static str),
}

async fn invite_code(h: &Harness, owner: &str, invite: Invite) -> Option<String> {
    let issue = || async {
        let r = h
            .post("/admin/invites", &json!({"groups": ["staff"]}), Some(owner))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["data"]["code"].as_str().map(str::to_string)
    };
    match invite {
        Invite::None => None,
        Invite::Usable => issue().await,
        Invite::UsedUp => {
            let code = issue().await?;
            let r = h
                .post(
                    &format!("/register?invite={code}"),
                    &json!({"email": "first@example.com", "password": PASSWORD}),
                    None,
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.body);
            Some(code)
        }
        Invite::Unknown => Some("not-an-issued-code-0123456789".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_matrix() {
    use Outcome::{Created, Refused};
    use UserStatus::{Active, Pending};
    // (mode, invite) → outcome
    let cases = [
        ("open", Invite::None, Created(Active)),
        ("open", Invite::Usable, Created(Active)),
        ("open", Invite::UsedUp, Refused(400, "INVALID_TOKEN")),
        ("open", Invite::Unknown, Refused(400, "INVALID_TOKEN")),
        ("approval", Invite::None, Created(Pending)),
        ("approval", Invite::Usable, Created(Active)),
        ("approval", Invite::UsedUp, Refused(400, "INVALID_TOKEN")),
        ("invite", Invite::None, Refused(403, "INVITE_REQUIRED")),
        ("invite", Invite::Usable, Created(Active)),
        ("invite", Invite::UsedUp, Refused(403, "INVITE_REQUIRED")),
        ("invite", Invite::Unknown, Refused(403, "INVITE_REQUIRED")),
        (
            "closed",
            Invite::None,
            Refused(403, "REGISTRATION_DISABLED"),
        ),
        (
            "closed",
            Invite::Usable,
            Refused(403, "REGISTRATION_DISABLED"),
        ),
    ];
    for (mode, invite, want) in cases {
        let h = Harness::new(&format!("[auth]\nregistration = \"{mode}\"\n")).await;
        let owner = h.owner().await;
        let code = invite_code(&h, &owner, invite).await;
        let path = match &code {
            Some(c) => format!("/register?invite={c}"),
            None => "/register".into(),
        };
        let email = "new@example.com";
        let r = h
            .post(&path, &json!({"email": email, "password": PASSWORD}), None)
            .await;
        let case = format!("{mode} {invite:?}: {}", r.body);
        let stored = h.stored(email).await;
        match want {
            Created(status) => {
                assert_eq!(r.status, 201, "{case}");
                assert_eq!(
                    r.json()["data"]["user"]["status"],
                    status.as_str(),
                    "{case}"
                );
                let user = stored.unwrap_or_else(|| panic!("not stored: {case}"));
                assert_eq!(user.status, status, "{case}");
                // Signed in at once only when the account may sign in.
                assert_eq!(r.session_cookie().is_some(), status == Active, "{case}");
                let groups: &[&str] = match invite {
                    Invite::Usable => &["staff"],
                    _ => &[],
                };
                assert_eq!(user.groups, groups, "the invite's groups: {case}");
            }
            Refused(status, code) => {
                assert_eq!((r.status, r.code().as_str()), (status, code), "{case}");
                assert!(stored.is_none(), "nothing stored: {case}");
                assert!(r.session_cookie().is_none(), "{case}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_registers_before_the_owner_exists() {
    let h = Harness::new("").await;
    let r = h
        .post(
            "/register",
            &json!({"email": "early@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "SETUP_REQUIRED"),
        "{}",
        r.body
    );
    assert!(h.stored("early@example.com").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_is_used_once_and_counted() {
    let h = Harness::new("[auth]\nregistration = \"invite\"\n").await;
    let owner = h.owner().await;
    let r = h
        .post(
            "/admin/invites",
            &json!({"uses": 2, "role": "admin"}),
            Some(&owner),
        )
        .await;
    let code = r.json()["data"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for (i, want) in [(1, 201), (2, 201), (3, 403)] {
        let r = h
            .post(
                &format!("/register?invite={code}"),
                &json!({"email": format!("m{i}@example.com"), "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(r.status, want, "use {i}: {}", r.body);
    }
    let listed = h.get("/admin/invites", Some(&owner)).await.json();
    assert_eq!(listed["data"]["invites"][0]["used"], 2, "{listed}");
    let made = h.stored("m2@example.com").await.expect("stored");
    assert_eq!(made.role.as_str(), "admin", "the invite's role");
}
