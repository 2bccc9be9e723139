//! Fill a database with many sessions for measurements (`benches/sessions.sh`):
//!
//! `cargo run --release --example seed_sessions -- <db file> <sessions> <tokens file>`
//!
//! Creates one active user and the sessions (valid for a day), compacts the file, and writes
//! up to 10,000 of the tokens (spread over all of them) to the tokens file, one per line.

use std::io::Write as _;
use std::process::ExitCode;

use authgate::auth::session;
use authgate::store::redb::RedbStore;
use authgate::store::{
    NewAccount, Role, SessionRecord, SessionStage, UserRecord, UserStatus, Users as _,
};

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, count, tokens_file] = args.as_slice() else {
        return Err("usage: seed_sessions <db file> <sessions> <tokens file>".into());
    };
    let count: usize = count.parse().map_err(|_| "sessions: a number")?;
    let path = std::path::Path::new(db);
    if path.exists() {
        return Err(format!("{db} exists: give a new file"));
    }
    let store = RedbStore::open(path).map_err(|e| e.to_string())?;
    let now = authgate::app::now_secs();
    let user = UserRecord {
        username: Some("seeded".into()),
        full_name: Some("Seeded User".into()),
        groups: vec!["staff".into()],
        email_verified: true,
        ..UserRecord::new(
            "seeded-user",
            "seeded@example.com",
            Role::User,
            UserStatus::Active,
            now,
        )
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(store.create_user(NewAccount::of(user.clone())))
        .map_err(|e| e.to_string())?;
    let every = (count / 10_000).max(1);
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(tokens_file).map_err(|e| format!("{tokens_file}: {e}"))?,
    );
    let mut batch = Vec::with_capacity(50_000);
    for i in 0..count {
        let t = session::new_token()?;
        batch.push((
            t.key,
            SessionRecord {
                user_id: user.id.clone(),
                created_at: now,
                expires_at: now + 86_400,
                last_seen: now,
                indexed_expiry: 0,
                remember: false,
                ip: Some("203.0.113.7".into()),
                user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into()),
                amr: vec!["pwd".into()],
                stage: SessionStage::Complete,
            },
        ));
        if i % every == 0 {
            writeln!(out, "{}", t.token).map_err(|e| e.to_string())?;
        }
        if batch.len() == batch.capacity() {
            store
                .import_sessions(&batch, 7200)
                .map_err(|e| e.to_string())?;
            batch.clear();
        }
    }
    store
        .import_sessions(&batch, 7200)
        .map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    store.compact().map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seed_sessions: {e}");
            ExitCode::from(1)
        }
    }
}
