//! (to be written)

use async_trait::async_trait;

use super::PgStore;

#[allow(unused_imports)]
use crate::store::records::*;
#[allow(unused_imports)]
use crate::store::*;

#[async_trait]
impl Passkeys for PgStore {
    #[allow(unused_variables)]
    async fn user_passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn find_passkey(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<(PasskeyRecord, UserRecord)>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn add_passkey(&self, passkey: PasskeyRecord) -> Result<bool, WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn note_passkey_use(
        &self,
        credential_id: &[u8],
        credential: String,
        at: i64,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn remove_passkeys(&self, user_id: &str) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}

#[async_trait]
impl Challenges for PgStore {
    #[allow(unused_variables)]
    async fn put_challenge(
        &self,
        key: [u8; 32],
        state: Vec<u8>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn take_challenge(&self, key: [u8; 32], now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn sweep_expired_challenges(&self, now: i64, limit: usize) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}
