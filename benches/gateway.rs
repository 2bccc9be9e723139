//! Micro-benchmarks of the per-request hot path: path normalisation + route match, and the
//! session check (cookie parse → SHA-256 → store lookup → identity).
//!
//! Run: `cargo bench --bench gateway`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use authgate::auth::{cookie, session};
use authgate::config::Config;
use authgate::proxy::routing::{find_route, normalise_path};
use authgate::store::{Role, SessionRecord, Store, UserRecord, UserStatus};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, Method};

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

fn bench_session_check(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("bench.redb")).expect("store");
    let user = UserRecord {
        id: "u1".into(),
        email: "bench@example.com".into(),
        username: Some("bench".into()),
        full_name: Some("Bench User".into()),
        first_name: None,
        last_name: None,
        role: Role::User,
        groups: vec!["staff".into()],
        status: UserStatus::Active,
        email_verified: true,
        password_hash: None,
        created_at: 0,
        updated_at: 0,
        last_login_at: None,
        expires_at: None,
    };
    store.create_user(&user, None).expect("user");
    let now = authgate::app::now_secs();
    let mut last = String::new();
    for _ in 0..SESSIONS {
        let t = session::new_token().expect("token");
        let record = SessionRecord {
            user_id: "u1".into(),
            created_at: now,
            expires_at: now + 86_400,
            last_seen: now,
            indexed_expiry: 0,
            remember: false,
            ip: Some("127.0.0.1".into()),
            user_agent: Some("bench".into()),
        };
        store
            .create_session(&t.key, &record, 7200)
            .expect("session");
        last = t.token;
    }
    let config = Config::from_toml("").expect("config");
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
                let tokens = cookie::session_tokens(black_box(&headers), &config.session);
                let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
                let found = session::check_tokens(&store, &refs, 7200, now).expect("store");
                assert!(found.is_some());
                black_box(found)
            })
        },
    );
}

criterion_group!(benches, bench_routing, bench_session_check);
criterion_main!(benches);
