//! (to be written)

use async_trait::async_trait;

use super::PgStore;

#[allow(unused_imports)]
use crate::store::records::*;
#[allow(unused_imports)]
use crate::store::*;

#[async_trait]
impl SignInFlows for PgStore {
    #[allow(unused_variables)]
    async fn put_flow(
        &self,
        key: [u8; 32],
        flow: FlowRecord,
        limits: FlowLimits,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn take_flow(&self, key: [u8; 32]) -> Result<Option<FlowRecord>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}
