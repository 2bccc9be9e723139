//! The storage traits for [`RedbStore`]: reads run inline (a redb point read takes a few
//! microseconds), writes on the blocking pool (they fsync).

use async_trait::async_trait;

use super::RedbStore;
use crate::store::records::{
    ApiTokenRecord, AuditRecord, IdentityRecord, InviteRecord, PasskeyRecord, SessionRecord,
    TokenKind, TokenRecord, UserRecord,
};
use crate::store::{
    AdminChange, ApiTokens, Audit, Backend, Challenges, Counters, Events, FactorsRecord,
    Identities, ImportError, Invites, MailTokens, NewAccount, NewSession, Override, Passkeys,
    PendingTotp, ProfileChange, SecondFactors, SessionKey, Sessions, Settings, SignIn, SignInFlows,
    Snapshot, StoreError, StoredOverrides, Unlink, UnlinkRule, Users, WriteError,
};

#[async_trait]
impl Users for RedbStore {
    async fn owner_exists(&self) -> Result<bool, StoreError> {
        self.owner_exists_now()
    }
    async fn user_count(&self) -> Result<u64, StoreError> {
        self.user_count_blocking()
    }
    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.get_user_now(id)
    }
    async fn find_user(&self, identifier: &str) -> Result<Option<UserRecord>, StoreError> {
        self.find_user_now(identifier)
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.list_users_now()
    }
    async fn create_owner(
        &self,
        user: UserRecord,
        session: Option<NewSession>,
    ) -> Result<UserRecord, WriteError> {
        self.blocking(move |s| s.create_owner_blocking(user, session))
            .await?
    }
    async fn create_user(&self, account: NewAccount) -> Result<UserRecord, WriteError> {
        self.blocking(move |s| s.create_user_blocking(account))
            .await?
    }
    async fn update_profile(
        &self,
        id: &str,
        change: ProfileChange,
        now: i64,
    ) -> Result<UserRecord, WriteError> {
        let id = id.to_string();
        self.blocking(move |s| s.update_profile_blocking(&id, change, now))
            .await?
    }
    async fn admin_update(
        &self,
        id: &str,
        change: AdminChange,
        now: i64,
    ) -> Result<(UserRecord, usize), WriteError> {
        let id = id.to_string();
        self.blocking(move |s| s.admin_update_blocking(&id, change, now))
            .await?
    }
    async fn delete_user(&self, id: &str) -> Result<UserRecord, WriteError> {
        let id = id.to_string();
        self.blocking(move |s| s.delete_user_blocking(&id)).await?
    }
    async fn set_password(
        &self,
        id: &str,
        hash: String,
        now: i64,
        keep: Option<SessionKey>,
    ) -> Result<usize, WriteError> {
        let id = id.to_string();
        self.blocking(move |s| s.set_password_blocking(&id, hash, now, keep))
            .await?
    }
    async fn upgrade_password_hash(
        &self,
        id: &str,
        old: String,
        new: String,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.blocking(move |s| s.upgrade_password_hash_blocking(&id, &old, &new))
            .await?
    }
    async fn expire_accounts(&self, now: i64) -> Result<(Vec<String>, usize), StoreError> {
        self.blocking(move |s| s.expire_accounts_blocking(now))
            .await?
    }
}

#[async_trait]
impl Sessions for RedbStore {
    async fn open_session(&self, sign_in: SignIn) -> Result<(), WriteError> {
        self.blocking(move |s| s.open_session_blocking(sign_in))
            .await?
    }
    async fn get_session(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        self.get_session_now(key)
    }
    async fn end_sessions(&self, keys: Vec<SessionKey>) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.blocking(move |s| s.end_sessions_blocking(&keys))
            .await?
    }
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<SessionKey>,
    ) -> Result<usize, StoreError> {
        let id = user_id.to_string();
        self.blocking(move |s| s.revoke_user_sessions_blocking(&id, keep.as_ref()))
            .await?
    }
    async fn user_sessions(
        &self,
        user_id: &str,
    ) -> Result<Vec<(SessionKey, SessionRecord)>, StoreError> {
        self.user_sessions_now(user_id)
    }
    async fn touch_sessions(
        &self,
        touches: Vec<(SessionKey, i64)>,
        idle_secs: i64,
    ) -> Result<usize, StoreError> {
        self.blocking(move |s| s.touch_sessions_blocking(&touches, idle_secs))
            .await?
    }
    async fn sweep_expired_sessions(&self, now: i64, limit: usize) -> Result<usize, StoreError> {
        self.blocking(move |s| s.sweep_expired_sessions_blocking(now, limit))
            .await?
    }
    async fn session_count(&self) -> Result<u64, StoreError> {
        self.session_count_now()
    }
    fn set_sessions_per_user(&self, max: usize) {
        self.inner
            .sessions_per_user
            .store(max.max(1), std::sync::atomic::Ordering::Relaxed);
    }
}

