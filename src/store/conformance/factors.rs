//! Second factors: a TOTP step and a recovery code are accepted once, even by racing
//! requests; a waiting secret becomes active only by confirmation; deleting the user takes
//! their factors.

use super::{owner_and_user, race, Store};
use crate::store::{FactorsRecord, PendingTotp};

fn pending() -> PendingTotp {
    PendingTotp {
        sealed_secret: vec![1, 2, 3],
        created_at: 10,
    }
}

pub(crate) async fn totp_is_confirmed_once_and_each_step_and_code_is_used_once(store: &Store) {
    let id = "u1";
    assert_eq!(
        store.factors(id).await.expect("read"),
        FactorsRecord::default()
    );
    assert!(
        !store.accept_totp_step(id, 5).await.expect("accept"),
        "no TOTP yet"
    );
    assert!(
        !store
            .confirm_totp(id, 5, vec![], 20)
            .await
            .expect("confirm"),
        "nothing waits"
    );

    store.begin_totp(id, pending()).await.expect("begin");
    let waiting = store.factors(id).await.expect("read");
    assert!(
        waiting.pending_totp.is_some() && !waiting.any(),
        "not active before a code"
    );
    let codes = vec![[7u8; 32], [8u8; 32]];
    assert!(store
        .confirm_totp(id, 100, codes, 20)
        .await
        .expect("confirm"));
    let active = store.factors(id).await.expect("read");
    assert!(active.any() && active.pending_totp.is_none());
    assert_eq!(active.totp.as_ref().map(|t| t.last_step), Some(100));
    assert_eq!(active.recovery_left(), 2);

    // (step) → accepted, in order: the confirming step and earlier ones never again.
    for (step, want) in [
        (100, false),
        (99, false),
        (101, true),
        (101, false),
        (103, true),
        (102, false),
    ] {
        assert_eq!(
            store.accept_totp_step(id, step).await.expect("accept"),
            want,
            "step {step}"
        );
    }
    assert!(store.use_recovery_code(id, [7; 32], 30).await.expect("use"));
    assert!(
        !store.use_recovery_code(id, [7; 32], 31).await.expect("use"),
        "used"
    );
    assert!(
        !store.use_recovery_code(id, [9; 32], 31).await.expect("use"),
        "unknown"
    );
    assert_eq!(store.factors(id).await.expect("read").recovery_left(), 1);
    store
        .replace_recovery_codes(id, vec![[1; 32]; 3])
        .await
        .expect("replace");
    assert_eq!(store.factors(id).await.expect("read").recovery_left(), 3);
    assert!(
        !store.use_recovery_code(id, [8; 32], 32).await.expect("use"),
        "old set gone"
    );
    store.remove_factors(id).await.expect("remove");
    assert_eq!(
        store.factors(id).await.expect("read"),
        FactorsRecord::default()
    );
}

pub(crate) async fn racing_requests_with_one_code_succeed_once(store: &Store) {
    store.begin_totp("u1", pending()).await.expect("begin");
    assert!(store
        .confirm_totp("u1", 1, vec![[5; 32]], 0)
        .await
        .expect("confirm"));
    let outcomes = race(store, 16, |s, i| async move {
        if i % 2 == 0 {
            s.accept_totp_step("u1", 2).await.expect("accept")
        } else {
            s.use_recovery_code("u1", [5; 32], 1).await.expect("use")
        }
    })
    .await;
    let mut wins = [0, 0];
    for (i, won) in outcomes.into_iter().enumerate() {
        if won {
            wins[i % 2] += 1;
        }
    }
    assert_eq!(wins, [1, 1], "one step and one code, each once");
    let after = store.factors("u1").await.expect("read");
    assert_eq!(after.totp.as_ref().map(|t| t.last_step), Some(2));
    assert_eq!(after.recovery_left(), 0);
}

pub(crate) async fn deleting_a_user_takes_their_factors(store: &Store) {
    owner_and_user(store).await;
    for id in ["u", "o"] {
        store.begin_totp(id, pending()).await.expect("begin");
        assert!(store
            .confirm_totp(id, 1, vec![[1; 32]], 0)
            .await
            .expect("confirm"));
    }
    store.delete_user("u").await.expect("delete");
    assert_eq!(
        store.factors("u").await.expect("read"),
        FactorsRecord::default()
    );
    assert!(
        store.factors("o").await.expect("read").any(),
        "another user's stay"
    );
}
