//! The admin endpoints by who asks and whom they touch: only owners act on owners or make
//! them, admins manage everyone else, users and strangers nothing; role names are never
//! groups. Each refused change leaves the stored account as it was.

use http::Method;
use serde_json::{json, Value};

use super::Harness;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Actor {
    Owner,
    Admin,
    User,
    Nobody,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    /// The first owner.
    Owner,
    /// A second admin.
    Admin,
    /// A plain user.
    User,
}

/// The accounts of one case: who is who, and their cookies.
struct Cast {
    h: Harness,
    owner: String,
    admin: String,
    user: String,
    owner_id: String,
    admin2_id: String,
    user2_id: String,
}

async fn cast() -> Cast {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    let owner_id = h.stored("owner").await.map(|u| u.id).unwrap_or_default();
    let (_, admin) = h.member(&owner, "admin@example.com", "admin").await;
    let (_, user) = h.member(&owner, "user@example.com", "user").await;
    let (admin2_id, _) = h.member(&owner, "admin2@example.com", "admin").await;
    let (user2_id, _) = h.member(&owner, "user2@example.com", "user").await;
    Cast {
        h,
        owner,
        admin,
        user,
        owner_id,
        admin2_id,
        user2_id,
    }
}

impl Cast {
    fn cookie(&self, actor: Actor) -> Option<&str> {
        match actor {
            Actor::Owner => Some(&self.owner),
            Actor::Admin => Some(&self.admin),
            Actor::User => Some(&self.user),
            Actor::Nobody => None,
        }
    }

    fn id(&self, target: Target) -> &str {
        match target {
            Target::Owner => &self.owner_id,
            Target::Admin => &self.admin2_id,
            Target::User => &self.user2_id,
        }
    }

