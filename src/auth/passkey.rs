//! Passkeys (WebAuthn): the relying party and its ceremonies. Each is a pure pair: a start
//! that returns the options for the browser (`{"publicKey": …}`) and a pending state the caller
//! keeps server-side (single-use, [`CEREMONY_SECS`]), and a finish that checks the browser's
//! answer against it. Registration asks for a discoverable credential (so it signs in without a
//! password), prefers user verification and asks for no attestation; sign-in is either for a
//! known user (a second factor after their password) or discoverable (no user named first).
//! The caller keeps a pending state under a key only the starting browser holds (the hash of
//! a cookie's value) and takes it out once (`store::Challenges`), so an answer finishes only
//! the ceremony its browser started, and only once.
//!
//! webauthn-rs's passkey API requires user verification and discourages resident keys, so the
//! ceremonies are driven through its core with these choices; the stored credential is
//! webauthn-rs's [`Passkey`], serialised, so the records stay readable by its higher-level API.

use serde::{Deserialize, Serialize};
use url::Url;
use webauthn_rs::prelude::Passkey;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AuthenticationState, CredProtect, Credential,
    CredentialProtectionPolicy, PublicKeyCredential, RegisterPublicKeyCredential,
    RegistrationState, RequestRegistrationExtensions, UserVerificationPolicy,
};
use webauthn_rs_core::WebauthnCore;

use crate::config::PasskeyConfig;
use crate::store::{passkey_id, PasskeyRecord};

/// How long a ceremony may take from start to finish (seconds); also the browser's timeout.
pub const CEREMONY_SECS: i64 = 300;

/// A passkey's name may be this many characters long.
const NAME_MAX_CHARS: usize = 64;

/// The name of a passkey registered without one.
const DEFAULT_NAME: &str = "Passkey";

/// Format tags of the pending states (a state from another build is refused, never guessed).
const REGISTRATION_V1: u8 = 1;
const SIGN_IN_V1: u8 = 2;

/// Why a ceremony could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The relying party could not be set up from its (validated) configuration.
    #[error("passkeys cannot be set up: {0}")]
    Setup(String),
    /// The ceremony took longer than [`CEREMONY_SECS`].
    #[error("the passkey ceremony expired; start again")]
    Expired,
    /// A pending state or the browser's answer could not be read.
    #[error("malformed passkey data: {0}")]
    Malformed(String),
    /// The passkey belongs to another account than the ceremony's, or is not the one answering.
    #[error("this passkey does not belong to this account")]
    NotTheirs,
    /// A sign-in was asked of a user without passkeys.
    #[error("no passkey is registered for this account")]
    NoPasskeys,
    /// The signature counter did not advance past the stored one: the credential may have
    /// been copied.
    #[error("the passkey's signature counter went backwards; it may have been cloned")]
    PossibleClone,
    /// The answer failed verification: challenge, origin, relying party, flags or signature.
    #[error("the passkey was refused: {0}")]
    Refused(String),
    /// The name given to a new passkey is unusable.
    #[error("{0}")]
    InvalidName(String),
}

/// The account a passkey is registered for.
#[derive(Debug, Clone, Copy)]
pub struct PasskeyUser<'a> {
    /// The user id; it becomes the credential's user handle (opaque, not personal data).
    pub id: &'a str,
    /// What authenticators show as the account (the email address).
    pub name: &'a str,
    /// The person's name; the account name when empty.
    pub display_name: &'a str,
}

/// A registration between start and finish, for the caller to keep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRegistration {
    user_id: String,
    state: RegistrationState,
    expires_at: i64,
}

/// A sign-in between start and finish, for the caller to keep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// `None` for a discoverable sign-in (the answer names the user).
    user_id: Option<String>,
    state: AuthenticationState,
    expires_at: i64,
}

/// Encode a pending state behind its format tag.
fn encode_state<T: Serialize>(tag: u8, state: &T) -> Result<Vec<u8>, PasskeyError> {
    let mut out = vec![tag];
    serde_json::to_writer(&mut out, state).map_err(|e| PasskeyError::Malformed(e.to_string()))?;
    Ok(out)
}

