//! Micro-benchmarks of the per-request hot path: path normalisation + route match, the
//! session check (cookie parse → SHA-256 → store lookup → identity), and beside it the API
//! token check (header parse → SHA-256 → store lookup or cache → narrowed identity).
//!
//! Run: `cargo bench --bench gateway` (the 1,000,000-session store takes about a minute to
//! build first; `AUTHGATE_BENCH_SESSIONS=100000` for a quicker run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use authgate::api::tokens::{issue, TokenSpec};
use authgate::auth::{api_token, cookie, session};
use authgate::config::Config;
use authgate::policy::path::normalise_path;
use authgate::policy::routes::find_route;
use authgate::store::redb::RedbStore;
use authgate::store::{
    NewAccount, NewSession, Role, SessionRecord, SessionStage, SignIn, Store, UserRecord,
    UserStatus,
};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use tokio::runtime::Runtime;

/// Sessions stored before measuring the lookup.
const SESSIONS: usize = 2_000;

fn routes_config() -> Config {
    let mut toml = String::new();
    for i in 0..20 {
        toml.push_str(&format!(
            "[[routes]]\nhost = \"app{i}.example.com\"\npath = \"/api/v{i}\"\nupstream = \"127.0.0.1:3000\"\npolicy = \"authenticated\"\n"
        ));
    }
    toml.push_str("[[routes]]\npath = \"/\"\nupstream = \"127.0.0.1:3000\"\npolicy = \"public\"\n");
    Config::from_toml(&toml).expect("config")
}

fn bench_routing(c: &mut Criterion) {
    let config = routes_config();
    c.bench_function("normalise + match (21 routes, last wins)", |b| {
        b.iter(|| {
            let path = normalise_path(black_box("/static/css/../js/app.js;v=3")).expect("path");
            black_box(find_route(
                &config.routes,
                "www.example.com",
                &path,
                &Method::GET,
            ))
        })
    });
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime")
}

/// The store read behind a session check not remembered: cookie parse → SHA-256 → one read of
/// session and user → liveness.
fn check_in_store(store: &Store, headers: &HeaderMap, wire_name: &str, now: i64) -> bool {
    let tokens = cookie::session_token_refs(black_box(headers), wire_name);
    futures_lite_block(async {
        for token in tokens {
            let Some(key) = session::key_for(token) else {
                continue;
            };
            if let Some((s, u)) = store.get_session(&key).await.expect("store") {
                if session::is_live(&s, &u, 7200, now) {
                    return true;
                }
            }
        }
        false
    })
}

/// Reads of redb complete without waiting: poll once, no runtime needed.
fn futures_lite_block<T>(f: impl std::future::Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a redb read waited"),
    }
}

fn create_bench_user(rt: &Runtime, store: &Store) {
    rt.block_on(store.create_user(NewAccount::of(bench_user())))
        .expect("user");
}

/// A day's password session of the bench user, begun `now` from `ip` with `user_agent`.
fn bench_session_record(now: i64, ip: &str, user_agent: &str) -> SessionRecord {
    SessionRecord {
        user_id: "u1".into(),
        created_at: now,
        expires_at: now + 86_400,
        last_seen: now,
        indexed_expiry: 0,
        remember: false,
        ip: Some(ip.into()),
        user_agent: Some(user_agent.into()),
        amr: vec!["pwd".into()],
        stage: SessionStage::Complete,
    }
}

/// Sign the bench user in (idle timeout two hours); returns the session token.
fn open_bench_session(rt: &Runtime, store: &Store, now: i64) -> String {
    let t = session::new_token().expect("token");
    rt.block_on(store.open_session(SignIn {
        session: NewSession {
            key: t.key,
            record: bench_session_record(now, "127.0.0.1", "bench"),
            idle_secs: 7200,
        },
        replaces: Vec::new(),
        identity: None,
    }))
    .expect("session");
    t.token
}

