//! A merchant's fee: what a payment costs it, and what a refund gives back.
//!
//! The rounding rule. A fee is the rate (in basis points) of the amount,
//! rounded to the fen half up (0.5 fen and more up, less down), as the big
//! wallets round their fees. A fee is never more than the amount it is
//! charged on (a minimum fee above a tiny payment takes the whole payment,
//! not more).
//!
//! A refund returns the fee in proportion, worked out so that rounding never
//! adds up: after any sequence of refunds, the fee the merchant has paid is
//! exactly the fee of the net amount left (`kept(net)`), and each refund
//! returns the difference between the fee kept before it and after it.
//! Summing per-refund roundings instead would drift by up to half a fen a
//! refund. So the fee kept is never negative, never goes up with a refund,
//! is zero when everything was refunded, and (without a minimum fee) is
//! within half a fen of the exact rate on the net amount.
//!
//! A minimum fee applies while anything of the payment is kept; it does not
//! survive a full refund.

use crate::Money;

/// Basis points in one whole.
const BPS: i128 = 10_000;

/// A merchant's fee schedule. Read back from storage through
/// [`FeeSchedule::new`], so a stored schedule is as valid as a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawSchedule")]
pub struct FeeSchedule {
    /// The rate, in basis points of the amount (38 = 0.38%).
    pub rate_bps: u32,
    /// The least a payment costs, in minor units (0 for none).
    pub min_fee_minor: i64,
}

#[derive(serde::Deserialize)]
struct RawSchedule {
    rate_bps: u32,
    min_fee_minor: i64,
}

impl TryFrom<RawSchedule> for FeeSchedule {
    type Error = FeeError;
    fn try_from(r: RawSchedule) -> Result<FeeSchedule, FeeError> {
        FeeSchedule::new(r.rate_bps, r.min_fee_minor)
    }
}

/// Why a fee schedule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeError {
    #[error("a fee rate is 0 to 10000 basis points (100%), not {0}")]
    Rate(u32),
    #[error("a minimum fee is 0 or more minor units, not {0}")]
    Minimum(i64),
}

impl FeeSchedule {
    pub fn new(rate_bps: u32, min_fee_minor: i64) -> Result<FeeSchedule, FeeError> {
        if i128::from(rate_bps) > BPS {
            return Err(FeeError::Rate(rate_bps));
        }
        if min_fee_minor < 0 {
            return Err(FeeError::Minimum(min_fee_minor));
        }
        Ok(FeeSchedule {
            rate_bps,
            min_fee_minor,
        })
    }

    /// No fee at all.
    pub const NONE: FeeSchedule = FeeSchedule {
        rate_bps: 0,
        min_fee_minor: 0,
    };

    /// The fee of a payment of `amount`.
    pub fn charge(&self, amount: Money) -> Money {
        Money::from_minor(self.kept_minor(amount.minor()), amount.currency())
    }

    /// The fee a refund gives back: the fee kept on the net amount before
    /// it (`net_before`) less the fee kept on the net amount after it.
    /// `net_before` is the payment's amount less what was refunded before;
    /// a refund larger than that returns the whole fee kept.
    pub fn refunded(&self, net_before: Money, refund: Money) -> Money {
        let before = net_before.minor().max(0);
        let after = before.saturating_sub(refund.minor().max(0)).max(0);
        Money::from_minor(
            self.kept_minor(before) - self.kept_minor(after),
            net_before.currency(),
        )
    }

