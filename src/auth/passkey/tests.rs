//! The ceremonies end to end against a software authenticator behind a WebAuthn client (the
//! `passkey` crate), speaking the same JSON a browser does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::soft::Browser;

use super::*;
use crate::config::PasskeyConfig;

const ORIGIN: &str = "https://auth.example.com";
const NOW: i64 = 1_700_000_000;

fn relying_party() -> RelyingParty {
    RelyingParty::new(&PasskeyConfig {
        rp_id: "example.com".into(),
        rp_name: "Example".into(),
        origins: vec![ORIGIN.into()],
    })
    .expect("relying party")
}

fn alice() -> PasskeyUser<'static> {
    PasskeyUser {
        id: "0123456789abcdef0123456789abcdef",
        name: "alice@example.com",
        display_name: "Alice",
    }
}

/// Register a passkey for Alice with `browser`.
async fn register(rp: &RelyingParty, browser: &mut Browser) -> PasskeyRecord {
    let (options, pending) = rp
        .start_registration(alice(), &[], NOW)
        .expect("registration starts");
    let answer = browser.create(ORIGIN, &options).await;
    rp.finish_registration(pending, alice().id, &answer, " Laptop ", NOW + 10)
        .expect("registration finishes")
}

/// Sign in (discoverable) with `browser`; the record is updated as the caller would store it.
async fn sign_in(
    rp: &RelyingParty,
    browser: &mut Browser,
    record: &mut PasskeyRecord,
) -> Result<PasskeyUse, PasskeyError> {
    let (options, pending) = rp.start_discoverable_sign_in(NOW).expect("starts");
    let answer = browser.get(ORIGIN, &options).await;
    let used = rp.finish_sign_in(pending, &answer, record, NOW + 20)?;
    record.credential = used.credential.clone();
    Ok(used)
}

#[tokio::test]
async fn register_then_sign_in_without_a_password() {
    let rp = relying_party();
    let mut browser = Browser::new(true);
    let (options, pending) = rp
        .start_registration(alice(), &[], NOW)
        .expect("registration starts");
    let public_key = &options["publicKey"];
    assert_eq!(public_key["rp"]["id"], "example.com");
    assert_eq!(public_key["rp"]["name"], "Example");
    assert_eq!(
        public_key["authenticatorSelection"]["residentKey"],
        "required"
    );
    assert_eq!(
        public_key["authenticatorSelection"]["userVerification"],
        "preferred"
    );
    assert_eq!(public_key["attestation"], "none");
    assert_eq!(public_key["timeout"], 300_000);
    assert_eq!(pending.user_id(), alice().id);
    assert_eq!(pending.expires_at(), NOW + CEREMONY_SECS);
    // Kept as bytes between the two requests.
    let pending =
        PendingRegistration::from_bytes(&pending.to_bytes().expect("bytes")).expect("reads back");
    let answer = browser.create(ORIGIN, &options).await;
    let record = rp
        .finish_registration(pending, alice().id, &answer, " Laptop ", NOW + 10)
        .expect("registration finishes");
    assert_eq!(record.user_id, alice().id);
    assert_eq!(record.name, "Laptop");
    assert_eq!(record.id, passkey_id(&record.credential_id));
    assert_eq!((record.created_at, record.last_used_at), (NOW + 10, None));

    let (options, pending) = rp.start_discoverable_sign_in(NOW + 60).expect("starts");
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    assert_eq!(pending.user_id(), None);
    let pending =
        PendingSignIn::from_bytes(&pending.to_bytes().expect("bytes")).expect("reads back");
    let answer = browser.get(ORIGIN, &options).await;
    // The caller finds the record by the credential id; the handle names the user.
    assert_eq!(answer.credential_id(), record.credential_id.as_slice());
    assert_eq!(answer.user_handle(), Some(alice().id.as_bytes()));
    let used = rp
        .finish_sign_in(pending, &answer, &record, NOW + 70)
        .expect("signs in");
    assert_eq!(used.user_id, alice().id);
    assert_eq!(used.passkey_id, record.id);
    assert_eq!(used.credential_id, record.credential_id);
    assert!(used.user_verified, "a verifying authenticator: two factors");
    assert_ne!(used.credential, record.credential, "the counter moved on");
}

#[tokio::test]
async fn a_passkey_is_the_second_factor_of_a_known_user() {
    let rp = relying_party();
    let mut browser = Browser::new(true);
    let record = register(&rp, &mut browser).await;
    assert!(matches!(
        rp.start_sign_in(alice().id, &[], NOW),
        Err(PasskeyError::NoPasskeys)
    ));
    assert!(matches!(
        rp.start_sign_in("someone-else", std::slice::from_ref(&record), NOW),
        Err(PasskeyError::NotTheirs)
    ));
    let (options, pending) = rp
        .start_sign_in(alice().id, std::slice::from_ref(&record), NOW)
        .expect("starts");
    let allowed = &options["publicKey"]["allowCredentials"];
    assert_eq!(
        allowed[0]["id"],
        URL_SAFE_NO_PAD.encode(&record.credential_id)
    );
    assert_eq!(pending.user_id(), Some(alice().id));
    let answer = browser.get(ORIGIN, &options).await;
    let used = rp
        .finish_sign_in(pending, &answer, &record, NOW + 5)
        .expect("signs in");
    assert_eq!(used.user_id, alice().id);
}

