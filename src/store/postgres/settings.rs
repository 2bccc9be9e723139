//! (to be written)

use async_trait::async_trait;

use super::PgStore;

#[allow(unused_imports)]
use crate::store::records::*;
#[allow(unused_imports)]
use crate::store::*;

#[async_trait]
impl Settings for PgStore {
    #[allow(unused_variables)]
    async fn overrides(&self) -> Result<StoredOverrides, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn set_overrides(
        &self,
        registration: Override<String>,
        native_signin: Override<bool>,
    ) -> Result<StoredOverrides, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }
}
