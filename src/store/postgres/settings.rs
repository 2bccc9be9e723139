//! Settings that override the file, stored as JSON values by name in `settings`, named as
//! redb names them (the same table holds the owner flag, which is the users' business).

use async_trait::async_trait;

use super::PgStore;
use crate::store::{Override, Settings, StoreError, StoredOverrides};

const REGISTRATION: &str = "registration";
const NATIVE_SIGNIN: &str = "native_signin";

/// The overrides as `client` sees them now.
async fn read(client: &impl tokio_postgres::GenericClient) -> Result<StoredOverrides, StoreError> {
    let rows = client
        .query(
            "SELECT name, value FROM settings WHERE name = ANY($1)",
            &[&[REGISTRATION, NATIVE_SIGNIN].as_slice()],
        )
        .await?;
    let mut out = StoredOverrides::default();
    for row in rows {
        let name: &str = row.try_get(0)?;
        let value: serde_json::Value = row.try_get(1)?;
        match name {
            REGISTRATION => out.registration = value.as_str().map(str::to_string),
            NATIVE_SIGNIN => out.native_signin = value.as_bool(),
            _ => {}
        }
    }
    Ok(out)
}

/// Apply one change to the setting `name`.
async fn change<T: serde::Serialize>(
    client: &impl tokio_postgres::GenericClient,
    name: &str,
    to: Override<T>,
) -> Result<(), StoreError> {
    match to {
        Override::Keep => {}
        Override::Set(value) => {
            client
                .execute(
                    "INSERT INTO settings (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                    &[&name, &super::to_json(&value)?],
                )
                .await?;
        }
        Override::Clear => {
            client
                .execute("DELETE FROM settings WHERE name = $1", &[&name])
                .await?;
        }
    }
    Ok(())
}

#[async_trait]
impl Settings for PgStore {
    async fn overrides(&self) -> Result<StoredOverrides, StoreError> {
        self.run(|conn| async move { read(&**conn).await }).await
    }

    async fn set_overrides(
        &self,
        registration: Override<String>,
        native_signin: Override<bool>,
    ) -> Result<StoredOverrides, StoreError> {
        self.write(move |tx| {
            Box::pin(async move {
                change(tx, REGISTRATION, registration).await?;
                change(tx, NATIVE_SIGNIN, native_signin).await?;
                Ok((read(tx).await?, Vec::new()))
            })
        })
        .await
    }
}
