//! (to be written)

use async_trait::async_trait;

use super::PgStore;

#[allow(unused_imports)]
use crate::store::records::*;
#[allow(unused_imports)]
use crate::store::*;

#[async_trait]
impl SecondFactors for PgStore {
    #[allow(unused_variables)]
    async fn factors(&self, user_id: &str) -> Result<FactorsRecord, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn begin_totp(&self, user_id: &str, pending: PendingTotp) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn confirm_totp(
        &self,
        user_id: &str,
        step: u64,
        recovery: Vec<[u8; 32]>,
        now: i64,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn accept_totp_step(&self, user_id: &str, step: u64) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: [u8; 32],
        now: i64,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: Vec<[u8; 32]>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn remove_factors(&self, user_id: &str) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}