#[async_trait]
impl Invites for RedbStore {
    async fn create_invite(&self, code: String, invite: InviteRecord) -> Result<(), StoreError> {
        self.blocking(move |s| s.create_invite_blocking(&code, &invite))
            .await?
    }
    async fn get_invite(&self, code: &str) -> Result<Option<InviteRecord>, StoreError> {
        self.get_invite_now(code)
    }
    async fn list_invites(&self) -> Result<Vec<InviteRecord>, StoreError> {
        self.list_invites_now()
    }
    async fn delete_invite(&self, id: &str, owner_role_too: bool) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.blocking(move |s| s.delete_invite_blocking(&id, owner_role_too))
            .await?
    }
}

#[async_trait]
impl MailTokens for RedbStore {
    async fn put_token(&self, key: SessionKey, token: TokenRecord) -> Result<(), StoreError> {
        self.blocking(move |s| s.put_token_blocking(&key, &token))
            .await?
    }
    async fn get_token(&self, key: &SessionKey) -> Result<Option<TokenRecord>, StoreError> {
        self.get_token_now(key)
    }
    async fn reset_password(
        &self,
        key: SessionKey,
        hash: String,
        now: i64,
    ) -> Result<Option<String>, WriteError> {
        self.blocking(move |s| {
            s.redeem_token_blocking(&key, TokenKind::PasswordReset, Some(hash), now)
        })
        .await?
    }
    async fn verify_email(&self, key: SessionKey, now: i64) -> Result<Option<String>, WriteError> {
        self.blocking(move |s| {
            s.redeem_token_blocking(&key, TokenKind::EmailVerification, None, now)
        })
        .await?
    }
    async fn sweep_expired_tokens(&self, now: i64, limit: usize) -> Result<usize, StoreError> {
        self.blocking(move |s| s.sweep_expired_tokens_blocking(now, limit))
            .await?
    }
}

#[async_trait]
impl Identities for RedbStore {
    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(IdentityRecord, UserRecord)>, StoreError> {
        self.find_identity_now(provider, subject)
    }
    async fn user_identities(&self, user_id: &str) -> Result<Vec<IdentityRecord>, StoreError> {
        self.user_identities_now(user_id)
    }
    async fn all_identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        self.all_identities_now()
    }
    async fn link_identity(&self, identity: IdentityRecord) -> Result<(), WriteError> {
        self.blocking(move |s| s.link_identity_blocking(identity))
            .await?
    }
    async fn unlink_identity(
        &self,
        user_id: &str,
        provider: &str,
        rule: UnlinkRule,
    ) -> Result<Unlink, StoreError> {
        let (user_id, provider) = (user_id.to_string(), provider.to_string());
        self.blocking(move |s| s.unlink_identity_blocking(&user_id, &provider, &rule))
            .await?
    }
}

#[async_trait]
impl Passkeys for RedbStore {
    async fn user_passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
        self.user_passkeys_now(user_id)
    }
    async fn find_passkey(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<(PasskeyRecord, UserRecord)>, StoreError> {
        self.find_passkey_now(credential_id)
    }
    async fn add_passkey(&self, passkey: PasskeyRecord) -> Result<bool, WriteError> {
        self.blocking(move |s| s.add_passkey_blocking(passkey))
            .await?
    }
    async fn note_passkey_use(
        &self,
        credential_id: &[u8],
        credential: String,
        at: i64,
    ) -> Result<bool, StoreError> {
        let credential_id = credential_id.to_vec();
        self.blocking(move |s| s.note_passkey_use_blocking(&credential_id, credential, at))
            .await?
    }
    async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.blocking(move |s| s.delete_passkey_blocking(&user_id, &id))
            .await?
    }
    async fn remove_passkeys(&self, user_id: &str) -> Result<usize, StoreError> {
        let user_id = user_id.to_string();
        self.blocking(move |s| s.remove_passkeys_blocking(&user_id))
            .await?
    }
}

#[async_trait]
impl ApiTokens for RedbStore {
    async fn create_api_token(
        &self,
        key: SessionKey,
        token: ApiTokenRecord,
        max_per_user: usize,
    ) -> Result<(), WriteError> {
        self.blocking(move |s| s.create_api_token_blocking(key, token, max_per_user))
            .await?
    }
    async fn find_api_token(
        &self,
        key: &SessionKey,
    ) -> Result<Option<(ApiTokenRecord, UserRecord)>, StoreError> {
        self.find_api_token_now(key)
    }
    async fn user_api_tokens(&self, user_id: &str) -> Result<Vec<ApiTokenRecord>, StoreError> {
        self.user_api_tokens_now(user_id)
    }
    async fn delete_api_token(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.blocking(move |s| s.delete_api_token_blocking(&user_id, &id))
            .await?
    }
    async fn note_api_token_use(&self, uses: Vec<(SessionKey, i64)>) -> Result<usize, StoreError> {
        self.blocking(move |s| s.note_api_token_use_blocking(&uses))
            .await?
    }
}

