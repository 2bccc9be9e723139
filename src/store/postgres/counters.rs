//! (to be written)

use async_trait::async_trait;

use super::PgStore;

#[allow(unused_imports)]
use crate::store::records::*;
#[allow(unused_imports)]
use crate::store::*;

#[async_trait]
impl Counters for PgStore {
    #[allow(unused_variables)]
    async fn add_event(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        window: i64,
        keep: u32,
    ) -> Result<EventWindow, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn count(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        window: i64,
    ) -> Result<EventWindow, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn clear(&self, kind: CounterKind, key: &str) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn admit(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
        limits: &[Limit],
    ) -> Result<Admission, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn lock(&self, kind: CounterKind, key: &str, until: i64) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn locked_until(
        &self,
        kind: CounterKind,
        key: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}