    /// The target's stored role, status and groups.
    async fn state(&self, target: Target) -> (String, String, Vec<String>) {
        let user = self
            .h
            .app
            .store
            .get_user(self.id(target))
            .await
            .ok()
            .flatten();
        user.map(|u| (u.role.as_str().into(), u.status.as_str().into(), u.groups))
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_change_whom() {
    use Actor as A;
    use Target as T;
    // (actor, target, change) → status
    let make_owner = json!({"role": "owner"});
    let make_admin = json!({"role": "admin"});
    let disable = json!({"status": "disabled"});
    let staff = json!({"groups": ["staff"]});
    let cases: Vec<(Actor, Target, &Value, u16)> = vec![
        (A::Owner, T::User, &make_admin, 200),
        (A::Owner, T::User, &make_owner, 200),
        (A::Owner, T::Admin, &disable, 200),
        (A::Admin, T::User, &make_admin, 200),
        (A::Admin, T::User, &staff, 200),
        (A::Admin, T::Admin, &disable, 200),
        (A::Admin, T::User, &make_owner, 403),
        (A::Admin, T::Owner, &disable, 403),
        (A::Admin, T::Owner, &staff, 403),
        (A::User, T::User, &staff, 403),
        (A::User, T::Owner, &disable, 403),
        (A::Nobody, T::User, &make_admin, 401),
        // The last owner stays an owner, and active.
        (A::Owner, T::Owner, &make_admin, 403),
        (A::Owner, T::Owner, &disable, 403),
    ];
    for (actor, target, change, want) in cases {
        let c = cast().await;
        let before = c.state(target).await;
        let path = format!("/admin/users/{}", c.id(target));
        let r =
            c.h.json(Method::PATCH, &path, change, c.cookie(actor))
                .await;
        let case = format!("{actor:?} → {target:?} {change}: {}", r.body);
        assert_eq!(r.status, want, "{case}");
        let after = c.state(target).await;
        if want == 200 {
            assert_ne!(before, after, "changed: {case}");
            if let Some(role) = change["role"].as_str() {
                assert_eq!(after.0, role, "{case}");
            }
        } else {
            assert_eq!(before, after, "unchanged: {case}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_read_delete_and_end_sessions() {
    use Actor as A;
    use Target as T;
    // (actor, target) → (list, get, revoke sessions, delete)
    let cases = [
        (A::Owner, T::User, [200, 200, 200, 200]),
        (A::Owner, T::Admin, [200, 200, 200, 200]),
        (A::Owner, T::Owner, [200, 200, 200, 403]),
        (A::Admin, T::User, [200, 200, 200, 200]),
        (A::Admin, T::Owner, [200, 200, 403, 403]),
        (A::User, T::User, [403, 403, 403, 403]),
        (A::Nobody, T::User, [401, 401, 401, 401]),
    ];
    for (actor, target, want) in cases {
        let c = cast().await;
        let id = c.id(target).to_string();
        let cookie = c.cookie(actor);
        let list = c.h.get("/admin/users", cookie).await.status;
        let get = c.h.get(&format!("/admin/users/{id}"), cookie).await.status;
        let revoke =
            c.h.send(super::with_cookie(
                super::request(Method::DELETE, &format!("/admin/users/{id}/sessions")),
                cookie,
            ))
            .await
            .status;
        // Ending the owner's sessions may end the asker's own: delete in a cast of its own.
        let c = cast().await;
        let id = c.id(target).to_string();
        let cookie = c.cookie(actor);
        let delete =
            c.h.send(super::with_cookie(
                super::request(Method::DELETE, &format!("/admin/users/{id}")),
                cookie,
            ))
            .await
            .status;
        let case = format!("{actor:?} → {target:?}");
        assert_eq!([list, get, revoke, delete], want, "{case}");
        let stored = c.h.app.store.get_user(&id).await.ok().flatten();
        assert_eq!(
            stored.is_none(),
            want[3] == 200,
            "deleted only when allowed: {case}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_make_only_what_their_maker_may() {
    use Actor as A;
    // (actor, invite body) → status
    let cases = [
        (A::Owner, json!({"role": "owner"}), 201),
        (A::Owner, json!({"role": "admin", "groups": ["ops"]}), 201),
        (A::Admin, json!({"role": "admin"}), 201),
        (A::Admin, json!({"role": "owner"}), 403),
        (A::Admin, json!({"groups": ["owner"]}), 400),
        (A::Owner, json!({"groups": ["Admin"]}), 400),
        (A::User, json!({}), 403),
        (A::Nobody, json!({}), 401),
    ];
    for (actor, body, want) in cases {
        let c = cast().await;
        let before =
            c.h.app
                .store
                .list_invites()
                .await
                .map(|l| l.len())
                .unwrap_or(0);
        let r = c.h.post("/admin/invites", &body, c.cookie(actor)).await;
        let case = format!("{actor:?} {body}: {}", r.body);
        assert_eq!(r.status, want, "{case}");
        let after =
            c.h.app
                .store
                .list_invites()
                .await
                .map(|l| l.len())
                .unwrap_or(0);
        assert_eq!(after, before + usize::from(want == 201), "{case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_names_are_never_group_names() {
    let c = cast().await;
    for name in ["owner", "ADMIN", "user", "service", " admin "] {
        let path = format!("/admin/users/{}", c.user2_id);
        let r =
            c.h.json(
                Method::PATCH,
                &path,
                &json!({"groups": [name]}),
                Some(&c.owner),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "VALIDATION_ERROR"),
            "{name:?}"
        );
    }
    assert!(c.state(Target::User).await.2.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_never_sees_invites_that_make_owners() {
    let c = cast().await;
    let r =
        c.h.post("/admin/invites", &json!({"role": "owner"}), Some(&c.owner))
            .await;
    let id = r.json()["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let listed = c.h.get("/admin/invites", Some(&c.admin)).await.json();
    let ids: Vec<&str> = listed["data"]["invites"]
        .as_array()
        .map(|l| l.iter().filter_map(|i| i["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(!ids.contains(&id.as_str()), "{listed}");
    let r =
        c.h.send(super::with_cookie(
            super::request(Method::DELETE, &format!("/admin/invites/{id}")),
            Some(&c.admin),
        ))
        .await;
    assert_eq!(r.status, 404, "as if it did not exist: {}", r.body);
    let listed = c.h.get("/admin/invites", Some(&c.owner)).await.json();
    assert!(
        listed.to_string().contains(&id),
        "still there for the owner"
    );
}
