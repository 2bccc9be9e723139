//! `authgate migrate` (the PostgreSQL schema alone) and `authgate migrate-store` (everything
//! from one store into another, empty one: a redb file to PostgreSQL, or back).

use std::path::{Path, PathBuf};

use crate::app::now_secs;
use crate::auth::sealing::{key_path, SealingKey};
use crate::config::{Config, StorageConfig, STORAGE_URL_ENV};
use crate::store::postgres::PgStore;
use crate::store::{AuditRecord, ImportError, Snapshot, Store};

/// `migrate`: bring the PostgreSQL schema up to date without starting the gateway.
pub fn migrate(config: &Config) -> Result<String, String> {
    let Some(pg) = &config.storage.postgres else {
        return Ok(format!(
            "{} needs no migration: its tables are created and brought up to date whenever it is opened",
            describe(&config.storage)
        ));
    };
    let version = PgStore::migrate(&pg.url.0).map_err(|e| e.to_string())?;
    Ok(format!(
        "{} is at schema version {version}",
        describe(&config.storage)
    ))
}

/// `migrate-store`: copy everything durable from `from`'s store into `to`'s, which must be
/// empty, and read the copy back to check it. The gateways on both must be stopped (a redb
/// file is refused while a server has it open; a shared database would miss what changes
/// after the copy was read).
pub async fn migrate_store(from: &Config, to: &Config) -> Result<String, String> {
    let (source, target) = (describe(&from.storage), describe(&to.storage));
    if same_database(&from.storage, &to.storage) {
        let mut why = format!("both configs name {source}: copy into another, empty store");
        if from.storage.postgres.is_some() && std::env::var_os(STORAGE_URL_ENV).is_some() {
            why.push_str(&format!(
                " ({STORAGE_URL_ENV} is set, and names the database of both)"
            ));
        }
        return Err(why);
    }
    if from.storage.postgres.is_none() && !from.storage.path.exists() {
        return Err(format!("{source} does not exist: there is nothing to copy"));
    }
    let old =
        Store::open(from.storage.location()).map_err(|e| format!("the store to copy from: {e}"))?;
    let new =
        Store::open(to.storage.location()).map_err(|e| format!("the store to copy into: {e}"))?;
    let mut snapshot = old
        .export()
        .await
        .map_err(|e| format!("reading {source}: {e}"))?;
    let orphans = snapshot.orphans();
    snapshot.drop_orphans();
    let counts = snapshot.counts();
    let key_note = check_sealing_key(from, to, &snapshot)?;
    note_the_move(&mut snapshot, &source);
    new.import(snapshot.clone()).await.map_err(|e| match e {
        ImportError::NotEmpty(kind) => format!(
            "{target} is not empty (it has {kind}): migrate-store copies only into an empty store, and wrote nothing"
        ),
        other => format!("copying into {target}: {other}; nothing was written"),
    })?;
    let copy = new
        .export()
        .await
        .map_err(|e| format!("reading the copy back from {target}: {e}"))?;
    let differences = snapshot.differences(&copy);
    if !differences.is_empty() {
        return Err(format!(
            "the copy in {target} reads back differently ({}): do not use it; empty it and try again",
            differences.join(", ")
        ));
    }
    let mut out = format!("copied {source} to {target}:");
    for (kind, n) in counts {
        out.push_str(&format!("\n  {kind:<20} {n}"));
    }
    out.push_str(&format!(
        "\n  {:<20} {}\n  {:<20} {}",
        "owner",
        if snapshot.owner_exists {
            "yes (setup is done)"
        } else {
            "none yet"
        },
        "settings overrides",
        overrides(&snapshot)
    ));
    for (kind, n) in orphans {
        out.push_str(&format!(
            "\nleft behind: {n} {kind} of users that no longer exist (nothing could reach them)"
        ));
    }
    if let Some(note) = key_note {
        out.push_str(&format!("\n{note}"));
    }
    out.push_str(
        "\nnot copied (short-lived): passkey ceremonies in progress, lockout and rate-limit counters, sign-ins waiting for a provider",
    );
    Ok(out)
}

/// What a store is, for messages: never a URL's password.
fn describe(storage: &StorageConfig) -> String {
    match &storage.postgres {
        None => format!("the redb file {}", storage.path.display()),
        Some(pg) => match database_of(&pg.url.0) {
            Some((host, port, name)) => {
                format!("the PostgreSQL database {name:?} on {host}:{port}")
            }
            None => "the PostgreSQL database".into(),
        },
    }
}

/// (host, port, database) of a PostgreSQL URL.
fn database_of(url: &str) -> Option<(String, u16, String)> {
    let url = url::Url::parse(url.trim()).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let name = url.path().trim_start_matches('/');
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8_lossy()
        .into_owned();
    Some((host, url.port().unwrap_or(5432), name))
}

/// Whether both name the same store: the same redb file, or the same database on the same
/// server as the URLs spell it (another spelling of one server is caught by the target not
/// being empty).
fn same_database(a: &StorageConfig, b: &StorageConfig) -> bool {
    match (&a.postgres, &b.postgres) {
        (None, None) => absolute(&a.path) == absolute(&b.path),
        (Some(x), Some(y)) => {
            database_of(&x.url.0).is_some() && database_of(&x.url.0) == database_of(&y.url.0)
        }
        _ => false,
    }
}

