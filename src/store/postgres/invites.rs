//! (to be written)

use async_trait::async_trait;

use super::PgStore;

#[allow(unused_imports)]
use crate::store::records::*;
#[allow(unused_imports)]
use crate::store::*;

#[async_trait]
impl Invites for PgStore {
    #[allow(unused_variables)]
    async fn create_invite(&self, code: String, invite: InviteRecord) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn get_invite(&self, code: &str) -> Result<Option<InviteRecord>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn list_invites(&self) -> Result<Vec<InviteRecord>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn delete_invite(&self, id: &str, owner_role_too: bool) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}

#[async_trait]
impl MailTokens for PgStore {
    #[allow(unused_variables)]
    async fn put_token(&self, key: SessionKey, token: TokenRecord) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn get_token(&self, key: &SessionKey) -> Result<Option<TokenRecord>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn reset_password(
        &self,
        key: SessionKey,
        hash: String,
        now: i64,
    ) -> Result<Option<String>, WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn verify_email(&self, key: SessionKey, now: i64) -> Result<Option<String>, WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn sweep_expired_tokens(&self, now: i64, limit: usize) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}
