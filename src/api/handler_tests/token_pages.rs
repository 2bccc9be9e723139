//! API tokens in the browser: made on the account page and shown once on a page of their own
//! (never in an address, never on the account page again), revoked with a button, problems at
//! their field; service accounts and their tokens on the admin pages, for administrators only.

use http::Method;
use serde_json::json;

use super::{is_page, submit, visit, Harness, Reply, PASSWORD};
use crate::store::{ApiTokenRecord, Role};

/// The token a created page shows in its readonly field.
fn shown_token(r: &Reply) -> String {
    r.body
        .split("readonly value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string()
}

/// The tokens stored for the account `id`.
async fn tokens_of(h: &Harness, id: &str) -> Vec<ApiTokenRecord> {
    h.app
        .store
        .user_api_tokens(id)
        .await
        .unwrap_or_else(|e| panic!("store: {e}"))
}

/// A member with the group `git`, signed in again after the change; their id and cookie.
async fn member_with_git(h: &Harness) -> (String, String, String) {
    let owner = h.owner().await;
    let (id, _) = h.member(&owner, "m@example.com", "user").await;
    let r = h
        .json(
            Method::PATCH,
            &format!("/admin/users/{id}"),
            &json!({"groups": ["git"]}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = h
        .login("m@example.com", PASSWORD)
        .await
        .session_cookie()
        .unwrap_or_else(|| panic!("signed in"));
    (owner, id, cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_made_on_the_account_page_is_shown_once_and_never_again() {
    let h = Harness::new("").await;
    let (_, id, member) = member_with_git(&h).await;
    let page = visit(&h, "/", Some(&member)).await;
    assert!(
        page.body.contains("action=\"/auth/tokens/new\"")
            && page
                .body
                .contains("name=\"groups\" value=\"git\"> git</label>"),
        "{}",
        page.body
    );

    let r = submit(
        &h,
        "/tokens/new",
        &[
            ("name", "git on my laptop"),
            ("expiresIn", "30d"),
            ("groups", "git"),
        ],
        Some(&member),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(is_page(&r) && r.header("location").is_none());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r
        .header("content-security-policy")
        .is_some_and(|c| c.contains("script-src 'sha256-")));
    let token = shown_token(&r);
    assert!(token.starts_with("agt_") && token.len() > 40, "{}", r.body);
    assert_eq!(r.body.matches(token.as_str()).count(), 1, "{}", r.body);
    assert!(r.body.contains("it will not be shown again"));
    assert!(r.body.contains("<dd>only git</dd>"), "{}", r.body);

    let stored = tokens_of(&h, &id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "git on my laptop");
    assert_eq!(stored[0].groups, Some(vec!["git".to_string()]));
    let lifetime = stored[0].expires_at.map(|e| e - stored[0].created_at);
    assert_eq!(lifetime, Some(30 * 86_400));

    // Listed from now on, by its name and first characters, never in full.
    let page = visit(&h, "/", Some(&member)).await;
    assert!(page.body.contains("git on my laptop"), "{}", page.body);
    assert!(page
        .body
        .contains(&format!("<code>{}…</code>", stored[0].prefix)));
    assert!(!page.body.contains(&token));
    assert!(!h.get("/tokens", Some(&member)).await.body.contains(&token));

    // Nothing ticked: all the person's access; the 90-day default is the form's.
    let r = submit(
        &h,
        "/tokens/new",
        &[("name", "everything"), ("expiresIn", "90d")],
        Some(&member),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.contains("<dd>all your access</dd>"), "{}", r.body);
    let stored = tokens_of(&h, &id).await;
    assert!(stored
        .iter()
        .any(|t| t.name == "everything" && t.groups.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_the_account_page_is_gone() {
    let h = Harness::new("").await;
    let (_, id, member) = member_with_git(&h).await;
    let r = submit(
        &h,
        "/tokens/new",
        &[("name", "old script"), ("expiresIn", "never")],
        Some(&member),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let page = visit(&h, "/", Some(&member)).await;
    assert!(page.body.contains("never expires"), "{}", page.body);
    let revoke = page
        .body
        .split("action=\"/auth/tokens/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    assert!(revoke.ends_with("/revoke"), "{}", page.body);

    let r = submit(&h, &format!("/tokens/{revoke}"), &[], Some(&member)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("http://127.0.0.1:8080/auth/?done=token-revoked#tokens")
    );
    assert!(tokens_of(&h, &id).await.is_empty());
    let page = visit(&h, "/?done=token-revoked", Some(&member)).await;
    assert!(page.body.contains("The token is revoked"), "{}", page.body);
    assert!(!page.body.contains("old script"));

    // A second click: the account page says it is gone already.
    let r = submit(&h, &format!("/tokens/{revoke}"), &[], Some(&member)).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        r.body.contains("<h1>Your account</h1>") && r.body.contains("already revoked"),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_request_comes_back_at_its_field_in_plain_words() {
    let h = Harness::new("").await;
    let (_, id, member) = member_with_git(&h).await;
    // (fields posted) → the field marked, words it shows
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("name", "ci"), ("expiresIn", "90d"), ("groups", "ops")],
            "groups",
            "&quot;ops&quot; is not among the account&#39;s role and groups (user, git).",
        ),
        (
            vec![("name", "ci"), ("expiresIn", "90d"), ("groups", "admin")],
            "groups",
            "is not among",
        ),
        (
            vec![("name", "   "), ("expiresIn", "90d")],
            "name",
            "Give it a name of 1 to 64 characters, on one line.",
        ),
        (
            vec![("name", "ci"), ("expiresIn", "soon")],
            "expiresIn",
            "Choose one of the lifetimes offered.",
        ),
    ];
    for (fields, field, words) in cases {
        let r = submit(&h, "/tokens/new", &fields, Some(&member)).await;
        let case = format!("{fields:?}: {} {}", r.status, r.body);
        assert_eq!(r.status, 400, "{case}");
        assert!(r.body.contains("<h1>Your account</h1>"), "{case}");
        assert!(
            r.body.contains(&format!(
                "aria-describedby=\"f-{field}-hint f-{field}-error\""
            )) || r
                .body
                .contains(&format!("aria-describedby=\"f-{field}-error\"")),
            "{case}"
        );
        let error = r
            .body
            .split(&format!("id=\"f-{field}-error\">"))
            .nth(1)
            .unwrap_or_default();
        assert!(
            error.split('<').next().unwrap_or_default().contains(words),
            "{case}"
        );
        assert!(r.body.contains("The token was not created"), "{case}");
    }
    assert!(tokens_of(&h, &id).await.is_empty());

    // An account holds at most so many: the page says so and what to do.
    let user = h
        .stored("m@example.com")
        .await
        .unwrap_or_else(|| panic!("stored"));
    for i in 0..crate::auth::api_token::MAX_PER_USER {
        let spec = crate::api::tokens::TokenSpec::check(&user, &format!("t{i}"), None, None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        crate::api::tokens::issue(&h.app.store, &user, spec, 1_000)
            .await
            .unwrap_or_else(|e| panic!("issue: {e}"));
    }
    let r = submit(
        &h,
        "/tokens/new",
        &[("name", "one more"), ("expiresIn", "90d")],
        Some(&member),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body
            .contains("this account already holds 100, the most it may. Revoke one"),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_makes_a_service_account_and_its_token_on_the_pages() {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    let list = visit(&h, "/admin/service-accounts", Some(&owner)).await;
    assert!(is_page(&list), "{}", list.body);
    assert!(list
        .body
        .contains("href=\"/auth/admin/service-accounts\" aria-current=\"page\">Service accounts"));
    // The JSON API at the same address is unchanged.
    assert_eq!(
        h.get("/admin/service-accounts", Some(&owner)).await.json()["success"],
        true
    );

    let r = submit(
        &h,
        "/admin/service-accounts/new",
        &[("name", "backup-job"), ("groups", "backups, media")],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let account = h
        .stored("backup-job")
        .await
        .unwrap_or_else(|| panic!("created"));
    assert_eq!(account.role, Role::Service);
    assert_eq!(account.groups, vec!["backups".to_string(), "media".into()]);
    let location = r.header("location").unwrap_or_default().to_string();
    assert!(
        location.ends_with(&format!(
            "/auth/admin/service-accounts/{}?done=service-account-created",
            account.id
        )),
        "{location}"
    );
    let path = format!("/admin/service-accounts/{}", account.id);
    let page = visit(
        &h,
        &format!("{path}?done=service-account-created"),
        Some(&owner),
    )
    .await;
    assert!(
        page.body.contains("Service account created")
            && page
                .body
                .contains("name=\"groups\" value=\"backups\"> backups</label>")
            && page
                .body
                .contains(&format!("href=\"/auth/admin/users/{}\"", account.id)),
        "{}",
        page.body
    );
    // The same name again: at the field.
    let r = submit(
        &h,
        "/admin/service-accounts/new",
        &[("name", "backup-job"), ("groups", "")],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body
            .contains("id=\"f-name-error\">This name is taken.</p>"),
        "{}",
        r.body
    );

    let r = submit(
        &h,
        &format!("{path}/tokens/new"),
        &[
            ("name", "nightly"),
            ("expiresIn", "never"),
            ("groups", "backups"),
        ],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.body.contains("<h1>New token for backup-job</h1>"),
        "{}",
        r.body
    );
    let token = shown_token(&r);
    assert!(token.starts_with("agt_"), "{}", r.body);
    assert_eq!(r.body.matches(token.as_str()).count(), 1);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let tokens = tokens_of(&h, &account.id).await;
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        (tokens[0].groups.clone(), tokens[0].expires_at),
        (Some(vec!["backups".to_string()]), None)
    );
    let list = visit(&h, "/admin/service-accounts", Some(&owner)).await;
    assert!(
        list.body.contains("backups, media · 1 token<"),
        "{}",
        list.body
    );
    let page = visit(&h, &path, Some(&owner)).await;
    assert!(page.body.contains("nightly") && !page.body.contains(&token));
    // A group the account is not in: at the field.
    let r = submit(
        &h,
        &format!("{path}/tokens/new"),
        &[("name", "x"), ("expiresIn", "30d"), ("groups", "family")],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("id=\"f-groups-error\">&quot;family&quot;"),
        "{}",
        r.body
    );

    // Revoked with its button.
    let r = submit(
        &h,
        &format!("{path}/tokens/{}/revoke", tokens[0].id),
        &[],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(tokens_of(&h, &account.id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn among_the_people_a_service_account_is_named_so_and_its_page_keeps_it_one() {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    let r = h
        .post(
            "/admin/service-accounts",
            &json!({"name": "backup-job", "groups": ["backups"]}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let account = h
        .stored("backup-job")
        .await
        .unwrap_or_else(|| panic!("created"));
    let people = visit(&h, "/admin/users", Some(&owner)).await;
    assert!(
        people
            .body
            .contains("backup-job@service.invalid · service account"),
        "{}",
        people.body
    );
    let person = visit(&h, &format!("/admin/users/{}", account.id), Some(&owner)).await;
    assert!(
        person.body.contains("Role: service account (fixed).")
            && !person.body.contains("name=\"role\"")
            && !person.body.contains("Reset two-step verification"),
        "{}",
        person.body
    );
    let r = submit(
        &h,
        &format!("/admin/users/{}", account.id),
        &[
            ("status", "disabled"),
            ("groups", "backups"),
            ("expiresAt", ""),
        ],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let account = h
        .stored("backup-job")
        .await
        .unwrap_or_else(|| panic!("kept"));
    assert_eq!(
        (account.role, account.status.as_str()),
        (Role::Service, "disabled")
    );
    let page = visit(&h, &format!("/admin/users/{}", account.id), Some(&owner)).await;
    assert!(
        page.body.contains(&format!(
            "href=\"/auth/admin/service-accounts/{}\">Manage its tokens",
            account.id
        )),
        "{}",
        page.body
    );
    let tokens = visit(
        &h,
        &format!("/admin/service-accounts/{}", account.id),
        Some(&owner),
    )
    .await;
    assert!(
        tokens
            .body
            .contains("disabled · its tokens do not work until it is active again"),
        "{}",
        tokens.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_who_are_not_administrators_are_refused_the_service_account_pages() {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    let r = h
        .post(
            "/admin/service-accounts",
            &json!({"name": "monitor"}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, member) = h.member(&owner, "u@example.com", "user").await;

    let path = format!("/admin/service-accounts/{id}");
    for page in ["/admin/service-accounts", path.as_str()] {
        let r = visit(&h, page, Some(&member)).await;
        assert_eq!(r.status, 403, "{page}: {}", r.body);
        assert!(
            is_page(&r) && r.body.contains("Go to your account"),
            "{page}"
        );
        let r = visit(&h, page, None).await;
        assert_eq!(r.status, 302, "{page}");
    }
    let posts = [
        (
            "/admin/service-accounts/new".to_string(),
            vec![("name", "sneaky")],
        ),
        (
            format!("{path}/tokens/new"),
            vec![("name", "mine now"), ("expiresIn", "never")],
        ),
    ];
    for (post, fields) in posts {
        let r = submit(&h, &post, &fields, Some(&member)).await;
        assert_eq!(r.status, 403, "{post}: {}", r.body);
        assert!(!r.body.contains("agt_"), "{post}");
    }
    assert!(h.stored("sneaky").await.is_none());
    assert!(tokens_of(&h, &id).await.is_empty());
    // A person's own token form is no way into a service account either.
    let r = submit(
        &h,
        "/tokens/new",
        &[("name", "x"), ("expiresIn", "never"), ("groups", "service")],
        Some(&member),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
}
