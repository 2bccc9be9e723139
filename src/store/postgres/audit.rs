//! (to be written)

use async_trait::async_trait;

use super::PgStore;

#[allow(unused_imports)]
use crate::store::records::*;
#[allow(unused_imports)]
use crate::store::*;

#[async_trait]
impl Audit for PgStore {
    #[allow(unused_variables)]
    async fn append_audit(&self, entries: Vec<AuditRecord>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn list_audit(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn sweep_audit(&self, cutoff: i64, limit: usize) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}
