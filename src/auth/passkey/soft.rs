//! A software authenticator behind a WebAuthn client (the `passkey` crate), speaking the JSON
//! a browser's `navigator.credentials` does: for the tests of the ceremonies and of the
//! endpoints.

use passkey::authenticator::{
    Authenticator, CredentialStore, DiscoverabilitySupport, StoreInfo, UiHint, UserCheck,
    UserValidationMethod,
};
use passkey::client::{Client, DefaultClientData};
use passkey::crypto::rust_crypto::RustCryptoBackend;
use passkey::types::ctap2::make_credential::{
    Options, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};
use passkey::types::ctap2::{Aaguid, Ctap2Error, StatusCode};
use passkey::types::webauthn::{
    CredentialCreationOptions, CredentialRequestOptions, PublicKeyCredentialDescriptor,
};
use serde_json::{json, Value};
use url::Url;

use super::{RegistrationResponse, SignInResponse};

/// The authenticator's credentials, found by id or (discoverable) by relying party.
#[derive(Default)]
struct Keyring(Vec<passkey::types::Passkey>);

#[async_trait::async_trait]
impl CredentialStore for Keyring {
    type PasskeyItem = passkey::types::Passkey;

    async fn find_credentials(
        &self,
        allow: Option<&[PublicKeyCredentialDescriptor]>,
        rp_id: &str,
        _user_handle: Option<&[u8]>,
    ) -> Result<Vec<Self::PasskeyItem>, StatusCode> {
        let found: Vec<_> = self
            .0
            .iter()
            .filter(|p| p.rp_id == rp_id)
            .filter(|p| match allow {
                Some(list) if !list.is_empty() => list.iter().any(|d| d.id == p.credential_id),
                _ => true,
            })
            .cloned()
            .collect();
        if found.is_empty() {
            Err(Ctap2Error::NoCredentials.into())
        } else {
            Ok(found)
        }
    }

    async fn save_credential(
        &mut self,
        cred: Self::PasskeyItem,
        _user: PublicKeyCredentialUserEntity,
        _rp: PublicKeyCredentialRpEntity,
        _options: Options,
    ) -> Result<(), StatusCode> {
        self.0.push(cred);
        Ok(())
    }

    async fn update_credential(&mut self, cred: &Self::PasskeyItem) -> Result<(), StatusCode> {
        for p in &mut self.0 {
            if p.credential_id == cred.credential_id {
                *p = cred.clone();
            }
        }
        Ok(())
    }

    async fn get_info(&self) -> StoreInfo {
        StoreInfo {
            discoverability: DiscoverabilitySupport::Full,
        }
    }
}

/// The person at the authenticator: always present, verified (PIN, fingerprint) when able.
struct Person {
    verifies: bool,
}

#[async_trait::async_trait]
impl UserValidationMethod for Person {
    type PasskeyItem = passkey::types::Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Self::PasskeyItem>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification: verification && self.verifies,
        })
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(self.verifies)
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }
}

/// A browser with one authenticator that keeps a signature counter.
pub(crate) struct Browser(
    Client<Keyring, Person, RustCryptoBackend, public_suffix::PublicSuffixList, ()>,
);

impl Browser {
    pub(crate) fn new(verifies: bool) -> Browser {
        let mut authenticator = Authenticator::new(
            Aaguid::new_empty(),
            Keyring::default(),
            Person { verifies },
            RustCryptoBackend,
        );
        authenticator.set_make_credentials_with_signature_counter(true);
        Browser(Client::new(authenticator).user_verification_when_preferred(verifies))
    }

    /// `navigator.credentials.create()` on a page of `origin`, as JSON.
    pub(crate) async fn create_json(&mut self, origin: &str, options: &Value) -> Value {
        let options: CredentialCreationOptions =
            serde_json::from_value(options.clone()).expect("creation options");
        let origin = Url::parse(origin).expect("origin");
        let created = self
            .0
            .register(&origin, options, DefaultClientData)
            .await
            .expect("the authenticator creates a credential");
        serde_json::to_value(created).expect("json")
    }

    /// [`Browser::create_json`], read as the server reads it.
    pub(crate) async fn create(&mut self, origin: &str, options: &Value) -> RegistrationResponse {
        let answer = self.create_json(origin, options).await;
        RegistrationResponse::from_json(&answer).expect("a registration answer")
    }

    /// `navigator.credentials.get()` on a page of `origin`, as JSON.
    pub(crate) async fn get_json(&mut self, origin: &str, options: &Value) -> Value {
        let mut options = options.clone();
        // An empty allow list means "any passkey for this site" in WebAuthn; this client wants
        // it left out.
        if options["publicKey"]["allowCredentials"] == json!([]) {
            if let Some(o) = options["publicKey"].as_object_mut() {
                o.remove("allowCredentials");
            }
        }
        let options: CredentialRequestOptions =
            serde_json::from_value(options).expect("request options");
        let origin = Url::parse(origin).expect("origin");
        let asserted = self
            .0
            .authenticate(&origin, options, DefaultClientData)
            .await
            .expect("the authenticator signs");
        serde_json::to_value(asserted).expect("json")
    }

    /// [`Browser::get_json`], read as the server reads it.
    pub(crate) async fn get(&mut self, origin: &str, options: &Value) -> SignInResponse {
        let answer = self.get_json(origin, options).await;
        SignInResponse::from_json(&answer).expect("a sign-in answer")
    }

    /// Set every credential's signature counter (as a copy of an older authenticator would).
    pub(crate) fn set_counters(&mut self, counter: u32) {
        for p in &mut self.0.authenticator_mut().store_mut().0 {
            p.counter = Some(counter);
        }
    }
}