/// Decode a pending state written by [`encode_state`] with `tag`.
fn decode_state<T: for<'de> Deserialize<'de>>(tag: u8, bytes: &[u8]) -> Result<T, PasskeyError> {
    match bytes.split_first() {
        Some((t, body)) if *t == tag => {
            serde_json::from_slice(body).map_err(|e| PasskeyError::Malformed(e.to_string()))
        }
        _ => Err(PasskeyError::Malformed(
            "not a state of this ceremony".into(),
        )),
    }
}

impl PendingRegistration {
    /// The user registering.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    /// When it expires (Unix seconds): the expiry to store it with.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }
    /// The bytes to store.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PasskeyError> {
        encode_state(REGISTRATION_V1, self)
    }
    /// Read back what [`PendingRegistration::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<PendingRegistration, PasskeyError> {
        decode_state(REGISTRATION_V1, bytes)
    }
}

impl PendingSignIn {
    /// The user asked to sign in; `None` for a discoverable sign-in.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }
    /// When it expires (Unix seconds): the expiry to store it with.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }
    /// The bytes to store.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PasskeyError> {
        encode_state(SIGN_IN_V1, self)
    }
    /// Read back what [`PendingSignIn::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<PendingSignIn, PasskeyError> {
        decode_state(SIGN_IN_V1, bytes)
    }
}

/// The browser's answer to a registration (`navigator.credentials.create()`, as JSON).
#[derive(Debug, Clone)]
pub struct RegistrationResponse(RegisterPublicKeyCredential);

impl RegistrationResponse {
    /// Read the answer.
    pub fn from_json(value: &serde_json::Value) -> Result<RegistrationResponse, PasskeyError> {
        serde_json::from_value(value.clone())
            .map(RegistrationResponse)
            .map_err(|e| PasskeyError::Malformed(e.to_string()))
    }
}

/// The browser's answer to a sign-in (`navigator.credentials.get()`, as JSON).
#[derive(Debug, Clone)]
pub struct SignInResponse(PublicKeyCredential);

impl SignInResponse {
    /// Read the answer.
    pub fn from_json(value: &serde_json::Value) -> Result<SignInResponse, PasskeyError> {
        serde_json::from_value(value.clone())
            .map(SignInResponse)
            .map_err(|e| PasskeyError::Malformed(e.to_string()))
    }
    /// The credential id it names: the key to find the stored passkey by.
    pub fn credential_id(&self) -> &[u8] {
        self.0.get_credential_id()
    }
    /// The user handle a discoverable credential returns (the user id's bytes).
    pub fn user_handle(&self) -> Option<&[u8]> {
        self.0.get_user_unique_id()
    }
}

/// A verified sign-in with a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUse {
    /// Whose passkey it is: the user signing in.
    pub user_id: String,
    /// The passkey's shown id.
    pub passkey_id: String,
    /// The key to store the updated credential under.
    pub credential_id: Vec<u8>,
    /// The authenticator verified the user (PIN, biometrics): possession and a second factor
    /// in one. Without it the passkey counts as possession only.
    pub user_verified: bool,
    /// The credential as this sign-in leaves it (counter, backup state), to store.
    pub credential: String,
}

/// The WebAuthn relying party of this gateway.
pub struct RelyingParty {
    core: WebauthnCore,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty").finish_non_exhaustive()
    }
}

/// A webauthn-rs verification failure as the caller sees it.
fn refused(e: WebauthnError) -> PasskeyError {
    match e {
        WebauthnError::CredentialPossibleCompromise => PasskeyError::PossibleClone,
        other => PasskeyError::Refused(other.to_string()),
    }
}

/// The stored credential of a record.
fn credential_of(record: &PasskeyRecord) -> Result<Credential, PasskeyError> {
    let passkey: Passkey = serde_json::from_str(&record.credential)
        .map_err(|e| PasskeyError::Malformed(format!("stored passkey {}: {e}", record.id)))?;
    Ok(Credential::from(passkey))
}

/// A credential in the form a record stores it.
fn stored_form(credential: Credential) -> Result<String, PasskeyError> {
    serde_json::to_string(&Passkey::from(credential))
        .map_err(|e| PasskeyError::Malformed(e.to_string()))
}

