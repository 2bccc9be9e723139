//! `[storage]`: the embedded redb file (the default) or a PostgreSQL database several
//! instances share.

use super::model::{PostgresConfig, StorageConfig};
use super::parse_size;
use super::raw::RawStorage;
use super::secrets::Secret;
use super::validate::Validator;

/// The environment variable that may carry `storage.url`.
pub const STORAGE_URL_ENV: &str = "AUTHGATE_STORAGE_URL";

/// Connections one instance may hold at most (PostgreSQL's default `max_connections` is 100).
const MAX_POOL: usize = 256;

impl Validator {
    pub(super) fn storage(&mut self, raw: RawStorage) -> StorageConfig {
        if raw.path.as_os_str().is_empty() {
            self.problem("storage.path", "must not be empty");
        }
        let cache_size = match parse_size(&raw.cache_size) {
            Ok(n) if n >= 1 << 20 => n,
            Ok(_) => {
                self.problem("storage.cache_size", "must be at least 1MiB");
                1 << 20
            }
            Err(e) => {
                self.problem("storage.cache_size", e);
                1 << 20
            }
        };
        let postgres = match raw.backend.as_str() {
            "redb" => None,
            "postgres" => self.postgres(&raw),
            other => {
                self.problem(
                    "storage.backend",
                    format!("{other:?} is not a backend: use \"redb\" or \"postgres\""),
                );
                None
            }
        };
        StorageConfig {
            path: raw.path,
            cache_size,
            postgres,
        }
    }

    fn postgres(&mut self, raw: &RawStorage) -> Option<PostgresConfig> {
        if !(1..=MAX_POOL).contains(&raw.pool_size) {
            self.problem(
                "storage.pool_size",
                format!("must be between 1 and {MAX_POOL}"),
            );
        }
        let Some(url) = self.secret("storage.url", &raw.url, &raw.url_file, STORAGE_URL_ENV) else {
            self.problem(
                "storage.url",
                format!(
                    "backend = \"postgres\" needs the database's URL (storage.url, storage.url_file or {STORAGE_URL_ENV})"
                ),
            );
            return None;
        };
        if let Err(why) = check_url(&url.0) {
            // The URL may hold a password: the problem never repeats it.
            self.problem("storage.url", why);
            return None;
        }
        Some(PostgresConfig {
            url: Secret(url.0),
            pool_size: raw.pool_size.clamp(1, MAX_POOL),
        })
    }
}

/// A `postgres://` (or `postgresql://`) URL naming a host and a database.
fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text.trim()).map_err(|_| {
        "must be a URL such as postgres://authgate@db.internal/authgate".to_string()
    })?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err("must start with postgres:// or postgresql://".into());
    }
    let named_host = url.host_str().is_some_and(|h| !h.is_empty())
        || url.query_pairs().any(|(k, _)| k == "host");
    if !named_host {
        return Err("must name the database's host".into());
    }
    if url.path().trim_start_matches('/').is_empty()
        && !url.query_pairs().any(|(k, _)| k == "dbname")
    {
        return Err("must name the database (postgres://user@host/DATABASE)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn storage(text: &str) -> Result<Option<(String, usize)>, Vec<String>> {
        Config::from_toml(&format!(
            "[security]\nencryption_key_file = \"/etc/authgate/key\"\n[storage]\n{text}\n"
        ))
        .map(|c| c.storage.postgres.map(|p| (p.url.0, p.pool_size)))
        .map_err(|e| e.0.into_iter().map(|p| p.key).collect())
    }

    #[test]
    fn the_backend_is_redb_or_postgres_with_a_usable_url() {
        let url_problem = Err(vec!["storage.url".to_string()]);
        // (the [storage] keys, the outcome)
        let cases = [
            ("", Ok(None)),
            ("backend = \"redb\"", Ok(None)),
            (
                "backend = \"postgres\"\nurl = \"postgres://a:pw@db.internal:5433/authgate\"",
                Ok(Some(("postgres://a:pw@db.internal:5433/authgate".into(), 16))),
            ),
            (
                "backend = \"postgres\"\nurl = \"postgresql://a@db/x?sslmode=require\"\npool_size = 4",
                Ok(Some(("postgresql://a@db/x?sslmode=require".into(), 4))),
            ),
            ("backend = \"postgres\"", url_problem.clone()),
            ("backend = \"postgres\"\nurl = \"db.internal\"", url_problem.clone()),
            ("backend = \"postgres\"\nurl = \"mysql://db/x\"", url_problem.clone()),
            ("backend = \"postgres\"\nurl = \"postgres://db\"", url_problem.clone()),
            (
                "backend = \"postgres\"\nurl = \"postgres://db/x\"\npool_size = 0",
                Err(vec!["storage.pool_size".to_string()]),
            ),
            ("backend = \"sqlite\"", Err(vec!["storage.backend".to_string()])),
        ];
        for (text, want) in cases {
            assert_eq!(storage(text), want, "{text}");
        }
    }

    #[test]
    fn a_problem_with_the_url_never_repeats_it() {
        let err =
            Config::from_toml("[storage]\nbackend = \"postgres\"\nurl = \"hunter2-secret\"\n")
                .expect_err("refused");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }

    #[test]
    fn several_instances_need_one_sealing_key_file() {
        let problems =
            Config::from_toml("[storage]\nbackend = \"postgres\"\nurl = \"postgres://db/x\"\n")
                .err()
                .map(|e| e.0.into_iter().map(|p| p.key).collect::<Vec<_>>());
        assert_eq!(
            problems,
            Some(vec!["security.encryption_key_file".to_string()])
        );
    }

    #[test]
    fn the_url_may_come_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("url");
        std::fs::write(&file, "postgres://a:pw@db/authgate\n").expect("write");
        let got = storage(&format!(
            "backend = \"postgres\"\nurl_file = \"{}\"",
            file.display()
        ));
        assert_eq!(got, Ok(Some(("postgres://a:pw@db/authgate".into(), 16))));
    }
}
