//! Second factors, one record per user. Each change is a read-modify-write inside one write
//! transaction, which redb runs one at a time: a TOTP step or a recovery code is used once.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::{RedbStore, FACTORS};
use crate::store::records::{self, FactorsRecord, PendingTotp, RecoveryCode, TotpFactor};
use crate::store::StoreError;

/// The record a table holds for a user (the empty one when none).
fn record_in(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    user_id: &str,
) -> Result<FactorsRecord, StoreError> {
    let found = table.get(user_id)?;
    Ok(found
        .map(|v| records::decode(v.value()))
        .transpose()?
        .unwrap_or_default())
}

fn read(txn: &WriteTransaction, user_id: &str) -> Result<FactorsRecord, StoreError> {
    record_in(&txn.open_table(FACTORS)?, user_id)
}

fn write(txn: &WriteTransaction, user_id: &str, record: &FactorsRecord) -> Result<(), StoreError> {
    let mut table = txn.open_table(FACTORS)?;
    if *record == FactorsRecord::default() {
        table.remove(user_id)?;
    } else {
        table.insert(user_id, records::encode(record)?.as_slice())?;
    }
    Ok(())
}

/// Remove a user's factors (inside the transaction that deletes the user).
pub(super) fn remove_user_factors(txn: &WriteTransaction, user_id: &str) -> Result<(), StoreError> {
    txn.open_table(FACTORS)?.remove(user_id)?;
    Ok(())
}

fn codes(hashes: Vec<[u8; 32]>) -> Vec<RecoveryCode> {
    hashes
        .into_iter()
        .map(|hash| RecoveryCode {
            hash,
            used_at: None,
        })
        .collect()
}

impl RedbStore {
    pub(super) fn factors_now(&self, user_id: &str) -> Result<FactorsRecord, StoreError> {
        let txn = self.db()?.begin_read()?;
        record_in(&txn.open_table(FACTORS)?, user_id)
    }

    /// Change a user's record in one write transaction; `change` says whether to keep it.
    pub(super) fn change_factors_blocking<T>(
        &self,
        user_id: &str,
        change: impl FnOnce(&mut FactorsRecord) -> T,
        keep: impl Fn(&T) -> bool,
    ) -> Result<T, StoreError> {
        let txn = self.db()?.begin_write()?;
        let mut record = read(&txn, user_id)?;
        let outcome = change(&mut record);
        if keep(&outcome) {
            write(&txn, user_id, &record)?;
            txn.commit()?;
        }
        Ok(outcome)
    }
}

/// Keep a secret waiting for its first code.
pub(super) fn begin_totp(record: &mut FactorsRecord, pending: PendingTotp) -> bool {
    record.pending_totp = Some(pending);
    true
}

/// The waiting secret becomes the active one, with new recovery codes.
pub(super) fn confirm_totp(
    record: &mut FactorsRecord,
    step: u64,
    recovery: Vec<[u8; 32]>,
    now: i64,
) -> bool {
    let Some(pending) = record.pending_totp.take() else {
        return false;
    };
    record.totp = Some(TotpFactor {
        sealed_secret: pending.sealed_secret,
        enabled_at: now,
        last_step: step,
    });
    record.recovery = codes(recovery);
    true
}

/// A step later than the last accepted one is accepted once.
pub(super) fn accept_step(record: &mut FactorsRecord, step: u64) -> bool {
    match &mut record.totp {
        Some(t) if step > t.last_step => {
            t.last_step = step;
            true
        }
        _ => false,
    }
}

/// An unused code with this hash is used once.
pub(super) fn use_code(record: &mut FactorsRecord, hash: [u8; 32], now: i64) -> bool {
    match record
        .recovery
        .iter_mut()
        .find(|c| c.used_at.is_none() && c.hash == hash)
    {
        Some(code) => {
            code.used_at = Some(now);
            true
        }
        None => false,
    }
}

/// A new set of recovery codes.
pub(super) fn replace_codes(record: &mut FactorsRecord, hashes: Vec<[u8; 32]>) -> bool {
    record.recovery = codes(hashes);
    true
}

/// No factor at all.
pub(super) fn remove_all(record: &mut FactorsRecord) -> bool {
    *record = FactorsRecord::default();
    true
}
