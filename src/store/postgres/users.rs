//! (to be written)

use async_trait::async_trait;

use super::PgStore;

#[allow(unused_imports)]
use crate::store::records::*;
#[allow(unused_imports)]
use crate::store::*;

#[async_trait]
impl Users for PgStore {
    #[allow(unused_variables)]
    async fn owner_exists(&self) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn user_count(&self) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn find_user(&self, identifier: &str) -> Result<Option<UserRecord>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn create_owner(
        &self,
        user: UserRecord,
        session: Option<NewSession>,
    ) -> Result<UserRecord, WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn create_user(&self, account: NewAccount) -> Result<UserRecord, WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn update_profile(
        &self,
        id: &str,
        change: ProfileChange,
        now: i64,
    ) -> Result<UserRecord, WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn admin_update(
        &self,
        id: &str,
        change: AdminChange,
        now: i64,
    ) -> Result<(UserRecord, usize), WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn delete_user(&self, id: &str) -> Result<UserRecord, WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn set_password(
        &self,
        id: &str,
        hash: String,
        now: i64,
        keep: Option<SessionKey>,
    ) -> Result<usize, WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn upgrade_password_hash(
        &self,
        id: &str,
        old: String,
        new: String,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn expire_accounts(&self, now: i64) -> Result<(Vec<String>, usize), StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}
