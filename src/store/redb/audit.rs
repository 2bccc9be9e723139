//! The audit log: entries by an increasing id, swept past their retention.

use redb::{ReadableDatabase, ReadableTable};

use super::{RedbStore, AUDIT};
use crate::store::records::{self, AuditRecord};
use crate::store::StoreError;

impl RedbStore {
    pub(super) fn append_audit_blocking(&self, entries: &[AuditRecord]) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        {
            let mut table = txn.open_table(AUDIT)?;
            let first = table.last()?.map(|(k, _)| k.value() + 1).unwrap_or(1);
            for (id, e) in (first..).zip(entries) {
                table.insert(id, records::encode(e)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Audit entries newest first, starting below `before` (an entry id), at most `limit`.
    pub(super) fn list_audit_now(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        let range = table.range(..before.unwrap_or(u64::MAX))?;
        for entry in range.rev() {
            let (k, v) = entry?;
            out.push((k.value(), records::decode(v.value())?));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Delete audit entries older than `cutoff` (their `at`), oldest first, at most `limit`
    /// per call. Stops at the first entry that is young enough, and always keeps the newest
    /// entry so that ids keep increasing. Found in a read transaction (entries are only ever
    /// appended), so a sweep with nothing to do writes nothing.
    pub(super) fn sweep_audit_blocking(
        &self,
        cutoff: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let old: Vec<u64> = {
            let txn = self.db()?.begin_read()?;
            let table = txn.open_table(AUDIT)?;
            let newest = table.last()?.map(|(k, _)| k.value());
            let mut ids = Vec::new();
            for entry in table.iter()? {
                let (k, v) = entry?;
                let id = k.value();
                if ids.len() >= limit || Some(id) == newest {
                    break;
                }
                let record: AuditRecord = records::decode(v.value())?;
                if record.at >= cutoff {
                    break;
                }
                ids.push(id);
            }
            ids
        };
        if old.is_empty() {
            return Ok(0);
        }
        let txn = self.db()?.begin_write()?;
        {
            let mut table = txn.open_table(AUDIT)?;
            for id in &old {
                table.remove(id)?;
            }
        }
        txn.commit()?;
        Ok(old.len())
    }
}
