//! [`Snapshot`]s of the redb file: read in one read transaction, written in one write
//! transaction through the same helpers the capabilities insert with, so every index (email,
//! look-alike, username, per-user, session expiry) is kept as a sign-up, a sign-in or a link
//! keeps it.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata as _, WriteTransaction};

use super::{
    api_tokens, identities, passkeys, sessions, settings, users, RedbStore, API_TOKENS, AUDIT,
    FACTORS, IDENTITIES, INVITES, OWNER_EXISTS, PASSKEYS, RETIRED_USERNAMES, SESSIONS, SETTINGS,
    TOKENS, USERS,
};
use crate::store::records::{self, FactorsRecord, SessionRecord, UserRecord};
use crate::store::snapshot::kind;
use crate::store::{ImportError, Override, Snapshot, StoreError};

impl RedbStore {
    /// Everything durable, as one read transaction sees it.
    pub(super) fn export_blocking(&self) -> Result<Snapshot, StoreError> {
        let txn = self.db()?.begin_read()?;
        let settings = txn.open_table(SETTINGS)?;
        let snapshot = Snapshot {
            users: values(&txn.open_table(USERS)?, records::decode)?,
            retired_usernames: entries(&txn.open_table(RETIRED_USERNAMES)?, |k, v| {
                Ok((k.to_string(), v.to_string()))
            })?,
            owner_exists: settings.get(OWNER_EXISTS)?.is_some(),
            overrides: settings::read_overrides(&settings)?,
            sessions: entries(&txn.open_table(SESSIONS)?, |k, v| {
                Ok((k, SessionRecord::decode(v)?))
            })?,
            invites: entries(&txn.open_table(INVITES)?, |k, v| {
                Ok((k, records::decode(v)?))
            })?,
            mail_tokens: entries(&txn.open_table(TOKENS)?, |k, v| {
                Ok((k, records::decode(v)?))
            })?,
            identities: values(&txn.open_table(IDENTITIES)?, records::decode)?,
            factors: entries(&txn.open_table(FACTORS)?, |k, v| {
                Ok((k.to_string(), records::decode(v)?))
            })?,
            passkeys: values(&txn.open_table(PASSKEYS)?, records::decode)?,
            api_tokens: entries(&txn.open_table(API_TOKENS)?, |k, v| {
                Ok((k, records::decode(v)?))
            })?,
            audit: entries(&txn.open_table(AUDIT)?, |k, v| Ok((k, records::decode(v)?)))?,
        };
        Ok(snapshot.sorted())
    }

    /// Store `snapshot` in one write transaction, into a file that holds nothing durable.
    pub(super) fn import_blocking(&self, snapshot: Snapshot) -> Result<(), ImportError> {
        snapshot.check()?;
        let txn = self.db()?.begin_write()?;
        if let Some(kind) = first_filled(&txn)? {
            return Err(ImportError::NotEmpty(kind));
        }
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
        {
            // Before the users: one may hold a name it gave up once and took back.
            let mut retired = txn.open_table(RETIRED_USERNAMES)?;
            for (name, user_id) in &retired_usernames {
                retired.insert(name.as_str(), user_id.as_str())?;
            }
        }
        import_users(&txn, users)?;
        {
            let mut table = txn.open_table(SETTINGS)?;
            if owner_exists {
                table.insert(OWNER_EXISTS, records::encode(&true)?.as_slice())?;
            }
            settings::write_overrides(
                &mut table,
                overrides.registration.map_or(Override::Keep, Override::Set),
                overrides
                    .native_signin
                    .map_or(Override::Keep, Override::Set),
            )?;
        }
        for (key, record) in &sessions {
            sessions::insert_session_indexed(&txn, key, record)?;
        }
        {
            let mut table = txn.open_table(INVITES)?;
            for (key, invite) in &invites {
                table.insert(key, records::encode(invite)?.as_slice())?;
            }
            let mut table = txn.open_table(TOKENS)?;
            for (key, token) in &mail_tokens {
                table.insert(key, records::encode(token)?.as_slice())?;
            }
            let mut table = txn.open_table(FACTORS)?;
            for (user_id, record) in &factors {
                if *record != FactorsRecord::default() {
                    table.insert(user_id.as_str(), records::encode(record)?.as_slice())?;
                }
            }
            let mut table = txn.open_table(AUDIT)?;
            for (id, entry) in &audit {
                table.insert(id, records::encode(entry)?.as_slice())?;
            }
        }
        for identity in &identities {
            identities::put_identity(&txn, identity)?;
        }
        for passkey in &passkeys {
            passkeys::put_passkey(&txn, passkey)?;
        }
        for (key, token) in &api_tokens {
            api_tokens::put_token(&txn, key, token)?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// Store users earliest first, so that of two look-alike addresses (let in before the rule)
/// the first keeps the look-alike index entry, as an older file's index is built.
fn import_users(txn: &WriteTransaction, mut users: Vec<UserRecord>) -> Result<(), ImportError> {
    users.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    for user in &users {
        let look_alike = users::import_user(txn, user)
            .map_err(|e| ImportError::refused(&format!("user {}", user.id), e))?;
        if look_alike {
            tracing::warn!(
                user = %user.id,
                "this account's email address looks like an earlier account's; it is kept but not indexed (change or delete one of them)"
            );
        }
    }
    Ok(())
}

/// The first kind of durable record the file holds, if any.
fn first_filled(txn: &WriteTransaction) -> Result<Option<&'static str>, StoreError> {
    let filled = [
        (kind::USERS, !txn.open_table(USERS)?.is_empty()?),
        (
            kind::RETIRED_USERNAMES,
            !txn.open_table(RETIRED_USERNAMES)?.is_empty()?,
        ),
        (kind::SETTINGS, !txn.open_table(SETTINGS)?.is_empty()?),
        (kind::SESSIONS, !txn.open_table(SESSIONS)?.is_empty()?),
        (kind::INVITES, !txn.open_table(INVITES)?.is_empty()?),
        (kind::MAIL_TOKENS, !txn.open_table(TOKENS)?.is_empty()?),
        (kind::IDENTITIES, !txn.open_table(IDENTITIES)?.is_empty()?),
        (kind::FACTORS, !txn.open_table(FACTORS)?.is_empty()?),
        (kind::PASSKEYS, !txn.open_table(PASSKEYS)?.is_empty()?),
        (kind::API_TOKENS, !txn.open_table(API_TOKENS)?.is_empty()?),
        (kind::AUDIT, !txn.open_table(AUDIT)?.is_empty()?),
    ];
    Ok(filled
        .into_iter()
        .find(|(_, filled)| *filled)
        .map(|(kind, _)| kind))
}

/// Every entry of a table, made into a record by `f`.
fn entries<K, V, T>(
    table: &impl ReadableTable<K, V>,
    mut f: impl FnMut(K::SelfType<'_>, V::SelfType<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push(f(k.value(), v.value())?);
    }
    Ok(out)
}

/// Every value of a table of encoded records, decoded by `f`.
fn values<K, T>(
    table: &impl ReadableTable<K, &'static [u8]>,
    f: impl Fn(&[u8]) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError>
where
    K: redb::Key + 'static,
{
    entries(table, |_, v| f(v))
}
