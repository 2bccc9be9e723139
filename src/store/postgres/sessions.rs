//! (to be written)

use async_trait::async_trait;

use super::PgStore;

#[allow(unused_imports)]
use crate::store::records::*;
#[allow(unused_imports)]
use crate::store::*;

#[async_trait]
impl Sessions for PgStore {
    #[allow(unused_variables)]
    async fn open_session(&self, sign_in: SignIn) -> Result<(), WriteError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn get_session(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn end_sessions(&self, keys: Vec<SessionKey>) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<SessionKey>,
    ) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn user_sessions(
        &self,
        user_id: &str,
    ) -> Result<Vec<(SessionKey, SessionRecord)>, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn touch_sessions(
        &self,
        touches: Vec<(SessionKey, i64)>,
        idle_secs: i64,
    ) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn sweep_expired_sessions(&self, now: i64, limit: usize) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    #[allow(unused_variables)]
    async fn session_count(&self) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable("not written yet".into()).into())
    }

    fn set_sessions_per_user(&self, max: usize) {
        self.inner
            .sessions_per_user
            .store(max.max(1), std::sync::atomic::Ordering::Relaxed);
    }
}
