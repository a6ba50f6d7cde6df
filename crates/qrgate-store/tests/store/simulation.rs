//! A seeded model of random movements, checked against the store step by step.

use super::*;

// ---------- seeded model simulation ----------

/// xorshift64*: small, seeded, reproducible.
pub(super) struct Rng(pub(super) u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Model {
    balances: BTreeMap<String, i64>,
    daily: BTreeMap<String, i64>,
    used: BTreeSet<String>,
    payments: BTreeMap<String, (String, i64, i64)>, // id -> (wallet, amount, refunded)
    /// Refund numbers used: unique per merchant (the model has one).
    refund_nos: BTreeSet<String>,
    idem: BTreeMap<String, String>, // key -> request hash
}

async fn simulate(db: Db, seed: u64, steps: usize) {
    let s = &db.store;
    let wallets = 3;
    accounts(s, wallets).await;
    let mut m = Model::default();
    for id in [CLEARING.to_string(), MERCHANT.to_string()]
        .into_iter()
        .chain((0..wallets).map(wallet))
    {
        m.balances.insert(id, 0);
    }
    let cap = 20_000;
    let mut rng = Rng(seed);
    for step in 0..steps {
        let w = wallet(rng.below(wallets as u64) as usize);
        let before = fingerprint(&db).await;
        let (movement, expect_ok): (Movement, bool) = match rng.below(5) {
            0 => {
                let amt = 1 + rng.below(8_000) as i64;
                *m.balances.get_mut(&w).unwrap() += amt;
                *m.balances.get_mut(CLEARING).unwrap() -= amt;
                (topup(&format!("s{step}"), &w, amt), true)
            }
            1 | 2 => {
                // A payment, sometimes reusing a code, sometimes over cap or balance.
                let code = if rng.below(6) == 0 && !m.used.is_empty() {
                    m.used.iter().next().unwrap().clone()
                } else {
                    format!("c{step}")
                };
                let amt = 1 + rng.below(6_000) as i64;
                let id = format!("pay_{step}");
                let day = m.daily.get(&w).copied().unwrap_or(0);
                let ok = !m.used.contains(&code) && day + amt <= cap && m.balances[&w] >= amt;
                let mut mv = pay(&id, &w, &code, amt, cap);
                // Sometimes with an idempotency key, sometimes replaying an old one.
                if rng.below(3) == 0 {
                    let key = format!("k{}", rng.below(4));
                    let hash = format!("h{step}");
                    mv.idempotency = Some(IdempotencyRecord {
                        scope: "s".into(),
                        key: key.clone(),
                        request_hash: hash.clone(),
                        response_status: 201,
                        response_body: id.clone(),
                    });
                    if m.idem.contains_key(&key) {
                        // Reused with a different request: refused.
                        let r = s.apply(mv).await;
                        assert!(
                            matches!(r, Err(MovementError::IdempotencyKeyReused { .. })),
                            "step {step}: {r:?}"
                        );
                        assert_eq!(fingerprint(&db).await, before, "step {step}");
                        continue;
                    }
                    if ok {
                        m.idem.insert(key, hash);
                    }
                }
                if ok {
                    m.used.insert(code);
                    *m.daily.entry(w.clone()).or_default() += amt;
                    *m.balances.get_mut(&w).unwrap() -= amt;
                    *m.balances.get_mut(MERCHANT).unwrap() += amt;
                    m.payments.insert(id, (w.clone(), amt, 0));
                }
                (mv, ok)
            }
            3 if !m.payments.is_empty() => {
                let idx = rng.below(m.payments.len() as u64) as usize;
                let (pid, (pw, amt, refunded)) = m
                    .payments
                    .iter()
                    .nth(idx)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap();
                let r_amt = 1 + rng.below(amt as u64) as i64;
                let no = format!("r{}", rng.below(3));
                let ok = refunded + r_amt <= amt
                    && !m.refund_nos.contains(&no)
                    && m.balances[MERCHANT] >= r_amt;
                if ok {
                    m.refund_nos.insert(no.clone());
                    m.payments.get_mut(&pid).unwrap().2 += r_amt;
                    *m.balances.get_mut(MERCHANT).unwrap() -= r_amt;
                    *m.balances.get_mut(&pw).unwrap() += r_amt;
                }
                (refund(&pid, &no, &pw, r_amt, (amt, refunded)), ok)
            }
            _ => {
                // A failure injected mid-movement: unbalanced posting after a burn and a counter.
                let mut mv = pay(&format!("pay_bad{step}"), &w, &format!("cb{step}"), 10, cap);
                mv.posting.as_mut().unwrap().entries[1].amount_minor = 11;
                (mv, false)
            }
        };
        let r = s.apply(movement).await;
        assert_eq!(r.is_ok(), expect_ok, "step {step}: {r:?}");
        if !expect_ok {
            assert_eq!(
                fingerprint(&db).await,
                before,
                "refused step {step} changed something"
            );
        }
        for (id, bal) in &m.balances {
            assert_eq!(balance(s, id).await, *bal, "step {step}, account {id}");
        }
        let check = s.ledger_check().await.unwrap();
        assert!(check.is_sound(), "step {step}: {check:?}");
    }
    assert!(matches!(
        s.verify_audit().await.unwrap(),
        AuditVerdict::Intact { .. }
    ));
}

on_both!(seeded_model_simulation, |db: Db| async move {
    simulate(db, 0x5eed_0001, 250).await;
});
