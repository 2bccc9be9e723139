//! `POST /login` against every account state: the status and code answered, whether a session
//! was opened, and that the account's state is told only after a correct password.

use http::Method;
use serde_json::json;

use super::{Harness, OWNER_PASSWORD, PASSWORD};

/// An SMTP server nobody listens on: enough to turn verification on (mail is sent later).
const MAIL: &str = "[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\nfrom = \"authgate <no-reply@example.com>\"\n";

/// A provider configured without discovery (nothing is fetched until someone uses it).
const PROVIDER: &str = "[[oidc]]\nname = \"corp\"\ndisplay_name = \"Corp\"\nauthorization_url = \"http://127.0.0.1:9/authorize\"\ntoken_url = \"http://127.0.0.1:9/token\"\nuserinfo_url = \"http://127.0.0.1:9/userinfo\"\nclient_id = \"gate\"\nclient_secret = \"secret\"\n";

/// What an admin does to the member before they sign in.
#[derive(Debug, Clone, Copy)]
enum State {
    Active,
    Pending,
    Disabled,
    Expired,
    ExpiresLater,
    Unverified,
    Verified,
}

fn patch_for(state: State) -> serde_json::Value {
    match state {
        State::Active => json!({}),
        State::Pending => json!({"status": "pending"}),
        State::Disabled => json!({"status": "disabled"}),
        State::Expired => json!({"expiresAt": "2001-01-01T00:00:00Z"}),
        State::ExpiresLater => json!({"expiresAt": "2999-01-01T00:00:00Z"}),
        State::Unverified => json!({"emailVerified": false}),
        State::Verified => json!({"emailVerified": true}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_gates() {
    // (verification required, password sign-in on, account state) → (status, code; "" =
    // signed in)
    let cases: [(bool, bool, State, u16, &str); 11] = [
        (false, true, State::Active, 200, ""),
        (false, true, State::Pending, 403, "ACCOUNT_PENDING"),
        (false, true, State::Disabled, 403, "ACCOUNT_DISABLED"),
        (false, true, State::Expired, 403, "ACCOUNT_DISABLED"),
        (false, true, State::ExpiresLater, 200, ""),
        (false, true, State::Unverified, 200, ""),
        (true, true, State::Unverified, 403, "EMAIL_NOT_VERIFIED"),
        (true, true, State::Verified, 200, ""),
        (false, false, State::Active, 403, "FORBIDDEN"),
        (true, false, State::Verified, 403, "FORBIDDEN"),
        (false, false, State::Pending, 403, "ACCOUNT_PENDING"),
    ];
    for (verification, native, state, status, code) in cases {
        let config =
            format!("[auth]\nrequire_email_verification = {verification}\n{MAIL}{PROVIDER}");
        let h = Harness::new(&config).await;
        let owner = h.owner().await;
        let (id, _) = h.account(&owner, "m@example.com", "user").await;
        let r = h
            .json(
                Method::PATCH,
                &format!("/admin/users/{id}"),
                &patch_for(state),
                Some(&owner),
            )
            .await;
        assert_eq!(r.status, 200, "{state:?}: {}", r.body);
        if !native {
            let off = json!({"nativeSignin": false});
            let r = h.post("/config/update", &off, Some(&owner)).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
        let case = format!("verification {verification}, native {native}, {state:?}");
        let r = h.login("m@example.com", PASSWORD).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{case}: {}",
            r.body
        );
        assert_eq!(r.session_cookie().is_some(), status == 200, "{case}");
        if status != 200 {
            // The state is only told to someone who knows the password.
            let r = h.login("m@example.com", "not the password").await;
            assert_eq!(
                (r.status, r.code().as_str()),
                (401, "INVALID_CREDENTIALS"),
                "{case}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_keeps_password_sign_in_when_it_is_off() {
    let h = Harness::new(&format!("[auth]\nnative_signin = false\n{PROVIDER}")).await;
    h.owner().await;
    let r = h.login("owner", OWNER_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.session_cookie().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sign_in_replaces_the_session_presented() {
    let h = Harness::new("").await;
    let first = h.owner().await;
    let r = h
        .send(super::with_cookie(
            super::with_json(
                super::request(Method::POST, "/login"),
                &json!({"identifier": "owner", "password": OWNER_PASSWORD}),
            ),
            Some(&first),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second = r.session_cookie().expect("new session");
    assert_ne!(first, second);
    assert_eq!(
        h.get("/me", Some(&first)).await.status,
        401,
        "the old one ended"
    );
    assert_eq!(h.get("/me", Some(&second)).await.status, 200);
    let sessions = h.get("/sessions", Some(&second)).await.json();
    assert_eq!(
        sessions["data"]["sessions"].as_array().map(Vec::len),
        Some(1),
        "{sessions}"
    );
}
