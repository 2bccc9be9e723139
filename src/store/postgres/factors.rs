//! Second factors, one row per user (the record as `jsonb`). Each change
//! ([`FactorsRecord`]'s methods, the same as redb's) is a read-modify-write in one transaction
//! with the row locked (`FOR UPDATE`), so racing requests with one TOTP step or one recovery
//! code, on any instance, see each other's use: each is accepted once.

use async_trait::async_trait;

use super::{from_json, to_json, PgStore};
use crate::store::{FactorsRecord, PendingTotp, SecondFactors, StoreError};

impl PgStore {
    /// Change a user's record with its row locked; `change` says whether it changed, and only
    /// then is it written back (the empty record as no row).
    async fn change_factors<F>(&self, user_id: &str, change: F) -> Result<bool, StoreError>
    where
        F: FnOnce(&mut FactorsRecord) -> bool + Send + 'static,
    {
        let user_id = user_id.to_string();
        self.write(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt(
                        "SELECT data FROM second_factors WHERE user_id = $1 FOR UPDATE",
                        &[&user_id],
                    )
                    .await?;
                let mut record: FactorsRecord = match row {
                    Some(row) => from_json(row.try_get(0)?)?,
                    None => FactorsRecord::default(),
                };
                let changed = change(&mut record);
                if changed && record == FactorsRecord::default() {
                    tx.execute("DELETE FROM second_factors WHERE user_id = $1", &[&user_id])
                        .await?;
                } else if changed {
                    // (Two first writes for a user may race: the later one wins, as in redb.)
                    tx.execute(
                        "INSERT INTO second_factors (user_id, data) VALUES ($1, $2)
                         ON CONFLICT (user_id) DO UPDATE SET data = EXCLUDED.data",
                        &[&user_id, &to_json(&record)?],
                    )
                    .await?;
                }
                Ok((changed, Vec::new()))
            })
        })
        .await
    }
}

#[async_trait]
impl SecondFactors for PgStore {
    async fn factors(&self, user_id: &str) -> Result<FactorsRecord, StoreError> {
        let user_id = user_id.to_string();
        self.run(|conn| async move {
            let row = conn
                .query_opt(
                    "SELECT data FROM second_factors WHERE user_id = $1",
                    &[&user_id],
                )
                .await?;
            match row {
                Some(row) => from_json(row.try_get(0)?),
                None => Ok(FactorsRecord::default()),
            }
        })
        .await
    }

    async fn begin_totp(&self, user_id: &str, pending: PendingTotp) -> Result<(), StoreError> {
        self.change_factors(user_id, |r| r.begin_totp(pending))
            .await?;
        Ok(())
    }

    async fn confirm_totp(
        &self,
        user_id: &str,
        step: u64,
        recovery: Vec<[u8; 32]>,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.change_factors(user_id, move |r| r.confirm_totp(step, recovery, now))
            .await
    }

    async fn accept_totp_step(&self, user_id: &str, step: u64) -> Result<bool, StoreError> {
        self.change_factors(user_id, move |r| r.accept_step(step))
            .await
    }

    async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: [u8; 32],
        now: i64,
    ) -> Result<bool, StoreError> {
        self.change_factors(user_id, move |r| r.use_code(hash, now))
            .await
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: Vec<[u8; 32]>,
    ) -> Result<(), StoreError> {
        self.change_factors(user_id, |r| r.replace_codes(hashes))
            .await?;
        Ok(())
    }

    async fn remove_factors(&self, user_id: &str) -> Result<(), StoreError> {
        self.change_factors(user_id, FactorsRecord::remove_all)
            .await?;
        Ok(())
    }
}
