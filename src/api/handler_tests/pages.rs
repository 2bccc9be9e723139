//! What a browser gets: pages or redirects, never JSON; no-store on everything behind a
//! session; the pages' own files with their types and caching; and the admin pages as forms
//! on the admin API, with what they change stored.

use serde_json::json;

use super::{is_page, submit, visit, Harness, PASSWORD};
use crate::store::UserStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_get_pages_or_redirects_never_json() {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    // (path, signed in) → status, and a page (or a redirect's target)
    let cases: Vec<(&str, bool, u16, &str)> = vec![
        ("/no-such-page", false, 404, "Page not found"),
        ("/no-such-page", true, 404, "Go to your account"),
        ("/admin/users", false, 302, "/auth/login?rd="),
        ("/me", false, 302, "/auth/login?rd="),
        ("/logout", true, 302, "/auth/login?done=signed-out"),
        ("/login?done=signed-out", false, 200, "You have signed out."),
        (
            "/reset-password?token=used-or-made-up",
            false,
            400,
            "Send me a new link",
        ),
        (
            "/verify-email?token=nope",
            false,
            400,
            "expired or was already used",
        ),
    ];
    for (path, signed_in, status, shows) in cases {
        let r = visit(&h, path, signed_in.then_some(owner.as_str())).await;
        let case = format!(
            "{path} {signed_in}: {} {:?} {}",
            r.status,
            r.header("location"),
            r.body
        );
        assert_eq!(r.status, status, "{case}");
        if (300..400).contains(&status) {
            assert!(
                r.header("location").is_some_and(|l| l.contains(shows)),
                "{case}"
            );
        } else {
            assert!(is_page(&r) && r.body.contains(shows), "{case}");
        }
        assert!(!r.body.starts_with('{'), "{case}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{case}");
    }
    // GET /logout ended the session.
    assert_eq!(h.get("/me", Some(&owner)).await.status, 401);
    // The same addresses still answer JSON to API clients.
    assert_eq!(h.get("/no-such-page", None).await.code(), "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_files_have_their_types_and_may_be_cached() {
    let h = Harness::new("[ui]\naccent_color = \"#e11d48\"\n").await;
    let r = visit(&h, "/login", None).await;
    let style = r
        .body
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .trim_start_matches("/auth")
        .to_string();
    assert!(style.starts_with("/assets/style.css?v="), "{}", r.body);
    let css = h.get(&style, None).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(css.header("cache-control"), Some("public, max-age=604800"));
    assert!(
        css.body.starts_with(":root{--accent:#e11d48"),
        "{}",
        css.body
    );
    let icon = h.get("/assets/icon", None).await;
    assert_eq!(icon.header("content-type"), Some("image/svg+xml"));
    assert_eq!(
        h.get("/assets/logo", None).await.status,
        404,
        "no logo configured"
    );
    assert_eq!(h.get("/assets/..%2Fconfig.toml", None).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_in_place_errors_at_the_field_then_a_notice() {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    let (_, cookie) = h.member(&owner, "m@example.com", "user").await;
    let r = submit(
        &h,
        "/change-password",
        &[
            ("currentPassword", "not it at all"),
            ("newPassword", "a new password 1"),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.body.contains("<h1>Your account</h1>"),
        "the account page, again"
    );
    assert!(r
        .body
        .contains("id=\"f-currentPassword-error\">This is not your current password."));
    let r = submit(
        &h,
        "/change-password",
        &[("currentPassword", PASSWORD), ("newPassword", "short")],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .contains("id=\"f-newPassword-error\">Must be at least"),
        "{}",
        r.body
    );
    let r = submit(
        &h,
        "/change-password",
        &[
            ("currentPassword", PASSWORD),
            ("newPassword", "a new password 1"),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("http://127.0.0.1:8080/auth/?done=password-changed")
    );
    let page = visit(&h, "/?done=password-changed", Some(&cookie)).await;
    assert!(page.body.contains("Your password is changed."));
    assert_eq!(
        h.login("m@example.com", "a new password 1").await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_and_single_sessions_are_managed_from_the_account_page() {
    let h = Harness::new("[auth.fields]\nfull_name = \"optional\"\n").await;
    let owner = h.owner().await;
    let (id, first) = h.member(&owner, "m@example.com", "user").await;
    let second = h
        .login("m@example.com", PASSWORD)
        .await
        .session_cookie()
        .unwrap_or_default();
    let r = submit(&h, "/profile", &[("fullName", "Mia Example")], Some(&first)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let stored = h
        .stored("m@example.com")
        .await
        .unwrap_or_else(|| panic!("stored"));
    assert_eq!(stored.full_name.as_deref(), Some("Mia Example"));
    // End the other session from the first device's page.
    let page = visit(&h, "/", Some(&first)).await;
    let other = page
        .body
        .split("action=\"/auth/sessions/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_string();
    assert!(!other.is_empty(), "{}", page.body);
    let r = submit(&h, &format!("/sessions/{other}/end"), &[], Some(&first)).await;
    assert_eq!(
        r.header("location"),
        Some("http://127.0.0.1:8080/auth/?done=session-ended")
    );
    assert_eq!(h.get("/me", Some(&second)).await.status, 401);
    assert_eq!(h.get("/me", Some(&first)).await.status, 200);
    assert_eq!(
        h.app.store.user_sessions(&id).await.map(|s| s.len()).ok(),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_pages_approve_edit_invite_and_clear_overrides() {
    let h = Harness::new("[auth]\nregistration = \"approval\"\n").await;
    let mut audits = h
        .app
        .take_audit_receiver()
        .unwrap_or_else(|| panic!("audit queue"));
    let owner = h.owner().await;
    let r = h
        .post(
            "/register",
            &json!({"email": "p@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.json()["data"]["user"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let list = visit(&h, "/admin/users?status=pending", Some(&owner)).await;
    assert!(
        is_page(&list) && list.body.contains("p@example.com"),
        "{}",
        list.body
    );
    assert!(
        !list.body.contains("owner@example.com"),
        "filtered by status"
    );
    assert!(list
        .body
        .contains(&format!("action=\"/auth/admin/users/{id}/approve\"")));
    // The JSON API at the same address is unchanged.
    assert_eq!(
        h.get("/admin/users", Some(&owner)).await.json()["success"],
        true
    );

    let r = submit(&h, &format!("/admin/users/{id}/approve"), &[], Some(&owner)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let stored = h
        .stored("p@example.com")
        .await
        .unwrap_or_else(|| panic!("stored"));
    assert_eq!(stored.status, UserStatus::Active);

    let r = submit(
        &h,
        &format!("/admin/users/{id}"),
        &[
            ("role", "admin"),
            ("status", "active"),
            ("groups", "media, family"),
            ("expiresAt", "2099-01-31"),
        ],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let stored = h
        .stored("p@example.com")
        .await
        .unwrap_or_else(|| panic!("stored"));
    assert_eq!(stored.role.as_str(), "admin");
    assert_eq!(
        stored.groups,
        vec!["media".to_string(), "family".to_string()]
    );
    assert!(stored.expires_at.is_some());
    // A bad value comes back at its field.
    let r = submit(
        &h,
        &format!("/admin/users/{id}"),
        &[
            ("role", "admin"),
            ("status", "active"),
            ("groups", ""),
            ("expiresAt", "someday"),
        ],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"f-expiresAt-error\""), "{}", r.body);

    // Invitations: created with a link to copy, then deleted.
    let r = submit(
        &h,
        "/admin/invites/new",
        &[
            ("role", "user"),
            ("expiresIn", "7d"),
            ("uses", "2"),
            ("groups", "media"),
        ],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.contains("/auth/register?invite="), "{}", r.body);
    let invites = h.app.store.list_invites().await.unwrap_or_default();
    assert_eq!((invites.len(), invites[0].max_uses), (1, 2));
    let code = invites[0].id.clone();
    let r = submit(
        &h,
        &format!("/admin/invites/{code}/delete"),
        &[],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(h
        .app
        .store
        .list_invites()
        .await
        .unwrap_or_default()
        .is_empty());

    // Settings: an override, then back to the file's value.
    let r = submit(
        &h,
        "/admin/settings",
        &[("registration", "closed"), ("nativeSignin", "file")],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        h.app
            .store
            .overrides()
            .await
            .ok()
            .and_then(|o| o.registration)
            .as_deref(),
        Some("closed")
    );
    let page = visit(&h, "/admin/settings", Some(&owner)).await;
    assert!(
        page.body.contains("<option value=\"closed\" selected>"),
        "{}",
        page.body
    );
    let r = submit(
        &h,
        "/admin/settings",
        &[("registration", "file"), ("nativeSignin", "file")],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        h.app
            .store
            .overrides()
            .await
            .ok()
            .and_then(|o| o.registration),
        None
    );

    // The audit log shows what was done, by whom (written as the server's writer would).
    let mut written = Vec::new();
    while let Ok(entry) = audits.try_recv() {
        written.push(entry);
    }
    h.app
        .store
        .append_audit(written)
        .await
        .unwrap_or_else(|e| panic!("audit: {e}"));
    let audit = visit(&h, "/admin/audit", Some(&owner)).await;
    assert!(
        audit.body.contains("config update") && audit.body.contains("by owner@example.com"),
        "{}",
        audit.body
    );

    // A plain user sees no admin page.
    let (_, member) = h.member(&owner, "u@example.com", "user").await;
    let r = visit(&h, "/admin/users", Some(&member)).await;
    assert_eq!(r.status, 403);
    assert!(is_page(&r) && r.body.contains("Go to your account"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_asks_first_and_the_audit_log_pages_back() {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    let (id, _) = h.member(&owner, "gone@example.com", "user").await;
    let ask = visit(&h, &format!("/admin/users/{id}/delete"), Some(&owner)).await;
    assert!(ask.body.contains("<h1>Delete account?</h1>") && ask.body.contains("gone@example.com"));
    let r = submit(&h, &format!("/admin/users/{id}/delete"), &[], Some(&owner)).await;
    assert_eq!(
        r.header("location"),
        Some("http://127.0.0.1:8080/auth/admin/users?done=deleted")
    );
    assert!(h.stored("gone@example.com").await.is_none());
    // The last owner cannot go: the person's page says why.
    let owner_id = h.stored("owner").await.map(|u| u.id).unwrap_or_default();
    let r = submit(
        &h,
        &format!("/admin/users/{owner_id}/delete"),
        &[],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body
            .contains("The last owner cannot be demoted, disabled or deleted."),
        "{}",
        r.body
    );
    assert!(h.stored("owner").await.is_some());

    // 60 entries: the newest 50, then the older ten behind "Older entries".
    let entries = (0..60)
        .map(|i| crate::store::AuditRecord {
            at: 1_000 + i,
            event: format!("event_{i}"),
            actor: Some(owner_id.clone()),
            target: None,
            ip: None,
            detail: None,
        })
        .collect();
    h.app
        .store
        .append_audit(entries)
        .await
        .unwrap_or_else(|e| panic!("audit: {e}"));
    let first = visit(&h, "/admin/audit", Some(&owner)).await;
    assert!(
        first.body.contains("event 59") && !first.body.contains("event 9<"),
        "{}",
        first.body
    );
    let older = first
        .body
        .split("href=\"/auth/admin/audit?before=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no link to older entries: {}", first.body))
        .to_string();
    let next = visit(&h, &format!("/admin/audit?before={older}"), Some(&owner)).await;
    assert!(
        next.body.contains("event 9<") && next.body.contains("event 0<"),
        "{}",
        next.body
    );
    assert!(
        !next.body.contains("event 59") && !next.body.contains("?before="),
        "{}",
        next.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_account_is_told_for_how_long_and_an_admin_can_sign_anyone_out() {
    let h = Harness::new("[security]\nmax_failed_logins = 2\nlockout = \"15m\"\n").await;
    let owner = h.owner().await;
    let (id, member) = h.member(&owner, "m@example.com", "user").await;
    // The second failure locks the account.
    for status in [401, 423] {
        let r = submit(
            &h,
            "/login",
            &[("identifier", "m@example.com"), ("password", "wrong one")],
            None,
        )
        .await;
        assert_eq!(r.status, status);
    }
    let r = submit(
        &h,
        "/login",
        &[("identifier", "m@example.com"), ("password", PASSWORD)],
        None,
    )
    .await;
    assert_eq!(r.status, 423, "{}", r.body);
    assert!(
        r.body.contains("this account is locked for 15 minutes"),
        "{}",
        r.body
    );
    assert!(r.header("retry-after").is_some());
    assert!(
        r.body.contains("value=\"m@example.com\""),
        "what was typed stays"
    );

    // Sign out everywhere from the person's admin page.
    let r = submit(&h, &format!("/admin/users/{id}/revoke"), &[], Some(&owner)).await;
    assert_eq!(
        r.header("location"),
        Some(format!("http://127.0.0.1:8080/auth/admin/users/{id}?done=revoked").as_str())
    );
    assert_eq!(h.get("/me", Some(&member)).await.status, 401);
    let page = visit(&h, &format!("/admin/users/{id}?done=revoked"), Some(&owner)).await;
    assert!(
        page.body.contains("They are signed out everywhere.") && page.body.contains("0 devices"),
        "{}",
        page.body
    );
}