fn bench_session_check(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let store = Store::open_redb(&dir.path().join("bench.redb"), 64 << 20).expect("store");
    create_bench_user(&rt, &store);
    let now = authgate::app::now_secs();
    let mut last = String::new();
    for _ in 0..SESSIONS {
        last = open_bench_session(&rt, &store, now);
    }
    let config = Config::from_toml("").expect("config");
    let wire_name = cookie::wire_name(&config.session);
    let mut headers = HeaderMap::new();
    headers.insert(
        "cookie",
        HeaderValue::from_str(&format!("theme=dark; authgate_session={last}; lang=en"))
            .expect("cookie"),
    );
    c.bench_function(
        &format!("session check ({SESSIONS} sessions stored)"),
        |b| {
            b.iter(|| {
                let found = check_in_store(&store, &headers, &wire_name, now);
                assert!(found);
                black_box(found)
            })
        },
    );
}

fn bench_user() -> UserRecord {
    UserRecord {
        username: Some("bench".into()),
        full_name: Some("Bench User".into()),
        groups: vec!["staff".into()],
        email_verified: true,
        ..UserRecord::new("u1", "bench@example.com", Role::User, UserStatus::Active, 0)
    }
}

/// The session check against a large store: the database path (a session not seen before:
/// cookie parse → SHA-256 → redb read of session and user → liveness → identity), and the
/// remembered path the proxy takes for a session it has checked before.
fn bench_many_sessions(c: &mut Criterion) {
    let count: usize = std::env::var("AUTHGATE_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("many.redb");
    let rt = runtime();
    let store = Store::open_redb(&db, 64 << 20).expect("store");
    create_bench_user(&rt, &store);
    drop(store);
    let store = RedbStore::open(&db).expect("store");
    let now = authgate::app::now_secs();
    let mut sample = Vec::new();
    let mut batch = Vec::with_capacity(50_000);
    for i in 0..count {
        let t = session::new_token().expect("token");
        batch.push((
            t.key,
            bench_session_record(
                now,
                "203.0.113.7",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
            ),
        ));
        // Every 97th token is looked up below: spread over the whole key space.
        if i % 97 == 0 && sample.len() < 10_000 {
            sample.push(t.token);
        }
        if batch.len() == batch.capacity() {
            store.import_sessions(&batch, 7200).expect("import");
            batch.clear();
        }
    }
    store.import_sessions(&batch, 7200).expect("import");
    drop(store);
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    RedbStore::open(&db)
        .expect("reopen")
        .compact()
        .expect("compact");
    let store = Store::open_redb(&db, 64 << 20).expect("reopen");
    let compacted = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "{count} sessions: file {size} bytes ({} per session), after compaction {compacted} ({} per session)",
        size / count.max(1) as u64,
        compacted / count.max(1) as u64,
    );

    let config = Config::from_toml(&format!(
        "[storage]\npath = \"{}\"\n[[routes]]\npath = \"/\"\nupstream = \"127.0.0.1:3000\"\npolicy = \"authenticated\"\n",
        db.display()
    ))
    .expect("config");
    let wire_name = cookie::wire_name(&config.session);
    let headers: Vec<HeaderMap> = sample
        .iter()
        .map(|t| {
            let mut h = HeaderMap::new();
            h.insert(
                "cookie",
                HeaderValue::from_str(&format!("theme=dark; authgate_session={t}; lang=en"))
                    .expect("cookie"),
            );
            h
        })
        .collect();
    let mut i = 0usize;
    c.bench_function(
        &format!("session check, database ({count} sessions, random keys)"),
        |b| {
            b.iter(|| {
                i = (i + 1) % headers.len();
                let found = check_in_store(&store, &headers[i], &wire_name, now);
                assert!(found);
                black_box(found)
            })
        },
    );
    drop(store);
    let store = Store::open_redb(&db, 64 << 20).expect("store");
    let app = rt
        .block_on(async { authgate::app::App::new(config, store) })
        .expect("app");
    for h in &headers {
        let found = rt
            .block_on(app.auth.authenticate(h, now))
            .expect("identify");
        assert!(found.is_some());
    }
    let mut i = 0usize;
    c.bench_function(
        &format!(
            "session check, remembered ({count} sessions, {} in use)",
            headers.len()
        ),
        |b| {
            b.iter(|| {
                i = (i + 1) % headers.len();
                let found = futures_lite_block(app.auth.authenticate(black_box(&headers[i]), now))
                    .expect("identify");
                black_box(found.is_some())
            })
        },
    );
}

