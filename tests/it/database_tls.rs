//! The shared backend over TLS: a PostgreSQL that takes TCP connections over TLS only, whose
//! certificate comes from a CA of the test's own. The gateway reaches it when the URL names
//! that CA (`sslrootcert`), every connection it holds is encrypted, and it refuses to start
//! when the certificate cannot be verified, whatever `sslmode` says.

use crate::support::postgres::{connect, Postgres};
use crate::support::tls::TestCa;
use crate::support::{config_text_on, refuses_to_start_with, Echo, Storage, TestServer};

/// A TLS-only cluster with a certificate for 127.0.0.1 from `ca`, and a database on it.
fn tls_only_cluster(ca: &TestCa) -> (Postgres, String) {
    let leaf = ca.leaf(&["127.0.0.1"]);
    let pg = Postgres::private_tls_only(&leaf.cert_pem, &leaf.key_pem);
    let url = pg.database("tls");
    (pg, url)
}

fn on_postgres(url: String, dir: &std::path::Path) -> Storage {
    Storage::Postgres {
        url,
        key_file: dir.join("encryption.key"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_reaches_a_tls_only_database_and_all_its_connections_are_encrypted() {
    let ca = TestCa::new("database CA");
    let (pg, url) = tls_only_cluster(&ca);
    let db_name = url.rsplit('/').next().expect("a database name").to_string();
    let keys = tempfile::tempdir().expect("tempdir");
    let ca_file = keys.path().join("database-ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("CA file");
    let url = format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        ca_file.display()
    );
    let echo = Echo::start();
    let routes = format!(
        "[[routes]]\npath = \"/\"\nupstream = \"{}\"\npolicy = \"authenticated\"\n",
        echo.upstream()
    );
    let server = tokio::task::spawn_blocking(move || {
        let storage = on_postgres(url, keys.path());
        let server = TestServer::start_on_storage(&storage, "", &routes);
        let mut owner = server.setup_owner();
        let r = owner.get("/app/x");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.echoed_headers()["remote-user"][0], "owner");
        (server, keys)
    })
    .await
    .expect("the gateway's steps");

    // Looked at over the cluster's own socket: the owner is stored, and every connection the
    // gateway holds (pool and listener) is TLS.
    let db = connect(&pg.local_url(&db_name))
        .await
        .expect("local socket");
    let owners: i64 = db
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .expect("users")
        .get(0);
    assert_eq!(owners, 1);
    let row = db
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'authgate'",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    let (all, encrypted): (i64, i64) = (row.get(0), row.get(1));
    assert!(all >= 2, "the pool and the listener are connected: {all}");
    assert_eq!(encrypted, all, "every connection of the gateway is TLS");
    drop(server);
}

#[test]
fn a_database_certificate_that_cannot_be_verified_stops_start_up() {
    let ca = TestCa::new("database CA");
    let (_pg, url) = tls_only_cluster(&ca);
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let other_ca = write("other-ca.pem", &TestCa::new("someone else").pem());
    let right_ca = write("right-ca.pem", &ca.pem());
    let not_a_ca = write("not-a-ca.pem", "hello\n");
    let cases = [
        // The system's roots do not know the test's CA: even `require`, which libpq would
        // accept unverified, is refused.
        (
            "system roots, require",
            "sslmode=require".to_string(),
            "invalid peer certificate",
        ),
        (
            "system roots, verify-full",
            "sslmode=verify-full".into(),
            "invalid peer certificate",
        ),
        (
            "another CA",
            format!("sslmode=verify-full&sslrootcert={}", other_ca.display()),
            "invalid peer certificate",
        ),
        (
            "a CA file with no certificate",
            format!("sslrootcert={}", not_a_ca.display()),
            "no CERTIFICATE block",
        ),
        // The server takes nothing but TLS.
        ("plain", "sslmode=disable".into(), "no encryption"),
    ];
    for (name, query, says) in cases {
        let storage = on_postgres(format!("{url}?{query}"), dir.path());
        let (_, err) =
            refuses_to_start_with(|port| config_text_on(&storage, port, dir.path(), "", ""));
        assert!(err.contains(says), "{name}: {err}");
    }
    // A certificate from the right CA for another name.
    let misnamed = ca.leaf(&["db.internal"]);
    let other = Postgres::private_tls_only(&misnamed.cert_pem, &misnamed.key_pem);
    let storage = on_postgres(
        format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            other.database("misnamed"),
            right_ca.display()
        ),
        dir.path(),
    );
    let (_, err) = refuses_to_start_with(|port| config_text_on(&storage, port, dir.path(), "", ""));
    assert!(
        err.contains("not valid for name \"127.0.0.1\""),
        "another name: {err}"
    );
    // The same database with the right CA is reached (the refusals above were the TLS
    // checks, not the database).
    let storage = on_postgres(
        format!(
            "{url}?sslmode=verify-full&sslrootcert={}",
            right_ca.display()
        ),
        dir.path(),
    );
    let server = TestServer::start_on_storage(&storage, "", "");
    assert_eq!(server.client().get("/auth/health").status, 200);
}
