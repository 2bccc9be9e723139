//! The audit log: entries by an increasing id (an identity column, never given twice), swept
//! past their retention.

use async_trait::async_trait;

use super::{from_json, to_json, PgStore};
use crate::store::{Audit, AuditRecord, StoreError};

#[async_trait]
impl Audit for PgStore {
    /// One statement: the entries get ids in the order given.
    async fn append_audit(&self, entries: Vec<AuditRecord>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let at: Vec<i64> = entries.iter().map(|e| e.at).collect();
        let data = entries.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
        self.run(move |conn| async move {
            conn.execute(
                "INSERT INTO audit (at, data)
                 SELECT at, data FROM unnest($1::bigint[], $2::jsonb[]) WITH ORDINALITY
                     AS e (at, data, n)
                 ORDER BY n",
                &[&at, &data],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Entries newest first, starting below `before` (an entry id), at most `limit`.
    async fn list_audit(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| async move {
            let rows = conn
                .query(
                    "SELECT id, data FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2",
                    &[&before, &limit],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    let id: i64 = row.try_get(0)?;
                    let id = u64::try_from(id)
                        .map_err(|_| StoreError::Corrupt(format!("audit entry id {id}")))?;
                    Ok((id, from_json(row.try_get(1)?)?))
                })
                .collect()
        })
        .await
    }

    /// Delete audit entries older than `cutoff` (their `at`), oldest first, at most `limit`
    /// per call: of the `limit` oldest entries, those before the first one young enough. The
    /// newest entry always stays (as in redb, though here ids never repeat anyway). A racing
    /// sweep deletes what this one did not (rows one sweep holds, another skips: two sweeps
    /// never wait for each other).
    async fn sweep_audit(&self, cutoff: i64, limit: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| async move {
            let deleted = conn
                .execute(
                    "DELETE FROM audit WHERE id IN (
                         SELECT id FROM (
                             SELECT id, bool_or(at >= $1) OVER (ORDER BY id) AS stopped
                             FROM (
                                 SELECT id, at FROM audit
                                 WHERE id < (SELECT max(id) FROM audit)
                                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
                             ) oldest
                         ) marked
                         WHERE NOT stopped)",
                    &[&cutoff, &limit],
                )
                .await?;
            Ok(deleted as usize)
        })
        .await
    }
}
