//! Second factors end to end through the handlers: enrolling an authenticator app, the
//! half-open session a right password opens, completing it with a code or a recovery code,
//! replays and wrong codes refused and counted, enrolment forced by the policy, and an
//! administrator's reset.

use http::Method;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

use super::{Harness, Reply, OWNER_PASSWORD, PASSWORD};
use crate::app::now_secs;
use crate::store::SessionStage;

/// The code an authenticator app with `secret` (base32) shows `steps` steps from now.
fn code(secret: &str, steps: i64) -> String {
    let bytes = Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap_or_else(|e| panic!("secret: {e:?}"));
    let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, bytes, None, String::new());
    let at = u64::try_from(now_secs() + steps * 30).unwrap_or(0);
    totp.generate(at)
}

/// Enrol an app for the session `cookie`; its secret and recovery codes.
async fn enrol(h: &Harness, cookie: &str) -> (String, Vec<String>, Reply) {
    let r = h.post("/2fa/totp/setup", &json!({}), Some(cookie)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let data = r.json()["data"].clone();
    let secret = data["secret"].as_str().unwrap_or_default().to_string();
    assert!(data["otpauthUrl"]
        .as_str()
        .is_some_and(|u| u.starts_with("otpauth://totp/")));
    assert!(data["qrSvg"].as_str().is_some_and(|s| s.contains("<svg")));
    let r = h
        .post(
            "/2fa/totp/confirm",
            &json!({"code": code(&secret, 0)}),
            Some(cookie),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let codes: Vec<String> = r.json()["data"]["recoveryCodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    (secret, codes, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_completes_the_half_open_session_once() {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    let (id, member) = h.member(&owner, "m@example.com", "user").await;

    // Setting up: nothing is active until a right code confirms it.
    let r = h.post("/2fa/totp/setup", &json!({}), Some(&member)).await;
    let secret = r.json()["data"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = h
        .post(
            "/2fa/totp/confirm",
            &json!({"code": "000000"}),
            Some(&member),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "VALIDATION_ERROR"),
        "{}",
        r.body
    );
    assert_eq!(
        h.get("/me", Some(&member)).await.json()["data"]["secondFactor"]["totp"],
        false
    );
    let r = h
        .post(
            "/2fa/totp/confirm",
            &json!({"code": code(&secret, 0)}),
            Some(&member),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let codes = r.json()["data"]["recoveryCodes"].as_array().map(Vec::len);
    assert_eq!(codes, Some(10));
    // The code proved the factor: the session goes on under a new id, as one that gave it.
    let enrolled = r
        .session_cookie()
        .unwrap_or_else(|| panic!("a new session"));
    assert_eq!(h.get("/me", Some(&member)).await.status, 401);
    let me = h.get("/me", Some(&enrolled)).await.json();
    assert_eq!(me["data"]["session"]["authMethods"], json!(["pwd", "otp"]));
    assert_eq!(
        me["data"]["secondFactor"],
        json!({"totp": true, "passkeys": 0, "recoveryCodesLeft": 10})
    );
    // The secret is stored sealed, not as the app's text.
    let stored = h.app.store.factors(&id).await.unwrap_or_default();
    let sealed = stored.totp.map(|t| t.sealed_secret).unwrap_or_default();
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));

    // A right password now opens a half-open session only.
    let r = h.login("m@example.com", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["data"],
        json!({"secondFactorRequired": true, "methods": ["totp", "recovery"]})
    );
    let half = r.session_cookie().unwrap_or_else(|| panic!("no cookie"));
    assert_eq!(h.get("/me", Some(&half)).await.status, 401);
    assert_eq!(h.get("/sessions", Some(&half)).await.status, 401);
    let key = crate::auth::session::key_for(half.trim_start_matches("authgate_session="))
        .unwrap_or_else(|| panic!("key"));
    let (record, _) = h
        .app
        .store
        .get_session(&key)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("stored"));
    assert_eq!(record.stage, SessionStage::SecondFactor);
    assert!(
        record.expires_at <= now_secs() + 300,
        "half-open for 5 minutes at most"
    );

    // The code that confirmed the app is spent; the next one works, once.
    let r = h
        .post(
            "/2fa/verify",
            &json!({"code": code(&secret, 0)}),
            Some(&half),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "INVALID_CREDENTIALS"),
        "replayed"
    );
    let next = code(&secret, 1);
    let r = h
        .post("/2fa/verify", &json!({"code": next}), Some(&half))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let full = r
        .session_cookie()
        .unwrap_or_else(|| panic!("a new session"));
    assert_ne!(full, half, "a new id");
    assert_eq!(
        h.get("/me", Some(&half)).await.status,
        401,
        "the half-open one is gone"
    );
    let me = h.get("/me", Some(&full)).await.json();
    assert_eq!(me["data"]["session"]["authMethods"], json!(["pwd", "otp"]));
    let again = h
        .login("m@example.com", PASSWORD)
        .await
        .session_cookie()
        .unwrap_or_default();
    let r = h
        .post("/2fa/verify", &json!({"code": next}), Some(&again))
        .await;
    assert_eq!(r.status, 401, "a code is never accepted twice");

    // New recovery codes need the password; the new set works.
    let r = h
        .post(
            "/2fa/recovery-codes",
            &json!({"password": "not it"}),
            Some(&full),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = h
        .post(
            "/2fa/recovery-codes",
            &json!({"password": PASSWORD}),
            Some(&full),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh: Vec<String> = r.json()["data"]["recoveryCodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(fresh.len(), 10);
    let half = h
        .login("m@example.com", PASSWORD)
        .await
        .session_cookie()
        .unwrap_or_default();
    let r = h
        .post("/2fa/verify", &json!({"code": fresh[3]}), Some(&half))
        .await;
    assert_eq!(r.status, 200, "a new code works: {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_codes_work_once_and_wrong_codes_lock_the_account() {
    let h = Harness::new("[security]\nmax_failed_logins = 3\n").await;
    let owner = h.owner().await;
    let (_, member) = h.member(&owner, "m@example.com", "user").await;
    let (_, codes, _) = enrol(&h, &member).await;

    let half = h
        .login("m@example.com", PASSWORD)
        .await
        .session_cookie()
        .unwrap_or_default();
    let typed = codes[0].to_lowercase().replace('-', " ");
    let r = h
        .post("/2fa/verify", &json!({"code": typed}), Some(&half))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let full = r.session_cookie().unwrap_or_default();
    let me = h.get("/me", Some(&full)).await.json();
    assert_eq!(
        me["data"]["session"]["authMethods"],
        json!(["pwd", "recovery"])
    );
    assert_eq!(me["data"]["secondFactor"]["recoveryCodesLeft"], 9);

    let half = h
        .login("m@example.com", PASSWORD)
        .await
        .session_cookie()
        .unwrap_or_default();
    let r = h
        .post("/2fa/verify", &json!({"code": codes[0]}), Some(&half))
        .await;
    assert_eq!(r.status, 401, "used");
    let r = h
        .post("/2fa/verify", &json!({"code": "123456"}), Some(&half))
        .await;
    assert_eq!(r.status, 401);
    let r = h
        .post("/2fa/verify", &json!({"code": "123457"}), Some(&half))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (423, "ACCOUNT_LOCKED"),
        "{}",
        r.body
    );
    // Locked: even a right recovery code waits, and so does the password.
    let r = h
        .post("/2fa/verify", &json!({"code": codes[1]}), Some(&half))
        .await;
    assert_eq!(r.status, 423);
    assert_eq!(h.login("m@example.com", PASSWORD).await.status, 423);

    // New codes need the password; the old ones stop working.
    let r = h
        .post(
            "/2fa/recovery-codes",
            &json!({"password": "wrong"}),
            Some(&full),
        )
        .await;
    assert_eq!(r.status, 423, "still locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_makes_admins_enrol_first_and_an_admin_can_reset() {
    let h = Harness::new("[auth]\nsecond_factor = \"required_for_admins\"\n").await;
    let owner = h.owner().await;
    // The owner's setup session predates nothing: a new sign-in must enrol.
    let r = h.login("owner", OWNER_PASSWORD).await;
    assert_eq!(
        r.json()["data"]["secondFactorEnrolRequired"],
        true,
        "{}",
        r.body
    );
    let enrolling = r.session_cookie().unwrap_or_default();
    assert_eq!(
        h.get("/me", Some(&enrolling)).await.status,
        401,
        "only enrolment"
    );
    assert_eq!(h.get("/admin/users", Some(&enrolling)).await.status, 401);
    let (secret, _, confirmed) = enrol(&h, &enrolling).await;
    let full = confirmed
        .session_cookie()
        .unwrap_or_else(|| panic!("enrolling completes the session"));
    let me = h.get("/me", Some(&full)).await.json();
    assert_eq!(me["data"]["session"]["authMethods"], json!(["pwd", "otp"]));
    assert_eq!(h.get("/me", Some(&enrolling)).await.status, 401, "replaced");

    // A plain user is not asked.
    let (id, _) = h.member(&owner, "m@example.com", "user").await;
    let r = h.login("m@example.com", PASSWORD).await;
    assert!(r.json()["data"]["user"].is_object(), "{}", r.body);

    // The owner removes their own app with a code, and resets someone else's.
    let r = h
        .json(
            Method::DELETE,
            "/2fa/totp",
            &json!({"code": code(&secret, 1)}),
            Some(&full),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!h.app.store.factors("x").await.unwrap_or_default().any());
    let r = h
        .json(
            Method::DELETE,
            &format!("/admin/users/{id}/second-factor"),
            &json!({}),
            Some(&full),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        h.get("/me", Some(&owner)).await.status,
        200,
        "the setup session is complete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_person_page_resets_two_step_verification() {
    let h = Harness::new("").await;
    let owner = h.owner().await;
    let (id, member) = h.member(&owner, "m@example.com", "user").await;
    enrol(&h, &member).await;
    assert!(h.app.store.factors(&id).await.unwrap_or_default().any());
    let page = h.get(&format!("/admin/users/{id}"), Some(&owner)).await;
    assert!(page.body.contains("\"success\""), "an API client gets JSON");
    let r = super::submit(
        &h,
        &format!("/admin/users/{id}/reset-2fa"),
        &[],
        Some(&owner),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!h.app.store.factors(&id).await.unwrap_or_default().any());
    assert!(h
        .app
        .store
        .user_sessions(&id)
        .await
        .unwrap_or_default()
        .is_empty());
    let r = h.login("m@example.com", PASSWORD).await;
    assert!(r.json()["data"]["user"].is_object(), "{}", r.body);
}
