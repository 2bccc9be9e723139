//! [`Snapshot`]s of the database in plain SQL against the schema: read in one repeatable-read
//! transaction, written in one transaction that first locks every durable table against
//! other writers and finds them empty. Rows are written a batch at a time (`unnest` of one
//! array per column). A session's `expires_at` is the expiry it is indexed by; the audit log's
//! ids are kept and new ones continue after the highest. Nothing is announced: an instance on
//! an empty database has nothing in memory that the copy could make stale.

use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, Transaction};

use super::{from_json, key32, to_json, unique_violation, PgStore, BULK_TIMEOUT};
use crate::store::records::{FactorsRecord, Role, SessionRecord};
use crate::store::snapshot::kind;
use crate::store::{email_skeleton, ImportError, Snapshot, StoreError};

/// The tables an import fills, with what they hold.
const DURABLE: [(&str, &str); 11] = [
    ("users", kind::USERS),
    ("retired_usernames", kind::RETIRED_USERNAMES),
    ("settings", kind::SETTINGS),
    ("sessions", kind::SESSIONS),
    ("invites", kind::INVITES),
    ("mail_tokens", kind::MAIL_TOKENS),
    ("identities", kind::IDENTITIES),
    ("second_factors", kind::FACTORS),
    ("passkeys", kind::PASSKEYS),
    ("api_tokens", kind::API_TOKENS),
    ("audit", kind::AUDIT),
];

/// The `settings` rows, named as the users' and settings' capabilities (and redb) name them:
/// the owner flag (`true`) and the overrides (a mode word, a boolean).
const SETTING_OWNER_EXISTS: &str = "owner_exists";
const SETTING_REGISTRATION: &str = "registration";
const SETTING_NATIVE_SIGNIN: &str = "native_signin";

/// Rows per statement when writing.
const BATCH: usize = 2000;

impl PgStore {
    /// Everything durable, as one repeatable-read transaction sees it.
    pub(super) async fn export_all(&self) -> Result<Snapshot, StoreError> {
        self.run_within(BULK_TIMEOUT, |mut conn| async move {
            let tx = conn
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let snapshot = read_all(&tx).await?;
            tx.commit().await?;
            Ok(snapshot.sorted())
        })
        .await
    }