/// The API token check next to the session check it mirrors: finding the token in a
/// request's headers (each way it may come), its key (SHA-256), the store read for a token not
/// remembered, and the remembered path the proxy takes for a token (and a session) it has
/// checked before.
fn bench_token_check(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let store = Store::open_redb(&dir.path().join("tokens.redb"), 64 << 20).expect("store");
    create_bench_user(&rt, &store);
    let owner = bench_user();
    let now = authgate::app::now_secs();
    // As many tokens as one account may hold, narrowed like a typical script's.
    let mut token = String::new();
    for i in 0..api_token::MAX_PER_USER {
        let spec = TokenSpec {
            name: format!("bench {i}"),
            lifetime_secs: None,
            groups: Some(vec!["staff".into()]),
        };
        token = rt
            .block_on(issue(&store, &owner, spec, now))
            .expect("token")
            .0
            .token;
    }
    let session = open_bench_session(&rt, &store, now);

    let token_header = HeaderName::from_static("x-authgate-token");
    let headers_with = |name: &str, value: String| {
        let mut h = HeaderMap::new();
        h.insert("accept", HeaderValue::from_static("*/*"));
        h.insert("user-agent", HeaderValue::from_static("git/2.43.0"));
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(&value).expect("value"),
        );
        h
    };
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("git:{token}"),
    );
    let ways = [
        (
            "Bearer",
            headers_with("authorization", format!("Bearer {token}")),
        ),
        (
            "Basic",
            headers_with("authorization", format!("Basic {basic}")),
        ),
        (
            "token header",
            headers_with("x-authgate-token", token.clone()),
        ),
    ];
    for (way, headers) in &ways {
        c.bench_function(&format!("token: find it in the headers ({way})"), |b| {
            b.iter(|| {
                let found = api_token::presented(black_box(headers), Some(&token_header));
                assert!(matches!(found, api_token::Presented::One { .. }));
                black_box(found)
            })
        });
    }
    c.bench_function("token: key_for (check the form, SHA-256)", |b| {
        b.iter(|| black_box(api_token::key_for(black_box(&token)).expect("well-formed")))
    });
    let key = api_token::key_for(&token).expect("well-formed");
    c.bench_function(
        &format!(
            "token check, database ({} tokens stored)",
            api_token::MAX_PER_USER
        ),
        |b| {
            b.iter(|| {
                let found =
                    futures_lite_block(store.find_api_token(black_box(&key))).expect("store");
                let (record, user) = found.expect("stored");
                black_box(api_token::LiveToken::check(key, record, user, now).is_some())
            })
        },
    );

    let config = Config::from_toml("").expect("config");
    let wire_name = cookie::wire_name(&config.session);
    let app = rt
        .block_on(async { authgate::app::App::new(config, store) })
        .expect("app");
    let mut cookie_headers = HeaderMap::new();
    cookie_headers.insert(
        "cookie",
        HeaderValue::from_str(&format!("theme=dark; {wire_name}={session}; lang=en"))
            .expect("cookie"),
    );
    // Checked once each, so both are remembered from here on.
    assert!(rt
        .block_on(app.auth.check_token(&token, now))
        .expect("check")
        .is_some());
    assert!(rt
        .block_on(app.auth.authenticate(&cookie_headers, now))
        .expect("check")
        .is_some());
    let bearer = &ways[0].1;
    c.bench_function(
        "token check, remembered (Bearer: parse → SHA-256 → cache)",
        |b| {
            b.iter(|| {
                let api_token::Presented::One { token, .. } =
                    api_token::presented(black_box(bearer), app.auth.token_header())
                else {
                    panic!("no token found");
                };
                let live = futures_lite_block(app.auth.check_token(&token, now)).expect("check");
                black_box(live.expect("live").identity.groups.len())
            })
        },
    );
    c.bench_function(
        "session check, remembered (cookie: parse → SHA-256 → cache)",
        |b| {
            b.iter(|| {
                let found =
                    futures_lite_block(app.auth.authenticate(black_box(&cookie_headers), now))
                        .expect("check");
                black_box(found.expect("live").identity().groups.len())
            })
        },
    );
}

criterion_group!(
    benches,
    bench_routing,
    bench_session_check,
    bench_token_check,
    bench_many_sessions
);
criterion_main!(benches);