#[tokio::test]
async fn without_user_verification_a_passkey_is_possession_only() {
    let rp = relying_party();
    let mut browser = Browser::new(false);
    let mut record = register(&rp, &mut browser).await;
    let used = sign_in(&rp, &mut browser, &mut record)
        .await
        .expect("user verification is preferred, not required");
    assert!(!used.user_verified);
}

#[tokio::test]
async fn a_replayed_answer_is_refused() {
    let rp = relying_party();
    let mut browser = Browser::new(true);
    let record = register(&rp, &mut browser).await;
    let (dir, store) = {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::redb::RedbStore::open(&dir.path().join("db.redb")).expect("db");
        (dir, store)
    };
    use crate::store::Challenges as _;
    let key = [7u8; 32];
    let (options, pending) = rp.start_discoverable_sign_in(NOW).expect("starts");
    store
        .put_challenge(
            key,
            pending.to_bytes().expect("bytes"),
            pending.expires_at(),
        )
        .await
        .expect("kept");
    let answer = browser.get(ORIGIN, &options).await;
    let taken = store
        .take_challenge(key, NOW + 1)
        .await
        .expect("read")
        .expect("there");
    let pending = PendingSignIn::from_bytes(&taken).expect("reads back");
    rp.finish_sign_in(pending, &answer, &record, NOW + 1)
        .expect("the first use signs in");
    // The state is single-use: a second finish has nothing to check against.
    assert_eq!(
        store.take_challenge(key, NOW + 2).await.expect("read"),
        None
    );
    // Nor does the same answer pass another ceremony: its challenge is that one's.
    let (_, other) = rp.start_discoverable_sign_in(NOW + 2).expect("starts");
    assert!(matches!(
        rp.finish_sign_in(other, &answer, &record, NOW + 3),
        Err(PasskeyError::Refused(_))
    ));
    drop(dir);
}

#[tokio::test]
async fn an_answer_from_another_origin_is_refused() {
    let rp = relying_party();
    let mut browser = Browser::new(true);
    // A page of a sibling site under the same domain: the browser lets it use the relying
    // party id, the gateway does not take it.
    let (options, pending) = rp.start_registration(alice(), &[], NOW).expect("starts");
    let answer = browser.create("https://evil.example.com", &options).await;
    assert!(matches!(
        rp.finish_registration(pending, alice().id, &answer, "", NOW),
        Err(PasskeyError::Refused(_))
    ));

    let mut browser = Browser::new(true);
    let record = register(&rp, &mut browser).await;
    let (options, pending) = rp.start_discoverable_sign_in(NOW).expect("starts");
    let answer = browser.get("https://evil.example.com", &options).await;
    assert!(matches!(
        rp.finish_sign_in(pending, &answer, &record, NOW),
        Err(PasskeyError::Refused(_))
    ));
}

/// Flip a bit of `field` in the answer's `response` (base64url).
fn tampered(answer: &Value, field: &str, at: usize) -> SignInResponse {
    let mut answer = answer.clone();
    let text = answer["response"][field]
        .as_str()
        .expect("field")
        .to_string();
    let mut bytes = URL_SAFE_NO_PAD.decode(text).expect("base64url");
    let i = at.min(bytes.len() - 1);
    bytes[i] ^= 0x01;
    answer["response"][field] = json!(URL_SAFE_NO_PAD.encode(bytes));
    SignInResponse::from_json(&answer).expect("still readable")
}

#[tokio::test]
async fn a_tampered_answer_is_refused() {
    let rp = relying_party();
    let mut browser = Browser::new(true);
    let record = register(&rp, &mut browser).await;
    let (options, pending) = rp.start_discoverable_sign_in(NOW).expect("starts");
    let answer = browser.get_json(ORIGIN, &options).await;
    // The signature's last byte; the counter in the authenticator data.
    for (field, at) in [("signature", usize::MAX), ("authenticatorData", 36)] {
        let forged = tampered(&answer, field, at);
        assert!(
            matches!(
                rp.finish_sign_in(pending.clone(), &forged, &record, NOW),
                Err(PasskeyError::Refused(_))
            ),
            "{field}"
        );
    }
    let genuine = SignInResponse::from_json(&answer).expect("answer");
    rp.finish_sign_in(pending, &genuine, &record, NOW)
        .expect("the untouched answer passes");
}