/// A passkey's name as the user gave it: trimmed, [`DEFAULT_NAME`] when empty.
fn passkey_name(raw: &str) -> Result<String, PasskeyError> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok(DEFAULT_NAME.into());
    }
    if name.chars().count() > NAME_MAX_CHARS || name.chars().any(char::is_control) {
        return Err(PasskeyError::InvalidName(format!(
            "a passkey's name is at most {NAME_MAX_CHARS} characters, without control characters"
        )));
    }
    Ok(name.to_string())
}

impl RelyingParty {
    /// The relying party of a validated `[auth.passkeys]`.
    pub fn new(config: &PasskeyConfig) -> Result<RelyingParty, PasskeyError> {
        let mut origins = Vec::new();
        for o in &config.origins {
            origins.push(Url::parse(o).map_err(|e| PasskeyError::Setup(format!("{o}: {e}")))?);
        }
        if origins.is_empty() {
            return Err(PasskeyError::Setup("no origin".into()));
        }
        let timeout = std::time::Duration::from_secs(CEREMONY_SECS.unsigned_abs());
        // Origins must match exactly: no other subdomain, no other port.
        let core = WebauthnCore::new_unsafe_experts_only(
            &config.rp_name,
            &config.rp_id,
            origins,
            timeout,
            Some(false),
            Some(false),
        );
        Ok(RelyingParty { core })
    }

    /// Start registering a passkey for `user`; `existing` are their passkeys (the browser
    /// refuses an authenticator that holds one of them already).
    pub fn start_registration(
        &self,
        user: PasskeyUser<'_>,
        existing: &[PasskeyRecord],
        now: i64,
    ) -> Result<(serde_json::Value, PendingRegistration), PasskeyError> {
        let display_name = if user.display_name.trim().is_empty() {
            user.name
        } else {
            user.display_name
        };
        let exclude = existing.iter().map(|p| p.credential_id.clone()).collect();
        let extensions = RequestRegistrationExtensions {
            // Discoverable only after user verification, usable with its id without: a lost
            // security key does not reveal the account, yet works as a second factor.
            cred_protect: Some(CredProtect {
                credential_protection_policy:
                    CredentialProtectionPolicy::UserVerificationOptionalWithCredentialIDList,
                // An authenticator without the extension still registers.
                enforce_credential_protection_policy: Some(false),
            }),
            uvm: None,
            cred_props: Some(true),
            min_pin_length: None,
            hmac_create_secret: None,
        };
        let builder = self
            .core
            .new_challenge_register_builder(user.id.as_bytes(), user.name, display_name)
            .map_err(refused)?
            .attestation(AttestationConveyancePreference::None)
            .user_verification_policy(UserVerificationPolicy::Preferred)
            .require_resident_key(true)
            .authenticator_attachment(None)
            .reject_synchronised_authenticators(false)
            .exclude_credentials(Some(exclude))
            .hints(None)
            .extensions(Some(extensions));
        let (options, state) = self
            .core
            .generate_challenge_register(builder)
            .map_err(refused)?;
        let options =
            serde_json::to_value(options).map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        let pending = PendingRegistration {
            user_id: user.id.to_string(),
            state,
            expires_at: now.saturating_add(CEREMONY_SECS),
        };
        Ok((options, pending))
    }

    /// Finish a registration for `user_id` (the signed-in user, who must be the one who
    /// started it): the record to store, named `name`.
    pub fn finish_registration(
        &self,
        pending: PendingRegistration,
        user_id: &str,
        response: &RegistrationResponse,
        name: &str,
        now: i64,
    ) -> Result<PasskeyRecord, PasskeyError> {
        if now >= pending.expires_at {
            return Err(PasskeyError::Expired);
        }
        if pending.user_id != user_id {
            return Err(PasskeyError::NotTheirs);
        }
        let name = passkey_name(name)?;
        let credential = self
            .core
            .register_credential(&response.0, &pending.state, None)
            .map_err(refused)?;
        let credential_id = credential.cred_id.to_vec();
        Ok(PasskeyRecord {
            id: passkey_id(&credential_id),
            user_id: pending.user_id,
            credential_id,
            name,
            credential: stored_form(credential)?,
            created_at: now,
            last_used_at: None,
        })
    }