    /// Store `snapshot` in one transaction, into a database that holds nothing durable.
    pub(super) async fn import_all(&self, snapshot: Snapshot) -> Result<(), ImportError> {
        snapshot.check()?;
        self.run_within(BULK_TIMEOUT, move |mut conn| async move {
            let tx = conn.transaction().await?;
            let tables: Vec<&str> = DURABLE.iter().map(|(t, _)| *t).collect();
            // Readers may go on; writers wait until the copy is committed.
            tx.batch_execute(&format!(
                "LOCK TABLE {} IN EXCLUSIVE MODE",
                tables.join(", ")
            ))
            .await?;
            if let Some(kind) = first_filled(&tx).await? {
                return Err(ImportError::NotEmpty(kind));
            }
            write_all(&tx, snapshot).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}

/// The first kind of durable record the database holds, if any.
async fn first_filled(tx: &Transaction<'_>) -> Result<Option<&'static str>, StoreError> {
    let probes: Vec<String> = DURABLE
        .iter()
        .map(|(table, _)| format!("EXISTS (SELECT 1 FROM {table})"))
        .collect();
    let row = tx
        .query_one(&format!("SELECT {}", probes.join(", ")), &[])
        .await?;
    for (i, (_, kind)) in DURABLE.iter().enumerate() {
        if row.try_get::<_, bool>(i)? {
            return Ok(Some(kind));
        }
    }
    Ok(None)
}

async fn read_all(tx: &Transaction<'_>) -> Result<Snapshot, StoreError> {
    let mut snapshot = Snapshot::default();
    for row in tx.query("SELECT data FROM users", &[]).await? {
        snapshot.users.push(from_json(row.try_get(0)?)?);
    }
    for row in tx
        .query("SELECT username, user_id FROM retired_usernames", &[])
        .await?
    {
        snapshot
            .retired_usernames
            .push((row.try_get(0)?, row.try_get(1)?));
    }
    for row in tx.query("SELECT name, value FROM settings", &[]).await? {
        let (name, value): (String, serde_json::Value) = (row.try_get(0)?, row.try_get(1)?);
        match name.as_str() {
            SETTING_OWNER_EXISTS => snapshot.owner_exists = true,
            SETTING_REGISTRATION => {
                snapshot.overrides.registration = value.as_str().map(str::to_string)
            }
            SETTING_NATIVE_SIGNIN => snapshot.overrides.native_signin = value.as_bool(),
            _ => {}
        }
    }
    // An owner stored means setup is done, whether or not the flag was written beside it.
    let owners: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM users WHERE role = $1)",
            &[&Role::Owner.as_str()],
        )
        .await?
        .try_get(0)?;
    snapshot.owner_exists |= owners;
    for row in tx
        .query("SELECT key, expires_at, data FROM sessions", &[])
        .await?
    {
        let mut record: SessionRecord = from_json(row.try_get(2)?)?;
        record.indexed_expiry = row.try_get(1)?;
        snapshot.sessions.push((key32(row.try_get(0)?)?, record));
    }
    for row in tx.query("SELECT key, data FROM invites", &[]).await? {
        snapshot
            .invites
            .push((key32(row.try_get(0)?)?, from_json(row.try_get(1)?)?));
    }
    for row in tx.query("SELECT key, data FROM mail_tokens", &[]).await? {
        snapshot
            .mail_tokens
            .push((key32(row.try_get(0)?)?, from_json(row.try_get(1)?)?));
    }
    for row in tx.query("SELECT data FROM identities", &[]).await? {
        snapshot.identities.push(from_json(row.try_get(0)?)?);
    }
    for row in tx
        .query("SELECT user_id, data FROM second_factors", &[])
        .await?
    {
        snapshot
            .factors
            .push((row.try_get(0)?, from_json(row.try_get(1)?)?));
    }
    for row in tx.query("SELECT data FROM passkeys", &[]).await? {
        snapshot.passkeys.push(from_json(row.try_get(0)?)?);
    }
    for row in tx.query("SELECT key, data FROM api_tokens", &[]).await? {
        snapshot
            .api_tokens
            .push((key32(row.try_get(0)?)?, from_json(row.try_get(1)?)?));
    }
    for row in tx.query("SELECT id, data FROM audit", &[]).await? {
        let id: i64 = row.try_get(0)?;
        let id = u64::try_from(id)
            .map_err(|_| StoreError::Corrupt(format!("audit entry with id {id}")))?;
        snapshot.audit.push((id, from_json(row.try_get(1)?)?));
    }
    Ok(snapshot)
}

async fn write_all(tx: &Transaction<'_>, snapshot: Snapshot) -> Result<(), ImportError> {
    let Snapshot {
        users,
        retired_usernames,
        owner_exists,
        overrides,
        sessions,
        invites,
        mail_tokens,
        identities,
        factors,
        passkeys,
        api_tokens,
        audit,
    } = snapshot;
    for batch in users.chunks(BATCH) {
        let mut columns = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        for u in batch {
            columns.0.push(u.id.as_str());
            columns.1.push(u.email.as_str());
            columns.2.push(email_skeleton(&u.email));
            columns.3.push(u.username.as_deref());
            columns.4.push(u.role.as_str());
            columns.5.push(u.status.as_str());
            columns.6.push(u.created_at);
            columns.7.push(to_json(u)?);
        }
        tx.execute(
            "INSERT INTO users (id, email, email_skeleton, username, role, status, created_at, data)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::bigint[], $8::jsonb[])",
            &[
                &columns.0, &columns.1, &columns.2, &columns.3, &columns.4, &columns.5,
                &columns.6, &columns.7,
            ],
        )
        .await?;
    }
    for batch in retired_usernames.chunks(BATCH) {
        let names: Vec<&str> = batch.iter().map(|(n, _)| n.as_str()).collect();
        let ids: Vec<&str> = batch.iter().map(|(_, id)| id.as_str()).collect();
        tx.execute(
            "INSERT INTO retired_usernames (username, user_id)
             SELECT * FROM unnest($1::text[], $2::text[])",
            &[&names, &ids],
        )
        .await?;
    }
    let settings = [
        (SETTING_OWNER_EXISTS, owner_exists.then_some(true.into())),
        (
            SETTING_REGISTRATION,
            overrides.registration.map(serde_json::Value::from),
        ),
        (
            SETTING_NATIVE_SIGNIN,
            overrides.native_signin.map(serde_json::Value::from),
        ),
    ];
    for (name, value) in settings {
        if let Some(value) = value {
            tx.execute(
                "INSERT INTO settings (name, value) VALUES ($1, $2)",
                &[&name, &value],
            )
            .await?;
        }
    }
    for batch in sessions.chunks(BATCH) {
        let mut columns = (vec![], vec![], vec![], vec![], vec![]);
        for (key, s) in batch {
            columns.0.push(key.as_slice());
            columns.1.push(s.user_id.as_str());
            columns.2.push(s.created_at);
            columns.3.push(s.indexed_expiry);
            columns.4.push(to_json(s)?);
        }
        tx.execute(
            "INSERT INTO sessions (key, user_id, created_at, expires_at, data)
             SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::bigint[], $5::jsonb[])",
            &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4],
        )
        .await?;
    }
    for batch in invites.chunks(BATCH) {
        let mut columns = (vec![], vec![], vec![]);
        for (key, invite) in batch {
            columns.0.push(key.as_slice());
            columns.1.push(invite.id.as_str());
            columns.2.push(to_json(invite)?);
        }
        tx.execute(
            "INSERT INTO invites (key, id, data)
             SELECT * FROM unnest($1::bytea[], $2::text[], $3::jsonb[])",
            &[&columns.0, &columns.1, &columns.2],
        )
        .await?;
    }
    for batch in mail_tokens.chunks(BATCH) {
        let mut columns = (vec![], vec![], vec![], vec![]);
        for (key, token) in batch {
            columns.0.push(key.as_slice());
            columns.1.push(token.user_id.as_str());
            columns.2.push(token.expires_at);
            columns.3.push(to_json(token)?);
        }
        tx.execute(
            "INSERT INTO mail_tokens (key, user_id, expires_at, data)
             SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::jsonb[])",
            &[&columns.0, &columns.1, &columns.2, &columns.3],
        )
        .await?;
    }
    for batch in identities.chunks(BATCH) {
        let mut columns = (vec![], vec![], vec![], vec![]);
        for identity in batch {
            columns.0.push(identity.provider.as_str());
            columns.1.push(identity.subject.as_str());
            columns.2.push(identity.user_id.as_str());
            columns.3.push(to_json(identity)?);
        }
        tx.execute(
            "INSERT INTO identities (provider, subject, user_id, data)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])",
            &[&columns.0, &columns.1, &columns.2, &columns.3],
        )
        .await?;
    }
    let factors: Vec<_> = factors
        .iter()
        .filter(|(_, f)| *f != FactorsRecord::default())
        .collect();
    for batch in factors.chunks(BATCH) {
        let mut columns = (vec![], vec![]);
        for (user_id, record) in batch {
            columns.0.push(user_id.as_str());
            columns.1.push(to_json(record)?);
        }
        tx.execute(
            "INSERT INTO second_factors (user_id, data)
             SELECT * FROM unnest($1::text[], $2::jsonb[])",
            &[&columns.0, &columns.1],
        )
        .await?;
    }
    for batch in passkeys.chunks(BATCH) {
        let mut columns = (vec![], vec![], vec![], vec![], vec![]);
        for passkey in batch {
            columns.0.push(passkey.credential_id.as_slice());
            columns.1.push(passkey.id.as_str());
            columns.2.push(passkey.user_id.as_str());
            columns.3.push(passkey.created_at);
            columns.4.push(to_json(passkey)?);
        }
        tx.execute(
            "INSERT INTO passkeys (credential_id, id, user_id, created_at, data)
             SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::bigint[], $5::jsonb[])",
            &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4],
        )
        .await?;
    }
    for batch in api_tokens.chunks(BATCH) {
        let mut columns = (vec![], vec![], vec![], vec![], vec![]);
        for (key, token) in batch {
            columns.0.push(key.as_slice());
            columns.1.push(token.id.as_str());
            columns.2.push(token.user_id.as_str());
            columns.3.push(token.created_at);
            columns.4.push(to_json(token)?);
        }
        tx.execute(
            "INSERT INTO api_tokens (key, id, user_id, created_at, data)
             SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::bigint[], $5::jsonb[])",
            &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4],
        )
        .await?;
    }
    let mut highest: Option<i64> = None;
    for batch in audit.chunks(BATCH) {
        let mut columns = (vec![], vec![], vec![]);
        for (id, entry) in batch {
            let id = i64::try_from(*id).map_err(|_| {
                ImportError::Inconsistent(format!("audit entry id {id} is beyond what is stored"))
            })?;
            highest = highest.max(Some(id));
            columns.0.push(id);
            columns.1.push(entry.at);
            columns.2.push(to_json(entry)?);
        }
        tx.execute(
            "INSERT INTO audit (id, at, data)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::jsonb[])",
            &[&columns.0, &columns.1, &columns.2],
        )
        .await?;
    }
    if let Some(highest) = highest {
        // New entries continue after the copied ones (and, unlike setval, this is undone
        // with the transaction). The number is ours, never text from the snapshot.
        let next = highest.saturating_add(1);
        tx.batch_execute(&format!(
            "ALTER TABLE audit ALTER COLUMN id RESTART WITH {next}"
        ))
        .await?;
    }
    Ok(())
}

impl From<tokio_postgres::Error> for ImportError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(constraint) = unique_violation(&e) {
            return ImportError::Inconsistent(format!(
                "two records share what must be unique ({constraint})"
            ));
        }
        if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
            return ImportError::Inconsistent(format!("a record of a user it lacks ({e})"));
        }
        ImportError::Store(e.into())
    }
}
