//! (to be written)

use async_trait::async_trait;

use super::PgStore;

#[allow(unused_imports)]
use crate::store::records::*;
#[allow(unused_imports)]
use crate::store::*;

#[async_trait]
impl Identities for PgStore {
    #[allow(unused_variables)]
    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(IdentityRecord, UserRecord)>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn user_identities(&self, user_id: &str) -> Result<Vec<IdentityRecord>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn all_identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn link_identity(&self, identity: IdentityRecord) -> Result<(), WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn unlink_identity(
        &self,
        user_id: &str,
        provider: &str,
        rule: UnlinkRule,
    ) -> Result<Unlink, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}
