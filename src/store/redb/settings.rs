//! Settings that override the file, stored as JSON values by name.

use redb::{ReadableDatabase, ReadableTable, Table};

use super::{RedbStore, SETTINGS, SETTING_NATIVE_SIGNIN, SETTING_REGISTRATION};
use crate::store::records;
use crate::store::{Override, StoreError, StoredOverrides};

/// The overrides a settings table holds.
pub(super) fn read_overrides(
    settings: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<StoredOverrides, StoreError> {
    let read = |name: &str| -> Result<Option<serde_json::Value>, StoreError> {
        let found = settings.get(name)?;
        found.map(|v| records::decode(v.value())).transpose()
    };
    Ok(StoredOverrides {
        registration: read(SETTING_REGISTRATION)?.and_then(|v| v.as_str().map(str::to_string)),
        native_signin: read(SETTING_NATIVE_SIGNIN)?.and_then(|v| v.as_bool()),
    })
}

/// Change the overrides in a settings table.
pub(super) fn write_overrides(
    settings: &mut Table<&'static str, &'static [u8]>,
    registration: Override<String>,
    native_signin: Override<bool>,
) -> Result<(), StoreError> {
    for (name, change) in [
        (
            SETTING_REGISTRATION,
            registration.map(serde_json::Value::from),
        ),
        (
            SETTING_NATIVE_SIGNIN,
            native_signin.map(serde_json::Value::from),
        ),
    ] {
        match change {
            Override::Keep => {}
            Override::Set(value) => {
                settings.insert(name, records::encode(&value)?.as_slice())?;
            }
            Override::Clear => {
                settings.remove(name)?;
            }
        }
    }
    Ok(())
}

impl RedbStore {
    pub(super) fn overrides_now(&self) -> Result<StoredOverrides, StoreError> {
        let txn = self.db()?.begin_read()?;
        read_overrides(&txn.open_table(SETTINGS)?)
    }

    pub(super) fn set_overrides_blocking(
        &self,
        registration: Override<String>,
        native_signin: Override<bool>,
    ) -> Result<StoredOverrides, StoreError> {
        let txn = self.db()?.begin_write()?;
        write_overrides(&mut txn.open_table(SETTINGS)?, registration, native_signin)?;
        txn.commit()?;
        self.overrides_now()
    }
}
