//! Second factors, one record per user. Each change ([`FactorsRecord`]'s methods) is a
//! read-modify-write inside one write transaction, which redb runs one at a time: a TOTP step
//! or a recovery code is used once.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::{RedbStore, FACTORS};
use crate::store::records::{self, FactorsRecord};
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
