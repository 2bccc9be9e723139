//! Settings that override the file, stored as JSON values by name.

use redb::ReadableDatabase;

use super::{RedbStore, SETTINGS, SETTING_NATIVE_SIGNIN, SETTING_REGISTRATION};
use crate::store::records;
use crate::store::{Override, StoreError, StoredOverrides};

impl RedbStore {
    pub(super) fn overrides_now(&self) -> Result<StoredOverrides, StoreError> {
        let txn = self.db()?.begin_read()?;
        let settings = txn.open_table(SETTINGS)?;
        let read = |name: &str| -> Result<Option<serde_json::Value>, StoreError> {
            let found = settings.get(name)?;
            found.map(|v| records::decode(v.value())).transpose()
        };
        Ok(StoredOverrides {
            registration: read(SETTING_REGISTRATION)?.and_then(|v| v.as_str().map(str::to_string)),
            native_signin: read(SETTING_NATIVE_SIGNIN)?.and_then(|v| v.as_bool()),
        })
    }

    pub(super) fn set_overrides_blocking(
        &self,
        registration: Override<String>,
        native_signin: Override<bool>,
    ) -> Result<StoredOverrides, StoreError> {
        let txn = self.db()?.begin_write()?;
        {
            let mut settings = txn.open_table(SETTINGS)?;
            match registration {
                Override::Keep => {}
                Override::Set(word) => {
                    settings.insert(
                        SETTING_REGISTRATION,
                        records::encode(&serde_json::json!(word))?.as_slice(),
                    )?;
                }
                Override::Clear => {
                    settings.remove(SETTING_REGISTRATION)?;
                }
            }
            match native_signin {
                Override::Keep => {}
                Override::Set(on) => {
                    settings.insert(
                        SETTING_NATIVE_SIGNIN,
                        records::encode(&serde_json::json!(on))?.as_slice(),
                    )?;
                }
                Override::Clear => {
                    settings.remove(SETTING_NATIVE_SIGNIN)?;
                }
            }
        }
        txn.commit()?;
        self.overrides_now()
    }
}