    /// The fee kept on a net amount of `net` minor units: the rate of it,
    /// rounded half up, at least the minimum while `net` is positive, and
    /// never more than `net`.
    fn kept_minor(&self, net: i64) -> i64 {
        if net <= 0 {
            return 0;
        }
        let exact = i128::from(net) * i128::from(self.rate_bps);
        let rounded = (exact + BPS / 2) / BPS;
        // rounded <= net since rate <= 100%; the conversion cannot fail.
        let rounded = i64::try_from(rounded).unwrap_or(net);
        rounded.max(self.min_fee_minor).min(net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;
    use proptest::prelude::*;

    fn cny(minor: i64) -> Money {
        Money::from_minor(minor, Currency::CNY)
    }

    #[test]
    fn rounds_half_up_to_the_fen() {
        let s = FeeSchedule::new(38, 0).unwrap();
        // 0.38% of 1.31 is 0.4978 fen: 0; of 1.32 it is 0.5016 fen: 1.
        assert_eq!(s.charge(cny(131)).minor(), 0);
        assert_eq!(s.charge(cny(132)).minor(), 1);
        // 0.6% of 100.00 is exactly 60 fen.
        assert_eq!(
            FeeSchedule::new(60, 0).unwrap().charge(cny(10_000)).minor(),
            60
        );
        // Exactly half a fen goes up: 0.5% of 1.00 is 0.5 fen.
        assert_eq!(FeeSchedule::new(50, 0).unwrap().charge(cny(100)).minor(), 1);
    }

    #[test]
    fn a_minimum_fee_never_takes_more_than_the_payment() {
        let s = FeeSchedule::new(38, 10).unwrap();
        assert_eq!(s.charge(cny(5)).minor(), 5);
        assert_eq!(s.charge(cny(100)).minor(), 10);
        // It applies while something is kept, not after a full refund.
        assert_eq!(s.refunded(cny(100), cny(60)).minor(), 0);
        assert_eq!(s.refunded(cny(40), cny(40)).minor(), 10);
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert_eq!(FeeSchedule::new(10_001, 0), Err(FeeError::Rate(10_001)));
        assert_eq!(FeeSchedule::new(38, -1), Err(FeeError::Minimum(-1)));
        // Also when read back.
        let bad = serde_json::json!({"rate_bps": 20_000, "min_fee_minor": 0});
        assert!(serde_json::from_value::<FeeSchedule>(bad).is_err());
        let good = FeeSchedule::new(38, 5).unwrap();
        let text = serde_json::to_value(good).unwrap();
        assert_eq!(serde_json::from_value::<FeeSchedule>(text).unwrap(), good);
    }

    proptest! {
        /// Over any payment and any partial refunds: the fee kept is never
        /// negative and never rises, no refund returns a negative fee, all
        /// of it comes back with a full refund, and (no minimum) it stays
        /// within one fen of the rate on the net amount after every
        /// movement.
        #[test]
        fn the_fee_follows_the_net_amount(
            rate in 0_u32..=10_000,
            amount in 1_i64..=100_000_000,
            refunds in proptest::collection::vec(1_i64..=50_000_000, 0..12),
        ) {
            let s = FeeSchedule::new(rate, 0).unwrap();
            let charged = s.charge(cny(amount)).minor();
            prop_assert!(charged >= 0 && charged <= amount);
            let mut kept = charged;
            let mut net = amount;
            for r in refunds {
                let r = r.min(net);
                if r == 0 {
                    break;
                }
                let back = s.refunded(cny(net), cny(r)).minor();
                prop_assert!(back >= 0, "a refund took a fee");
                kept -= back;
                net -= r;
                prop_assert!(kept >= 0);
                // |kept - net * rate| <= 1 fen, in basis-point units.
                let exact = i128::from(net) * i128::from(rate);
                prop_assert!((i128::from(kept) * BPS - exact).abs() <= BPS);
            }
            let back = s.refunded(cny(net), cny(net)).minor();
            prop_assert_eq!(kept - back, 0, "a full refund returns all of the fee");
        }

        /// With a minimum fee too: never negative, never more than the net
        /// amount, never rising with a refund.
        #[test]
        fn a_minimum_fee_keeps_the_fee_sane(
            rate in 0_u32..=10_000,
            min in 0_i64..=10_000,
            amount in 1_i64..=10_000_000,
            refunds in proptest::collection::vec(1_i64..=5_000_000, 0..12),
        ) {
            let s = FeeSchedule::new(rate, min).unwrap();
            let mut kept = s.charge(cny(amount)).minor();
            let mut net = amount;
            for r in refunds {
                let r = r.min(net);
                if r == 0 {
                    break;
                }
                let back = s.refunded(cny(net), cny(r)).minor();
                prop_assert!(back >= 0);
                kept -= back;
                net -= r;
                prop_assert!(kept >= 0 && kept <= net);
            }
        }
    }
}