    /// Start a sign-in of a known user with one of `passkeys` (theirs): the second factor
    /// after a password.
    pub fn start_sign_in(
        &self,
        user_id: &str,
        passkeys: &[PasskeyRecord],
        now: i64,
    ) -> Result<(serde_json::Value, PendingSignIn), PasskeyError> {
        let mut credentials = Vec::new();
        for p in passkeys {
            if p.user_id != user_id {
                return Err(PasskeyError::NotTheirs);
            }
            credentials.push(credential_of(p)?);
        }
        if credentials.is_empty() {
            return Err(PasskeyError::NoPasskeys);
        }
        self.start(Some(user_id.to_string()), credentials, now)
    }

    /// Start a sign-in without naming the user: the browser offers the passkeys it holds for
    /// this site, and the answer says whose it is.
    pub fn start_discoverable_sign_in(
        &self,
        now: i64,
    ) -> Result<(serde_json::Value, PendingSignIn), PasskeyError> {
        self.start(None, Vec::new(), now)
    }

    fn start(
        &self,
        user_id: Option<String>,
        credentials: Vec<Credential>,
        now: i64,
    ) -> Result<(serde_json::Value, PendingSignIn), PasskeyError> {
        let builder = self
            .core
            .new_challenge_authenticate_builder(
                credentials,
                Some(UserVerificationPolicy::Preferred),
            )
            .map_err(refused)?
            // A passkey that becomes synced (backup eligible) later stays usable.
            .allow_backup_eligible_upgrade(true)
            .hints(None);
        let (options, state) = self
            .core
            .generate_challenge_authenticate(builder)
            .map_err(refused)?;
        let options =
            serde_json::to_value(options).map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        let pending = PendingSignIn {
            user_id,
            state,
            expires_at: now.saturating_add(CEREMONY_SECS),
        };
        Ok((options, pending))
    }

    /// Finish a sign-in with `passkey`, the stored record of the credential the answer names
    /// (found by [`SignInResponse::credential_id`]). Checks that it belongs to the user the
    /// sign-in was for (or, discoverable, to the user handle the answer carries), then the
    /// challenge, origin, relying party, flags, signature and counter. Whether the user may
    /// sign in (active, not locked) is the caller's decision, and so is storing
    /// [`PasskeyUse::credential`] (`note_passkey_use`).
    pub fn finish_sign_in(
        &self,
        pending: PendingSignIn,
        response: &SignInResponse,
        passkey: &PasskeyRecord,
        now: i64,
    ) -> Result<PasskeyUse, PasskeyError> {
        if now >= pending.expires_at {
            return Err(PasskeyError::Expired);
        }
        if !passkey_answers(&pending, response, passkey) {
            return Err(PasskeyError::NotTheirs);
        }
        let credential = credential_of(passkey)?;
        let result = self
            .core
            .authenticate_single_credential(&response.0, &pending.state, &credential)
            .map_err(refused)?;
        let mut updated = Passkey::from(credential);
        updated.update_credential(&result);
        let credential =
            serde_json::to_string(&updated).map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        Ok(PasskeyUse {
            user_id: passkey.user_id.clone(),
            passkey_id: passkey.id.clone(),
            credential_id: passkey.credential_id.clone(),
            user_verified: result.user_verified(),
            credential,
        })
    }
}

/// Whether `passkey` may answer `pending`: it is the credential the answer names, of the user
/// the sign-in was for; a discoverable answer must carry that user's handle, and any answer
/// that carries one must carry theirs.
fn passkey_answers(
    pending: &PendingSignIn,
    response: &SignInResponse,
    passkey: &PasskeyRecord,
) -> bool {
    if response.credential_id() != passkey.credential_id.as_slice() {
        return false;
    }
    if pending
        .user_id
        .as_deref()
        .is_some_and(|u| u != passkey.user_id)
    {
        return false;
    }
    match response.user_handle() {
        Some(handle) => handle == passkey.user_id.as_bytes(),
        None => pending.user_id.is_some(),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod soft;
