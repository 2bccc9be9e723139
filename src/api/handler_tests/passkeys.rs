//! Passkeys through the handlers with a software authenticator speaking a browser's JSON:
//! registration, passwordless sign-in, a replayed ceremony or answer and another origin
//! refused, a passkey as the second factor after a password, and deletion.

use http::Method;
use serde_json::{json, Value};

use super::{Harness, Reply, OWNER_PASSWORD};
use crate::auth::passkey::soft::Browser;

const ORIGIN: &str = "https://auth.example.com";
const CONFIG: &str = "[server]\npublic_url = \"https://auth.example.com\"\n";

fn options(r: &Reply) -> (Value, String) {
    let data = r.json()["data"].clone();
    let ceremony = data["ceremony"].as_str().unwrap_or_default().to_string();
    (json!({"publicKey": data["publicKey"]}), ceremony)
}

/// Register a passkey named `name` for the session `cookie`.
async fn register(h: &Harness, b: &mut Browser, cookie: &str, name: &str) -> Reply {
    let r = h
        .post("/passkeys/register/start", &json!({}), Some(cookie))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (opts, ceremony) = options(&r);
    let credential = b.create_json(ORIGIN, &opts).await;
    h.post(
        "/passkeys/register/finish",
        &json!({"ceremony": ceremony, "name": name, "credential": credential}),
        Some(cookie),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_signs_in_without_a_password_once_per_ceremony() {
    let h = Harness::new(CONFIG).await;
    let owner = h.owner().await;
    let mut laptop = Browser::new(true);
    let r = register(&h, &mut laptop, &owner, "Laptop").await;
    assert_eq!(r.status, 201, "{}", r.body);
    let list = h.get("/passkeys", Some(&owner)).await.json();
    assert_eq!(list["data"]["passkeys"][0]["name"], "Laptop");
    assert_eq!(
        h.get("/me", Some(&owner)).await.json()["data"]["secondFactor"]["passkeys"],
        1
    );

    // Passwordless: no account named, the passkey says whose it is.
    let r = h.post("/passkeys/login/start", &json!({}), None).await;
    let (opts, ceremony) = options(&r);
    let answer = laptop.get_json(ORIGIN, &opts).await;
    let body = json!({"ceremony": ceremony, "credential": answer});
    let r = h.post("/passkeys/login/finish", &body, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let session = r.session_cookie().unwrap_or_else(|| panic!("a session"));
    let me = h.get("/me", Some(&session)).await.json();
    assert_eq!(me["data"]["user"]["email"], "owner@example.com");
    assert_eq!(me["data"]["session"]["authMethods"], json!(["passkey"]));

    // The same ceremony twice, and the same answer to a new ceremony, are refused.
    let r = h.post("/passkeys/login/finish", &body, None).await;
    assert_eq!(r.code(), "INVALID_TOKEN");
    let (_, fresh) = options(&h.post("/passkeys/login/start", &json!({}), None).await);
    let r = h
        .post(
            "/passkeys/login/finish",
            &json!({"ceremony": fresh, "credential": body["credential"]}),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "INVALID_CREDENTIALS"),
        "{}",
        r.body
    );

    // An answer made for another site is refused.
    let (opts, ceremony) = options(&h.post("/passkeys/login/start", &json!({}), None).await);
    // (A page on a subdomain: the authenticator signs for it, the gateway does not take it.)
    let elsewhere = laptop
        .get_json("https://evil.auth.example.com", &opts)
        .await;
    let r = h
        .post(
            "/passkeys/login/finish",
            &json!({"ceremony": ceremony, "credential": elsewhere}),
            None,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.session_cookie().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_is_the_second_factor_after_a_password_and_can_be_deleted() {
    let h = Harness::new(CONFIG).await;
    let owner = h.owner().await;
    let mut key = Browser::new(true);
    assert_eq!(register(&h, &mut key, &owner, "Key").await.status, 201);

    let r = h.login("owner", OWNER_PASSWORD).await;
    assert_eq!(
        r.json()["data"]["methods"],
        json!(["passkey"]),
        "{}",
        r.body
    );
    let half = r.session_cookie().unwrap_or_default();
    assert_eq!(h.get("/me", Some(&half)).await.status, 401);
    let r = h.post("/2fa/passkey/start", &json!({}), Some(&half)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (opts, ceremony) = options(&r);
    let answer = key.get_json(ORIGIN, &opts).await;
    let r = h
        .post(
            "/2fa/passkey/finish",
            &json!({"ceremony": ceremony, "credential": answer}),
            Some(&half),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let full = r.session_cookie().unwrap_or_default();
    let me = h.get("/me", Some(&full)).await.json();
    assert_eq!(
        me["data"]["session"]["authMethods"],
        json!(["pwd", "passkey"])
    );

    let id = h.get("/passkeys", Some(&full)).await.json()["data"]["passkeys"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = h
        .json(
            Method::DELETE,
            &format!("/passkeys/{id}"),
            &json!({}),
            Some(&full),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = h.login("owner", OWNER_PASSWORD).await;
    assert!(
        r.json()["data"]["user"].is_object(),
        "no factor left: {}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_are_off_without_a_domain_and_https() {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    let r = h
        .post("/passkeys/register/start", &json!({}), Some(&owner))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        h.post("/passkeys/login/start", &json!({}), None)
            .await
            .status,
        403
    );
}
