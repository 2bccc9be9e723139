//! A real PostgreSQL for the unit tests: the integration tests' own fixture (a private
//! cluster made with `initdb`, run with `pg_ctl`), shared by every test of the library, each
//! taking a fresh database of its own.

#[path = "../../../tests/it/support/ports.rs"]
#[allow(dead_code)]
mod ports;
#[path = "../../../tests/it/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;

/// The URL of a fresh, empty database on the shared cluster.
pub(crate) fn database(name: &str) -> String {
    postgres::Postgres::shared().database(name)
}