#[async_trait]
impl Challenges for RedbStore {
    async fn put_challenge(
        &self,
        key: [u8; 32],
        state: Vec<u8>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.blocking(move |s| s.put_challenge_blocking(&key, &state, expires_at))
            .await?
    }
    async fn take_challenge(&self, key: [u8; 32], now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.blocking(move |s| s.take_challenge_blocking(&key, now))
            .await?
    }
    async fn sweep_expired_challenges(&self, now: i64, limit: usize) -> Result<usize, StoreError> {
        self.blocking(move |s| s.sweep_expired_challenges_blocking(now, limit))
            .await?
    }
}

#[async_trait]
impl Settings for RedbStore {
    async fn overrides(&self) -> Result<StoredOverrides, StoreError> {
        self.overrides_now()
    }
    async fn set_overrides(
        &self,
        registration: Override<String>,
        native_signin: Override<bool>,
    ) -> Result<StoredOverrides, StoreError> {
        self.blocking(move |s| s.set_overrides_blocking(registration, native_signin))
            .await?
    }
}

#[async_trait]
impl SecondFactors for RedbStore {
    async fn factors(&self, user_id: &str) -> Result<FactorsRecord, StoreError> {
        self.factors_now(user_id)
    }
    async fn begin_totp(&self, user_id: &str, pending: PendingTotp) -> Result<(), StoreError> {
        let id = user_id.to_string();
        self.blocking(move |s| {
            s.change_factors_blocking(&id, |r| r.begin_totp(pending), |kept| *kept)
        })
        .await??;
        Ok(())
    }
    async fn confirm_totp(
        &self,
        user_id: &str,
        step: u64,
        recovery: Vec<[u8; 32]>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let id = user_id.to_string();
        self.blocking(move |s| {
            s.change_factors_blocking(&id, |r| r.confirm_totp(step, recovery, now), |kept| *kept)
        })
        .await?
    }
    async fn accept_totp_step(&self, user_id: &str, step: u64) -> Result<bool, StoreError> {
        let id = user_id.to_string();
        self.blocking(move |s| {
            s.change_factors_blocking(&id, |r| r.accept_step(step), |kept| *kept)
        })
        .await?
    }
    async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: [u8; 32],
        now: i64,
    ) -> Result<bool, StoreError> {
        let id = user_id.to_string();
        self.blocking(move |s| {
            s.change_factors_blocking(&id, |r| r.use_code(hash, now), |kept| *kept)
        })
        .await?
    }
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: Vec<[u8; 32]>,
    ) -> Result<(), StoreError> {
        let id = user_id.to_string();
        self.blocking(move |s| {
            s.change_factors_blocking(&id, |r| r.replace_codes(hashes), |kept| *kept)
        })
        .await??;
        Ok(())
    }
    async fn remove_factors(&self, user_id: &str) -> Result<(), StoreError> {
        let id = user_id.to_string();
        self.blocking(move |s| {
            s.change_factors_blocking(&id, FactorsRecord::remove_all, |kept| *kept)
        })
        .await??;
        Ok(())
    }
}

#[async_trait]
impl Audit for RedbStore {
    async fn append_audit(&self, entries: Vec<AuditRecord>) -> Result<(), StoreError> {
        self.blocking(move |s| s.append_audit_blocking(&entries))
            .await?
    }
    async fn list_audit(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        self.list_audit_now(before, limit)
    }
    async fn sweep_audit(&self, cutoff: i64, limit: usize) -> Result<usize, StoreError> {
        self.blocking(move |s| s.sweep_audit_blocking(cutoff, limit))
            .await?
    }
}

#[async_trait]
impl Backend for RedbStore {
    async fn healthy(&self) -> bool {
        self.healthy_blocking()
    }
    async fn recover(&self) -> bool {
        self.blocking(|s| s.recover_blocking())
            .await
            .unwrap_or(false)
    }
    fn events(&self) -> &Events {
        &self.inner.events
    }
    /// One process, so counters live in its memory: nothing to write, nothing to wait for.
    fn counters(&self) -> &dyn Counters {
        &self.inner.counters
    }
    /// One process: a sign-in's callback always comes back here, so flows live in memory.
    fn flows(&self) -> &dyn SignInFlows {
        &self.inner.flows
    }
    async fn export(&self) -> Result<Snapshot, StoreError> {
        self.blocking(|s| s.export_blocking()).await?
    }
    async fn import(&self, snapshot: Snapshot) -> Result<(), ImportError> {
        self.blocking(move |s| s.import_blocking(snapshot)).await?
    }
}
