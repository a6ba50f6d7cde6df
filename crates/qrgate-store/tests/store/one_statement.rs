//! PostgreSQL's one-statement movements.

use super::*;

// ---------- PostgreSQL's one-statement movements ----------

/// Movements that pass are written as one statement; one that a guard
/// refuses is written by nothing, and the step-by-step transaction names the
/// refusal (or replays the stored response).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_movements_are_one_statement_unless_refused() {
    let Some(db) = open_pg().await else { return };
    let AnyStore::Postgres(pg) = &db.store else {
        unreachable!()
    };
    let s = &db.store;
    let paths = |one_statement, step_by_step| MovementPaths {
        one_statement,
        step_by_step,
    };
    accounts(s, 1).await;
    s.apply(topup("t1", &wallet(0), 5_000)).await.unwrap();
    let mut m = pay("pay_1", &wallet(0), "c1", 1_000, 1_500);
    m.idempotency = Some(IdempotencyRecord {
        scope: "merchant:mch_1".into(),
        key: "key-1".into(),
        request_hash: "h1".into(),
        response_status: 201,
        response_body: "{\"id\":\"pay_1\"}".into(),
    });
    assert_eq!(
        s.apply(m.clone()).await.unwrap(),
        Applied::Done { audit_seq: None }
    );
    s.apply(refund("pay_1", "r1", &wallet(0), 400, (1_000, 0)))
        .await
        .unwrap();
    s.apply(topup("t2", MERCHANT, 1_000)).await.unwrap();
    assert_eq!(pg.movement_paths(), paths(4, 0));
    assert_eq!(balance(s, &wallet(0)).await, 4_400);
    assert_eq!(balance(s, MERCHANT).await, 1_600);
    assert_eq!(
        s.payment("pay_1").await.unwrap().unwrap().refunded_minor,
        400
    );

    let before = fingerprint(&db).await;
    // The same request again: replayed.
    assert_eq!(
        s.apply(m).await.unwrap(),
        Applied::Replayed {
            status: 201,
            body: "{\"id\":\"pay_1\"}".into()
        }
    );
    // Over the daily cap (1,000 + 600 > 1,500): the counter's guard.
    let e = s
        .apply(pay("pay_2", &wallet(0), "c2", 600, 1_500))
        .await
        .unwrap_err();
    assert!(
        matches!(e, MovementError::LimitExceeded { current: 1_000, .. }),
        "{e:?}"
    );
    // More than the wallet holds: the account's guard, after the counter passed.
    let e = s
        .apply(pay("pay_3", &wallet(0), "c3", 4_500, 100_000))
        .await
        .unwrap_err();
    assert!(
        matches!(e, MovementError::InsufficientFunds { .. }),
        "{e:?}"
    );
    // A burnt code: the burn's guard.
    let e = s
        .apply(pay("pay_4", &wallet(0), "c1", 10, 100_000))
        .await
        .unwrap_err();
    assert!(matches!(e, MovementError::CodeAlreadyUsed { .. }), "{e:?}");
    // A second refund past what was captured: the payment's guard.
    let e = s
        .apply(refund("pay_1", "r2", &wallet(0), 700, (10_000, 400)))
        .await
        .unwrap_err();
    assert!(
        matches!(e, MovementError::RefundExceedsCaptured { .. }),
        "{e:?}"
    );
    assert_eq!(pg.movement_paths(), paths(4, 5));
    assert_eq!(
        fingerprint(&db).await,
        before,
        "a refused statement wrote something"
    );
    assert_sound(s).await;
    db.drop_schema().await;
}