/// `path` as the file system resolves it (links followed), else made absolute as written.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Second-factor secrets are sealed with the old config's key: refuse (before writing) when
/// the new config's key does not open them, saying how to give it the same key.
fn check_sealing_key(
    from: &Config,
    to: &Config,
    snapshot: &Snapshot,
) -> Result<Option<String>, String> {
    let sealed: Vec<(&str, &[u8])> = snapshot
        .factors
        .iter()
        .flat_map(|(user_id, f)| {
            let active = f.totp.as_ref().map(|t| t.sealed_secret.as_slice());
            let waiting = f.pending_totp.as_ref().map(|p| p.sealed_secret.as_slice());
            [active, waiting]
                .into_iter()
                .flatten()
                .map(move |s| (user_id.as_str(), s))
        })
        .collect();
    if sealed.is_empty() {
        return Ok(None);
    }
    let (old_path, new_path) = (key_path(from), key_path(to));
    let opens = |path: &Path| -> Result<bool, String> {
        Ok(SealingKey::load(path)?.is_some_and(|key| {
            sealed
                .iter()
                .all(|(user_id, secret)| key.open(secret, user_id.as_bytes()).is_ok())
        }))
    };
    if absolute(&old_path) == absolute(&new_path) || opens(&new_path)? {
        return Ok(None);
    }
    if !opens(&old_path)? {
        return Ok(Some(format!(
            "warning: the second-factor secrets do not open with {} either; they were copied as they were",
            old_path.display()
        )));
    }
    let problem = if new_path.exists() {
        "holds another key"
    } else {
        "does not exist"
    };
    Err(format!(
        "second factors are sealed with the key in {old}, and the new config's key file {new} {problem}: \
         set [security] encryption_key_file in the new config to {old}, or copy {old} to {new}; nothing was written",
        old = old_path.display(),
        new = new_path.display(),
    ))
}

/// Record in the copy's audit log where it came from.
fn note_the_move(snapshot: &mut Snapshot, source: &str) {
    let id = snapshot
        .audit
        .last()
        .map_or(1, |(id, _)| id.saturating_add(1));
    snapshot.audit.push((
        id,
        AuditRecord {
            at: now_secs(),
            event: "store_migrated".into(),
            actor: Some("cli".into()),
            target: None,
            ip: None,
            detail: Some(format!("copied from {source}")),
        },
    ));
}

/// The overrides as `key=value` words, or "none".
fn overrides(snapshot: &Snapshot) -> String {
    let o = &snapshot.overrides;
    let mut words = Vec::new();
    if let Some(r) = &o.registration {
        words.push(format!("registration={r}"));
    }
    if let Some(n) = o.native_signin {
        words.push(format!("native_signin={n}"));
    }
    if words.is_empty() {
        "none".into()
    } else {
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FactorsRecord, TotpFactor};

    fn config(storage: &str, key: &Path) -> Config {
        let text = format!(
            "[storage]\n{storage}\n[security]\nencryption_key_file = \"{}\"\n",
            key.display()
        );
        Config::from_toml(&text).expect("config")
    }

    #[test]
    fn stores_are_named_without_secrets_and_the_same_one_is_recognised() {
        let key = Path::new("k");
        let pg = |url: &str| config(&format!("backend = \"postgres\"\nurl = \"{url}\""), key);
        let file = |path: &str| config(&format!("path = \"{path}\""), key);
        let shown = describe(&pg("postgres://a:hunter2@DB.internal:5433/auth%5Fgate").storage);
        assert_eq!(
            shown,
            "the PostgreSQL database \"auth_gate\" on db.internal:5433"
        );
        // (a, b, same)
        let cases = [
            (
                pg("postgres://a@db/x"),
                pg("postgres://b:pw@db:5432/x"),
                true,
            ),
            (pg("postgres://a@db/x"), pg("postgres://a@db/y"), false),
            (pg("postgres://a@db/x"), pg("postgres://a@db:5433/x"), false),
            (file("data/a.redb"), file("./data/a.redb"), true),
            (file("data/a.redb"), file("data/b.redb"), false),
            (file("data/a.redb"), pg("postgres://a@db/x"), false),
        ];
        for (a, b, same) in cases {
            assert_eq!(
                same_database(&a.storage, &b.storage),
                same,
                "{} / {}",
                describe(&a.storage),
                describe(&b.storage)
            );
        }
    }

    #[test]
    fn sealed_second_factors_move_only_to_a_config_with_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old_key = dir.path().join("old.key");
        let new_key = dir.path().join("new.key");
        let sealing = SealingKey::load_or_create(&old_key).expect("key");
        let mut snapshot = Snapshot::default();
        let from = config("path = \"a.redb\"", &old_key);
        let to = config("path = \"b.redb\"", &new_key);
        assert_eq!(
            check_sealing_key(&from, &to, &snapshot),
            Ok(None),
            "no factors"
        );
        snapshot.factors.push((
            "u1".into(),
            FactorsRecord {
                totp: Some(TotpFactor {
                    sealed_secret: sealing.seal(b"secret", b"u1").expect("sealed"),
                    enabled_at: 1,
                    last_step: 2,
                }),
                ..FactorsRecord::default()
            },
        ));
        let refused = check_sealing_key(&from, &to, &snapshot).expect_err("no key there");
        assert!(refused.contains("does not exist"), "{refused}");
        assert!(refused.contains("encryption_key_file"), "{refused}");
        SealingKey::load_or_create(&new_key).expect("another key");
        let refused = check_sealing_key(&from, &to, &snapshot).expect_err("another key");
        assert!(refused.contains("holds another key"), "{refused}");
        std::fs::copy(&old_key, &new_key).expect("copy the key");
        assert_eq!(check_sealing_key(&from, &to, &snapshot), Ok(None));
        let same = config("path = \"b.redb\"", &old_key);
        assert_eq!(check_sealing_key(&from, &same, &snapshot), Ok(None));
    }
}
