//! API tokens through the handlers and the access decision: shown once and never listed,
//! revoked (by their owner, by disabling or resetting the owner) on the next check, narrowed
//! to the owner's current groups, refused where a route says `tokens = false`, counted
//! against the client when bad; service accounts that never sign in.

use http::{HeaderMap, HeaderValue, Method};
use serde_json::{json, Value};

use super::{Harness, Reply, PASSWORD};
use crate::access::{decide_request, Requester, Target, Verdict};
use crate::app::now_secs;

const ROUTES: &str = r#"
[security]
ip_rate_limit = "3/min"

[[routes]]
path = "/browser-only"
upstream = "whoami"
policy = "authenticated"
tokens = false

[[routes]]
path = "/media"
upstream = "whoami"
policy = "authenticated"
groups = ["media"]

[[routes]]
path = "/strong"
upstream = "whoami"
policy = "authenticated"
second_factor = true

[[routes]]
path = "/open"
upstream = "whoami"
policy = "public"

[[routes]]
path = "/closed"
upstream = "whoami"
policy = "deny"

[[routes]]
path = "/"
upstream = "whoami"
policy = "authenticated"
"#;

fn token_of(r: &Reply) -> String {
    r.json()["data"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn create(h: &Harness, cookie: &str, body: Value) -> Reply {
    h.post("/tokens", &body, Some(cookie)).await
}

/// The verdict for a request to `path` carrying `headers`, from `ip`.
async fn verdict(
    h: &Harness,
    path: &str,
    headers: &[(&'static str, &str)],
    ip: [u8; 4],
) -> (Verdict, Option<String>) {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            map.append(*k, v);
        }
    }
    let policy = h.app.policy();
    let target = Target {
        host: "app.example.com",
        path,
        method: &Method::GET,
    };
    let d = decide_request(&h.app, &policy, target, &map, ip.into()).await;
    let groups = d.requester.as_ref().map(|r| match r {
        Requester::Token(t) => format!("token:{}", t.live.identity.groups_header),
        Requester::Session(p) => format!("session:{}", p.identity().groups_header),
    });
    (d.verdict, groups)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_shown_once_listed_without_its_secret_and_revoked_at_once() {
    let h = Harness::new(ROUTES).await;
    let owner = h.owner().await;
    let r = create(
        &h,
        &owner,
        json!({"name": "backup job", "expiresIn": "90d"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = token_of(&r);
    assert!(token.starts_with("agt_"), "{token}");
    let data = &r.json()["data"];
    assert_eq!(data["name"], "backup job");
    assert_eq!(data["prefix"], token[..10]);
    assert!(data["expiresAt"].is_string() && data["lastUsedAt"].is_null());

    let list = h.get("/tokens", Some(&owner)).await;
    assert_eq!(list.status, 200);
    assert!(
        !list.body.contains(&token[4..]),
        "the secret is never listed"
    );
    assert_eq!(list.json()["data"][0]["id"], data["id"]);

    // It opens the apps behind the gateway, not the account API.
    let (v, who) = verdict(
        &h,
        "/app",
        &[("authorization", &bearer(&token))],
        [10, 0, 0, 1],
    )
    .await;
    assert_eq!((v, who.as_deref()), (Verdict::Allow, Some("token:owner")));
    let r = h
        .send(super::with_header(
            super::request(Method::GET, "/me"),
            "authorization",
            &bearer(&token),
        ))
        .await;
    assert_eq!(r.status, 401, "the account API wants a session");

    let id = data["id"].as_str().unwrap_or_default().to_string();
    let r = h
        .json(
            Method::DELETE,
            &format!("/tokens/{id}"),
            &json!({}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (v, _) = verdict(
        &h,
        "/app",
        &[("authorization", &bearer(&token))],
        [10, 0, 0, 1],
    )
    .await;
    assert_eq!(v, Verdict::TokenRefused, "refused on the next request");
    let r = h
        .json(
            Method::DELETE,
            &format!("/tokens/{id}"),
            &json!({}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, 404);
    // Nobody else's token can be revoked by id.
    let r = h.json(Method::DELETE, "/tokens/x", &json!({}), None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_decide_on_tokens_as_their_rules_say() {
    let h = Harness::new(ROUTES).await;
    let owner = h.owner().await;
    let (member_id, member) = h.member(&owner, "m@example.com", "user").await;
    let r = h
        .json(
            Method::PATCH,
            &format!("/admin/users/{member_id}"),
            &json!({"groups": ["media", "git"]}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let all = token_of(&create(&h, &member, json!({"name": "all"})).await);
    let git = token_of(&create(&h, &member, json!({"name": "git", "groups": ["git"]})).await);
    let r = create(&h, &member, json!({"name": "wider", "groups": ["admins"]})).await;
    assert_eq!((r.status, r.code().as_str()), (400, "VALIDATION_ERROR"));
    assert!(
        r.json()["error"]["fields"]["groups"].is_string(),
        "{}",
        r.body
    );

    let ip = [10, 0, 0, 2];
    let b = |t: &str| bearer(t);
    // (path, headers, verdict, who)
    let all_b = b(&all);
    let git_b = b(&git);
    type Case<'a> = (
        &'a str,
        Vec<(&'static str, &'a str)>,
        Verdict,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "/app",
            vec![("authorization", &all_b)],
            Verdict::Allow,
            Some("token:user,media,git"),
        ),
        (
            "/app",
            vec![("x-authgate-token", &git)],
            Verdict::Allow,
            Some("token:git"),
        ),
        (
            "/media",
            vec![("authorization", &all_b)],
            Verdict::Allow,
            Some("token:user,media,git"),
        ),
        (
            "/media",
            vec![("authorization", &git_b)],
            Verdict::Forbidden,
            Some("token:git"),
        ),
        (
            "/strong",
            vec![("authorization", &all_b)],
            Verdict::SecondFactorRequired,
            Some("token:user,media,git"),
        ),
        (
            "/browser-only",
            vec![("authorization", &all_b)],
            Verdict::TokensNotAccepted,
            None,
        ),
        (
            "/browser-only",
            vec![("authorization", &all_b), ("cookie", &member)],
            Verdict::Allow,
            Some("session:user,media,git"),
        ),
        (
            "/closed",
            vec![("authorization", &all_b)],
            Verdict::Forbidden,
            None,
        ),
        ("/open", vec![], Verdict::Allow, None),
        ("/app", vec![], Verdict::LoginRequired, None),
        // A token decides alone: a session beside a bad one does not rescue it.
        (
            "/app",
            vec![("x-authgate-token", "agt_nope"), ("cookie", &member)],
            Verdict::TokenRefused,
            None,
        ),
        // An app's own credentials are not the gateway's business.
        (
            "/app",
            vec![("authorization", "Bearer app-jwt"), ("cookie", &member)],
            Verdict::Allow,
            Some("session:user,media,git"),
        ),
    ];
    for (path, headers, want, who) in cases {
        let got = verdict(&h, path, &headers, ip).await;
        assert_eq!(got, (want, who.map(str::to_string)), "{path} {headers:?}");
    }

    // The owner's groups are read at use: removing git removes it from the token too.
    let r = h
        .json(
            Method::PATCH,
            &format!("/admin/users/{member_id}"),
            &json!({"groups": ["media"]}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, 200);
    let (v, who) = verdict(&h, "/app", &[("authorization", &git_b)], ip).await;
    assert_eq!((v, who.as_deref()), (Verdict::Allow, Some("token:")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_count_against_the_client_like_bad_passwords() {
    let h = Harness::new(ROUTES).await;
    let owner = h.owner().await;
    let good = token_of(&create(&h, &owner, json!({"name": "ci"})).await);
    let ip = [10, 0, 0, 3];
    // On a public route a bad token only means no identity, and is not counted.
    for _ in 0..5 {
        let (v, who) = verdict(&h, "/open", &[("x-authgate-token", "agt_stale")], ip).await;
        assert_eq!((v, who), (Verdict::Allow, None));
    }
    // ip_rate_limit = "3/min": three refusals are counted, the fourth is told to wait.
    for _ in 0..3 {
        let (v, _) = verdict(&h, "/app", &[("x-authgate-token", "agt_guess")], ip).await;
        assert_eq!(v, Verdict::TokenRefused);
    }
    let (v, _) = verdict(&h, "/app", &[("x-authgate-token", "agt_guess")], ip).await;
    assert!(
        matches!(v, Verdict::RateLimited { retry_after_secs } if retry_after_secs > 0),
        "{v:?}"
    );
    // Another client is not affected; a good token still works (it cannot be guessed).
    let (v, _) = verdict(
        &h,
        "/app",
        &[("x-authgate-token", "agt_guess")],
        [10, 0, 0, 4],
    )
    .await;
    assert_eq!(v, Verdict::TokenRefused);
    let (v, _) = verdict(&h, "/app", &[("x-authgate-token", &good)], ip).await;
    assert_eq!(v, Verdict::Allow);
    // And the password sign-in of that client waits too.
    let mut login = super::with_json(
        super::request(Method::POST, "/login"),
        &json!({"identifier": "owner", "password": "wrong"}),
    );
    login.client_ip = ip.into();
    assert_eq!(h.send(login).await.code(), "RATE_LIMITED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_or_resetting_the_owner_revokes_their_tokens_and_a_password_change_does_not() {
    let h = Harness::new(ROUTES).await;
    let owner = h.owner().await;
    let (id, member) = h.member(&owner, "m@example.com", "user").await;
    let first = token_of(&create(&h, &member, json!({"name": "one"})).await);
    let check = |t: String| {
        let app = h.app.clone();
        async move {
            app.auth
                .check_token(&t, now_secs())
                .await
                .ok()
                .flatten()
                .is_some()
        }
    };
    assert!(check(first.clone()).await);

    // The owner's own password change keeps them.
    let r = h
        .post(
            "/change-password",
            &json!({"currentPassword": PASSWORD, "newPassword": "another password 2"}),
            Some(&member),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(check(first.clone()).await);

    // An administrator's reset revokes them.
    h.app
        .store
        .set_password(&id, "x".into(), now_secs(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!check(first.clone()).await, "reset revokes");
    assert!(h
        .app
        .store
        .user_api_tokens(&id)
        .await
        .unwrap_or_default()
        .is_empty());

    // Disabling revokes (and re-enabling does not bring them back).
    let session = h.login("m@example.com", "x").await;
    assert_eq!(session.status, 401, "the reset hash is not a password");
    let second = {
        let (rec, _) = h
            .stored("m@example.com")
            .await
            .map(|u| (u, ()))
            .unwrap_or_else(|| panic!("user"));
        let spec = crate::api::tokens::TokenSpec::check(&rec, "two", None, None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let (minted, _) = crate::api::tokens::issue(&h.app.store, &rec, spec, now_secs())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        minted.token
    };
    assert!(check(second.clone()).await);
    for status in ["disabled", "active"] {
        let r = h
            .json(
                Method::PATCH,
                &format!("/admin/users/{id}"),
                &json!({"status": status}),
                Some(&owner),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert!(!check(second).await, "disabling revoked it for good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_holds_a_bounded_number_of_tokens() {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    let user = h.stored("owner").await.unwrap_or_else(|| panic!("owner"));
    for i in 0..crate::auth::api_token::MAX_PER_USER {
        let spec = crate::api::tokens::TokenSpec::check(&user, &format!("t{i}"), None, None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        crate::api::tokens::issue(&h.app.store, &user, spec, now_secs())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let r = create(&h, &owner, json!({"name": "one too many"})).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "CONFLICT"),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_are_made_by_admins_and_never_sign_in() {
    let h = Harness::new(ROUTES).await;
    let owner = h.owner().await;
    let (_, member) = h.member(&owner, "m@example.com", "user").await;
    let body = json!({"name": "Backup-Job", "groups": ["backups"]});
    let r = h
        .post("/admin/service-accounts", &body, Some(&member))
        .await;
    assert_eq!(r.status, 403, "admins only");
    let r = h.post("/admin/service-accounts", &body, Some(&owner)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let account = r.json()["data"].clone();
    assert_eq!(account["role"], "service");
    assert_eq!(account["username"], "backup-job");
    let id = account["id"].as_str().unwrap_or_default().to_string();
    let r = h.post("/admin/service-accounts", &body, Some(&owner)).await;
    assert_eq!(r.status, 409, "one name, one account");

    let path = format!("/admin/service-accounts/{id}/tokens");
    let r = h
        .post(&path, &json!({"name": "nightly"}), Some(&owner))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = token_of(&r);
    let (v, who) = verdict(
        &h,
        "/app",
        &[("authorization", &bearer(&token))],
        [10, 0, 0, 5],
    )
    .await;
    assert_eq!(
        (v, who.as_deref()),
        (Verdict::Allow, Some("token:service,backups"))
    );
    let listed = h.get(&path, Some(&owner)).await;
    assert_eq!(listed.json()["data"][0]["name"], "nightly");
    assert_eq!(h.get(&path, Some(&member)).await.status, 403);
    let accounts = h.get("/admin/service-accounts", Some(&owner)).await.json();
    assert_eq!(accounts["data"][0]["tokens"], 1);
    // A person's id is not a service account's.
    let owner_id = h.stored("owner").await.map(|u| u.id).unwrap_or_default();
    let r = h
        .post(
            &format!("/admin/service-accounts/{owner_id}/tokens"),
            &json!({"name": "x"}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, 404);

    // No way in for a person: no password, no reset mail, no role change.
    for password in ["", "anything", PASSWORD] {
        assert_eq!(h.login("backup-job", password).await.status, 401);
    }
    let r = h
        .json(
            Method::PATCH,
            &format!("/admin/users/{id}"),
            &json!({"role": "user"}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.code(), "VALIDATION_ERROR", "{}", r.body);
    let r = h
        .post(
            "/register",
            &json!({"email": "x@service.invalid", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.code(), "VALIDATION_ERROR", "{}", r.body);

    let tid = listed.json()["data"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = h
        .json(
            Method::DELETE,
            &format!("{path}/{tid}"),
            &json!({}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, 200);
    let (v, _) = verdict(
        &h,
        "/app",
        &[("authorization", &bearer(&token))],
        [10, 0, 0, 5],
    )
    .await;
    assert_eq!(v, Verdict::TokenRefused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_made_only_for_active_accounts() {
    let h = Harness::new(ROUTES).await;
    let owner = h.owner().await;
    let (id, _) = h.member(&owner, "m@example.com", "user").await;
    let active = h
        .stored("m@example.com")
        .await
        .unwrap_or_else(|| panic!("user"));
    let r = h
        .json(
            Method::PATCH,
            &format!("/admin/users/{id}"),
            &json!({"status": "disabled"}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The record read while the account was active, written after it was disabled: the write
    // decides, so a disable that committed first wins.
    let spec = crate::api::tokens::TokenSpec::check(&active, "late", None, None)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let made = crate::api::tokens::issue(&h.app.store, &active, spec, now_secs()).await;
    assert!(
        matches!(made, Err(crate::store::WriteError::NotFound)),
        "a token was made: {:?}",
        made.as_ref().err()
    );
    assert!(h
        .app
        .store
        .user_api_tokens(&id)
        .await
        .unwrap_or_default()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_token_gets_401_from_verify_and_429_from_forward() {
    let h = Harness::new(ROUTES).await;
    h.owner().await;
    let ask = |path: &'static str| {
        let req = super::request(Method::GET, path);
        let req = super::with_header(req, "x-authgate-token", "agt_guess");
        let req = super::with_header(req, "x-original-url", "http://app.example.com/app");
        let req = super::with_header(req, "x-forwarded-host", "app.example.com");
        super::with_header(req, "x-forwarded-uri", "/app")
    };
    for _ in 0..3 {
        assert_eq!(h.send(ask("/verify")).await.status, 401);
    }
    // Over the limit: nginx would turn a 429 into a 500, so /verify still says 401.
    let r = h.send(ask("/verify")).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|c| c.contains("invalid_token")));
    let r = h.send(ask("/forward")).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
}
