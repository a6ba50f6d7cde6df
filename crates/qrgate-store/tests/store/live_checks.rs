//! The caller's key, devices, static codes and the block list, checked with the writes.

use super::*;

// ---------- the caller's key and the block list, checked with the writes ----------

// A movement that names the caller's key and its parties is written only
// while the key is unrevoked and neither party is blocked; otherwise it is
// refused and writes nothing. On PostgreSQL a passing one is still one
// statement.
on_both!(
    movements_check_the_key_and_the_block_list,
    |db: Db| async move {
        let s = &db.store;
        accounts(s, 1).await;
        s.apply(topup("t1", &wallet(0), 5_000)).await.unwrap();
        for (id, hash) in [("key_live", "h_live"), ("key_gone", "h_gone")] {
            s.insert(Record::ApiKey(ApiKey {
                id: id.into(),
                key_hash: hash.into(),
                role: "merchant".into(),
                subject_id: Some("mch_1".into()),
                created_at: t(0),
                revoked_at: None,
            }))
            .await
            .unwrap();
        }
        let audit = |action: &str, subject: &str| AuditEntry {
            action: action.into(),
            subject: subject.into(),
            details: json!({}),
        };
        assert!(
            s.revoke_api_key("key_gone", t(1), audit("api_key.revoked", "key_gone"))
                .await
                .unwrap()
        );
        for (id, subject) in [
            ("blk_1", "cus_bad"),
            ("blk_2", "cus_bad"),
            ("blk_3", "mch_bad"),
        ] {
            s.insert(Record::Block(Block {
                id: id.into(),
                subject_id: subject.into(),
                reason: "test".into(),
                created_at: t(1),
                lifted_at: None,
            }))
            .await
            .unwrap();
        }
        assert_eq!(
            s.blocked_subjects(10).await.unwrap(),
            vec!["cus_bad".to_string(), "mch_bad".to_string()],
            "each blocked party once, in id order"
        );
        assert_eq!(
            s.blocked_subjects(1).await.unwrap(),
            vec!["cus_bad".to_string()]
        );

        let guarded = |id: &str, code: &str, key: &str, parties: [&str; 2]| {
            let mut m = pay(id, &wallet(0), code, 100, 100_000);
            m.live_api_key = Some(key.into());
            m.unblocked = parties.iter().map(|p| p.to_string()).collect();
            m
        };
        let paths = |db: &Db| match &db.store {
            AnyStore::Postgres(pg) => Some(pg.movement_paths()),
            AnyStore::Sqlite(_) => None,
        };
        let at_start = paths(&db);
        let done = s
            .apply(guarded("pay_1", "c1", "key_live", ["mch_1", "cus_1"]))
            .await
            .unwrap();
        assert!(matches!(done, Applied::Done { .. }), "{done:?}");
        if let (Some(before), Some(after)) = (at_start, paths(&db)) {
            assert_eq!(after.one_statement, before.one_statement + 1, "{after:?}");
            assert_eq!(after.step_by_step, before.step_by_step);
        }

        let before = fingerprint(&db).await;
        let e = s
            .apply(guarded("pay_2", "c2", "key_gone", ["mch_1", "cus_1"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, MovementError::ApiKeyRevoked { key_id } if key_id == "key_gone"),
            "{e:?}"
        );
        let e = s
            .apply(guarded("pay_3", "c3", "key_unknown", ["mch_1", "cus_1"]))
            .await
            .unwrap_err();
        assert!(matches!(e, MovementError::ApiKeyRevoked { .. }), "{e:?}");
        let e = s
            .apply(guarded("pay_4", "c4", "key_live", ["mch_1", "cus_bad"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, MovementError::PartyBlocked { subject_id } if subject_id == "cus_bad"),
            "{e:?}"
        );
        let e = s
            .apply(guarded("pay_5", "c5", "key_live", ["mch_bad", "cus_1"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, MovementError::PartyBlocked { subject_id } if subject_id == "mch_bad"),
            "{e:?}"
        );
        assert_eq!(
            fingerprint(&db).await,
            before,
            "a refused movement wrote something"
        );

        // Lifted (one of two blocks on cus_bad is not enough): paid again.
        assert!(
            s.lift_block("blk_1", t(3), audit("block.lifted", "blk_1"))
                .await
                .unwrap()
        );
        let e = s
            .apply(guarded("pay_6", "c6", "key_live", ["mch_1", "cus_bad"]))
            .await
            .unwrap_err();
        assert!(matches!(e, MovementError::PartyBlocked { .. }), "{e:?}");
        assert!(
            s.lift_block("blk_2", t(3), audit("block.lifted", "blk_2"))
                .await
                .unwrap()
        );
        assert_eq!(
            s.blocked_subjects(10).await.unwrap(),
            vec!["mch_bad".to_string()]
        );
        s.apply(guarded("pay_7", "c7", "key_live", ["mch_1", "cus_bad"]))
            .await
            .unwrap();
        assert_eq!(balance(s, &wallet(0)).await, 4_800);
        assert_sound(s).await;
    }
);
