//! Look-alike addresses: an address that passes for an existing account's never becomes a
//! second account; an address with a Unicode domain is one account however it is spelt.

use serde_json::{json, Value};

use crate::support::{Client, TestServer};

/// The addresses of every account, as the owner sees them.
fn emails(owner: &mut Client) -> Vec<Value> {
    let r = owner.get("/auth/admin/users");
    assert_eq!(r.status, 200, "{}", r.body);
    let mut emails: Vec<Value> = r.json()["data"]["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["email"].clone())
        .collect();
    emails.sort_by_key(|e| e.to_string());
    emails
}

#[test]
fn look_alikes_of_an_address_are_refused_and_create_no_account() {
    let s = TestServer::start("");
    let mut owner = s.setup_owner();
    // 400: a character no address may hold; 409: folds into, or looks like, the owner's.
    let cases = [
        ("owner\u{200b}@example.com", 400, "zero-width space"),
        ("\u{43e}wner@example.com", 409, "Cyrillic o"),
        (
            "\u{ff4f}\u{ff57}\u{ff4e}\u{ff45}\u{ff52}@example.com",
            409,
            "fullwidth letters",
        ),
        ("own\u{ad}er@example.com", 400, "soft hyphen"),
        ("owne\u{301}r@example.com", 409, "combining acute accent"),
        ("o\u{336}wner@example.com", 400, "combining overlay"),
        ("\u{202e}owner@example.com", 400, "right-to-left override"),
        ("owner\u{2066}@example.com", 400, "bidi isolate"),
        ("\u{feff}owner@example.com", 400, "byte order mark"),
        ("owner@ex\u{430}mple.com", 409, "Cyrillic a in the domain"),
        ("owner@xn--exmple-4nf.com", 409, "the same, in Punycode"),
        ("0wner@example.com", 409, "digit zero"),
    ];
    for (email, status, what) in cases {
        let r = s.client().post_json(
            "/auth/register",
            &json!({"email": email, "password": "look-alike password"}),
        );
        assert_eq!(r.status, status, "{what}: {}", r.body);
        if status == 400 {
            assert_eq!(r.code(), "VALIDATION_ERROR", "{what}");
            let problem = r.json()["error"]["fields"]["email"].clone();
            assert!(
                problem.as_str().is_some_and(|p| p.contains("U+")),
                "{what}: {problem}"
            );
        } else {
            assert_eq!(r.code(), "CONFLICT", "{what}");
        }
    }
    assert_eq!(emails(&mut owner), [json!("owner@example.com")]);

    // Nor does a look-alike sign in as the account it imitates.
    let r = s
        .client()
        .login("\u{43e}wner@example.com", "owner-password-1");
    assert_eq!(r.status, 401, "{}", r.body);
    // A plainly different address still registers.
    s.register("owner2@example.com", "another password");
    assert_eq!(
        emails(&mut owner),
        [json!("owner2@example.com"), json!("owner@example.com")]
    );
}

#[test]
fn an_address_with_a_unicode_domain_signs_in_with_either_spelling() {
    let s = TestServer::start("");
    let mut owner = s.setup_owner();
    let r = s.client().post_json(
        "/auth/register",
        &json!({"email": "Anna@BÜCHER.de", "password": "anna's password"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["data"]["user"]["email"], "anna@xn--bcher-kva.de");
    for spelling in [
        "anna@bücher.de",
        "ANNA@BÜCHER.DE",
        "anna@xn--bcher-kva.de",
        "anna@bu\u{308}cher.de",
    ] {
        let r = s.client().login(spelling, "anna's password");
        assert_eq!(r.status, 200, "{spelling}: {}", r.body);
    }
    let r = s.client().post_json(
        "/auth/register",
        &json!({"email": "anna@xn--bcher-kva.de", "password": "someone else's"}),
    );
    assert_eq!(
        (r.status, r.code()),
        (409, "CONFLICT".to_string()),
        "{}",
        r.body
    );
    assert_eq!(
        emails(&mut owner),
        [json!("anna@xn--bcher-kva.de"), json!("owner@example.com")]
    );
}

/// Make the database at `path` look as written before the look-alike index existed, with a
/// look-alike of the owner's address stored beside it; returns the look-alike's id.
fn write_older_database(path: &std::path::Path) -> String {
    use redb::TableDefinition;
    let users: TableDefinition<&str, &[u8]> = TableDefinition::new("users_v1");
    let by_email: TableDefinition<&str, &str> = TableDefinition::new("users_by_email_v1");
    let skeletons: TableDefinition<&str, &str> = TableDefinition::new("users_by_email_skeleton_v1");
    let id = "0123456789abcdef0123456789abcdef";
    let copy = authgate::store::UserRecord {
        id: id.into(),
        email: "\u{43e}wner@example.com".into(),
        username: None,
        full_name: None,
        first_name: None,
        last_name: None,
        role: authgate::store::Role::User,
        groups: Vec::new(),
        status: authgate::store::UserStatus::Active,
        email_verified: false,
        password_hash: None,
        created_at: i64::MAX / 2,
        updated_at: i64::MAX / 2,
        last_login_at: None,
        expires_at: None,
    };
    let db = redb::Database::open(path).expect("open");
    let txn = db.begin_write().expect("write");
    {
        let record = authgate::store::records::encode(&copy).expect("encode");
        let mut table = txn.open_table(users).expect("users");
        table.insert(id, record.as_slice()).expect("insert");
        let mut table = txn.open_table(by_email).expect("by email");
        table.insert(copy.email.as_str(), id).expect("insert");
    }
    txn.delete_table(skeletons).expect("delete");
    txn.commit().expect("commit");
    id.to_string()
}

#[test]
fn an_older_database_with_look_alikes_starts_and_names_them() {
    let mut s = TestServer::start("");
    let mut owner = s.setup_owner();
    let owner_id = owner.get("/auth/me").json()["data"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    s.stop();
    let copy_id = write_older_database(&s.db_path());

    s.respawn();
    let (_, log) = s.stop();
    assert!(
        log.contains("look alike") && log.contains(&copy_id) && log.contains(&owner_id),
        "{log}"
    );
    s.respawn();
    let mut owner = s.client();
    assert_eq!(
        owner.login("owner@example.com", "owner-password-1").status,
        200
    );
    assert_eq!(emails(&mut owner).len(), 2, "nobody is dropped");
    let r = s.client().post_json(
        "/auth/register",
        &json!({"email": "0wner@example.com", "password": "look-alike password"}),
    );
    assert_eq!(
        (r.status, r.code()),
        (409, "CONFLICT".to_string()),
        "{}",
        r.body
    );
    s.stop();

    // Whichever command opens the file first builds the index and says so.
    write_older_database(&s.db_path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["user", "list", "--config"])
        .arg(&s.config_path)
        .output()
        .expect("run authgate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("look alike") && err.contains(&copy_id),
        "{err}"
    );
}
