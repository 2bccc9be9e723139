//! The PostgreSQL fixture itself: private clusters start, each database is a test's own, and a
//! stopped server refuses connections until it is started again with its data.

use std::time::{Duration, Instant};

use crate::support::postgres::{connect, Postgres};

/// Poll `check` (every 50 ms, up to 15 s) until it is true; panics naming `what` otherwise.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client of `url` as soon as it accepts one (polled like [`until`]).
async fn connected(url: &str) -> tokio_postgres::Client {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match connect(url).await {
            Ok(client) => return client,
            Err(e) => assert!(Instant::now() < deadline, "cannot connect to {url}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn private_cluster_serves_a_fresh_database() {
    let pg = Postgres::private();
    let url = pg.database("fresh");
    let db = connect(&url).await.expect("connect");
    let row = db
        .query_one("SELECT current_database(), 1 + 1", &[])
        .await
        .expect("query");
    assert_eq!(url.rsplit('/').next(), Some(row.get::<_, &str>(0)));
    assert_eq!(row.get::<_, i32>(1), 2);
    let tables: i64 = db
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .expect("count tables")
        .get(0);
    assert_eq!(tables, 0, "a fresh database has no tables");
}

#[tokio::test]
async fn databases_of_the_shared_cluster_are_isolated() {
    let pg = Postgres::shared();
    let (first, second) = (pg.database("isolated"), pg.database("isolated"));
    assert_ne!(first, second, "the same name gives two databases");
    let a = connect(&first).await.expect("connect to the first");
    a.batch_execute("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('only in a')")
        .await
        .expect("create in the first");
    let b = connect(&second).await.expect("connect to the second");
    let err = b
        .query("SELECT body FROM notes", &[])
        .await
        .expect_err("the second database has no notes table");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE),
        "{err}"
    );
    let body: String = a
        .query_one("SELECT body FROM notes", &[])
        .await
        .expect("read the first")
        .get(0);
    assert_eq!(body, "only in a");
}

#[tokio::test]
async fn stopped_server_refuses_until_started_again_with_its_data() {
    let mut pg = Postgres::private();
    let url = pg.database("restart");
    let before = connect(&url).await.expect("connect");
    before
        .batch_execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
        .await
        .expect("write");

    pg.stop();
    until("the open connection fails", || async {
        before.simple_query("SELECT 1").await.is_err()
    })
    .await;
    until("new connections are refused", || async {
        connect(&url).await.is_err()
    })
    .await;

    pg.start();
    let after = connected(&url).await;
    let n: i32 = after
        .query_one("SELECT n FROM kept", &[])
        .await
        .expect("read after the restart")
        .get(0);
    assert_eq!(n, 42, "the data outlives stop and start");
}
