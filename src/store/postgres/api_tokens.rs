//! (to be written)

use async_trait::async_trait;

use super::PgStore;

#[allow(unused_imports)]
use crate::store::records::*;
#[allow(unused_imports)]
use crate::store::*;

#[async_trait]
impl ApiTokens for PgStore {
    #[allow(unused_variables)]
    async fn create_api_token(
        &self,
        key: SessionKey,
        token: ApiTokenRecord,
        max_per_user: usize,
    ) -> Result<(), WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn find_api_token(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(ApiTokenRecord, UserRecord)>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn user_api_tokens(&self, user_id: &str) -> Result<Vec<ApiTokenRecord>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn delete_api_token(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn note_api_token_use(&self, uses: Vec<(SessionKey, i64)>) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}