#[tokio::test]
async fn a_counter_going_backwards_is_reported_as_a_possible_clone() {
    let rp = relying_party();
    let mut browser = Browser::new(true);
    let mut record = register(&rp, &mut browser).await;
    sign_in(&rp, &mut browser, &mut record).await.expect("1");
    sign_in(&rp, &mut browser, &mut record).await.expect("2");
    // A copy of the authenticator as it was after the first sign-in.
    browser.set_counters(0);
    let refused = sign_in(&rp, &mut browser, &mut record).await;
    assert!(
        matches!(refused, Err(PasskeyError::PossibleClone)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn ceremonies_expire_and_belong_to_their_user() {
    let rp = relying_party();
    let mut browser = Browser::new(true);
    let (options, pending) = rp.start_registration(alice(), &[], NOW).expect("starts");
    let answer = browser.create(ORIGIN, &options).await;
    assert!(matches!(
        rp.finish_registration(pending.clone(), "someone-else", &answer, "", NOW),
        Err(PasskeyError::NotTheirs)
    ));
    assert!(matches!(
        rp.finish_registration(
            pending.clone(),
            alice().id,
            &answer,
            "",
            NOW + CEREMONY_SECS
        ),
        Err(PasskeyError::Expired)
    ));
    assert!(matches!(
        rp.finish_registration(pending.clone(), alice().id, &answer, &"x".repeat(65), NOW),
        Err(PasskeyError::InvalidName(_))
    ));
    let record = rp
        .finish_registration(pending, alice().id, &answer, "", NOW)
        .expect("finishes");
    assert_eq!(record.name, "Passkey");

    let (options, pending) = rp.start_discoverable_sign_in(NOW).expect("starts");
    let answer = browser.get(ORIGIN, &options).await;
    assert!(matches!(
        rp.finish_sign_in(pending, &answer, &record, NOW + CEREMONY_SECS),
        Err(PasskeyError::Expired)
    ));
    // A registration's state is not a sign-in's.
    let (_, registration) = rp.start_registration(alice(), &[], NOW).expect("starts");
    let bytes = registration.to_bytes().expect("bytes");
    assert!(matches!(
        PendingSignIn::from_bytes(&bytes),
        Err(PasskeyError::Malformed(_))
    ));
}

/// An answer naming `credential_id`, carrying `user_handle`.
fn answer_naming(credential_id: &[u8], user_handle: Option<&str>) -> SignInResponse {
    let id = URL_SAFE_NO_PAD.encode(credential_id);
    SignInResponse::from_json(&json!({
        "id": id,
        "rawId": id,
        "type": "public-key",
        "response": {
            "authenticatorData": "",
            "clientDataJSON": "",
            "signature": "",
            "userHandle": user_handle.map(|h| URL_SAFE_NO_PAD.encode(h)),
        },
    }))
    .expect("answer")
}

#[test]
fn which_passkey_may_answer_a_sign_in() {
    let rp = relying_party();
    let record = PasskeyRecord {
        id: passkey_id(b"cred-a"),
        user_id: "alice".into(),
        credential_id: b"cred-a".to_vec(),
        name: "Laptop".into(),
        credential: String::new(),
        created_at: NOW,
        last_used_at: None,
    };
    let (_, discoverable) = rp.start_discoverable_sign_in(NOW).expect("starts");
    let for_alice = PendingSignIn {
        user_id: Some("alice".into()),
        ..discoverable.clone()
    };
    let for_bob = PendingSignIn {
        user_id: Some("bob".into()),
        ..discoverable.clone()
    };
    let cases: &[(&PendingSignIn, &[u8], Option<&str>, bool)] = &[
        // Discoverable: the handle must be there and name the passkey's user.
        (&discoverable, b"cred-a", Some("alice"), true),
        (&discoverable, b"cred-a", None, false),
        (&discoverable, b"cred-a", Some("bob"), false),
        // A known user: their passkey, with or without a handle (but never another's).
        (&for_alice, b"cred-a", None, true),
        (&for_alice, b"cred-a", Some("alice"), true),
        (&for_alice, b"cred-a", Some("bob"), false),
        (&for_bob, b"cred-a", None, false),
        (&for_bob, b"cred-a", Some("alice"), false),
        // The record must be the credential the answer names.
        (&discoverable, b"cred-b", Some("alice"), false),
        (&for_alice, b"cred-b", None, false),
    ];
    for (pending, credential_id, handle, expected) in cases {
        let answer = answer_naming(credential_id, *handle);
        assert_eq!(
            passkey_answers(pending, &answer, &record),
            *expected,
            "{:?} {:?} {handle:?}",
            pending.user_id,
            String::from_utf8_lossy(credential_id)
        );
    }
    // Refused before any signature is looked at.
    let answer = answer_naming(b"cred-a", Some("bob"));
    assert!(matches!(
        rp.finish_sign_in(discoverable, &answer, &record, NOW),
        Err(PasskeyError::NotTheirs)
    ));
}
