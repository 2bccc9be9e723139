//! Provider identities: found by (provider, subject) only, linked to one user, never left
//! behind by their user, and never unlinked when they are the last way in.

use super::{identity, user, Store};
use crate::store::{NewAccount, PasswordSignIn, Role, Unlink, UnlinkRule, UserRecord, WriteError};

/// A verified user without a password.
fn member(id: &str, email: &str) -> UserRecord {
    UserRecord {
        email_verified: true,
        password_hash: None,
        ..user(id, email, None)
    }
}

fn with_identity(user: UserRecord, provider: &str, subject: &str) -> NewAccount {
    let link = identity(provider, subject, &user.id);
    NewAccount {
        identity: Some(link),
        ..NewAccount::of(user)
    }
}

fn keep_a_way_in(configured: &[&str], password: PasswordSignIn) -> UnlinkRule {
    UnlinkRule::KeepAWayIn {
        configured: configured.iter().map(|c| c.to_string()).collect(),
        password,
    }
}

async fn providers(store: &Store, user_id: &str) -> Vec<String> {
    let mut linked: Vec<String> = store
        .user_identities(user_id)
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.provider)
        .collect();
    linked.sort();
    linked
}

pub(crate) async fn identities_are_found_by_provider_and_subject_only_and_go_with_their_user(
    store: &Store,
) {
    let owner = UserRecord {
        role: Role::Owner,
        ..member("o", "o@example.com")
    };
    store.create_owner(owner, None).await.expect("owner");
    store
        .create_user(with_identity(
            member("u1", "a@example.com"),
            "corp",
            "sub-1",
        ))
        .await
        .expect("created");
    let (i, found) = store
        .find_identity("corp", "sub-1")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(
        (i.user_id.as_str(), found.email.as_str()),
        ("u1", "a@example.com")
    );
    assert!(store
        .find_identity("corp", "a@example.com")
        .await
        .expect("read")
        .is_none());
    assert!(store
        .find_identity("other", "sub-1")
        .await
        .expect("read")
        .is_none());

    // The same subject cannot be created twice or linked to someone else.
    assert!(matches!(
        store
            .create_user(with_identity(
                member("u2", "b@example.com"),
                "corp",
                "sub-1"
            ))
            .await,
        Err(WriteError::IdentityTaken)
    ));
    assert!(
        store.get_user("u2").await.expect("read").is_none(),
        "nothing half-written"
    );
    assert!(matches!(
        store.link_identity(identity("corp", "sub-1", "o")).await,
        Err(WriteError::IdentityTaken)
    ));
    // Re-linking to the same user only refreshes it.
    store
        .link_identity(identity("corp", "sub-1", "u1"))
        .await
        .expect("refreshed");
    // A user deleted meanwhile gets no link.
    assert!(matches!(
        store.link_identity(identity("corp", "sub-9", "gone")).await,
        Err(WriteError::NotFound)
    ));
    store
        .link_identity(identity("google", "g-1", "u1"))
        .await
        .expect("second provider");
    assert_eq!(providers(store, "u1").await, ["corp", "google"]);
    let mut all: Vec<String> = store
        .all_identities()
        .await
        .expect("all")
        .into_iter()
        .map(|i| i.subject)
        .collect();
    all.sort();
    assert_eq!(all, ["g-1", "sub-1"]);

    store.delete_user("u1").await.expect("delete");
    assert!(store
        .find_identity("corp", "sub-1")
        .await
        .expect("read")
        .is_none());
    assert!(store.all_identities().await.expect("all").is_empty());
    // The subject is free for someone else now.
    store
        .link_identity(identity("corp", "sub-1", "o"))
        .await
        .expect("linked");
}

pub(crate) async fn an_unlink_keeps_the_last_way_in(store: &Store) {
    let owner = UserRecord {
        role: Role::Owner,
        ..user("o", "o@example.com", None)
    };
    store.create_owner(owner, None).await.expect("owner");
    store
        .create_user(with_identity(member("u1", "a@example.com"), "corp", "s-1"))
        .await
        .expect("created");
    store
        .link_identity(identity("google", "g-1", "u1"))
        .await
        .expect("linked");
    // u1 has no password: without another configured provider the link must stay.
    let only_google = keep_a_way_in(&["google"], PasswordSignIn::Everyone);
    let refused = store
        .unlink_identity("u1", "google", only_google)
        .await
        .expect("unlink");
    assert_eq!(refused, Unlink::Refused);
    assert_eq!(providers(store, "u1").await, ["corp", "google"]);
    let both = keep_a_way_in(&["google", "corp"], PasswordSignIn::Everyone);
    let done = store
        .unlink_identity("u1", "google", both)
        .await
        .expect("unlink");
    assert_eq!(done, Unlink::Done);
    let again = store
        .unlink_identity("u1", "google", UnlinkRule::Always)
        .await
        .expect("unlink");
    assert_eq!(again, Unlink::NotLinked);

    // A password counts when everyone may use theirs, and not when only the owner may.
    store
        .link_identity(identity("corp", "s-o", "o"))
        .await
        .expect("linked");
    let owner_only = keep_a_way_in(&["corp"], PasswordSignIn::OwnerOnly);
    let owner_keeps = store
        .unlink_identity("o", "corp", owner_only)
        .await
        .expect("unlink");
    assert_eq!(owner_keeps, Unlink::Done, "the owner's password counts");
    store
        .set_password("u1", "h".into(), 5, None)
        .await
        .expect("password");
    let owner_only = keep_a_way_in(&["corp"], PasswordSignIn::OwnerOnly);
    let refused = store
        .unlink_identity("u1", "corp", owner_only)
        .await
        .expect("unlink");
    assert_eq!(refused, Unlink::Refused);
    let everyone = keep_a_way_in(&["corp"], PasswordSignIn::Everyone);
    let done = store
        .unlink_identity("u1", "corp", everyone)
        .await
        .expect("unlink");
    assert_eq!(done, Unlink::Done);
    assert!(store.user_identities("u1").await.expect("list").is_empty());
}
