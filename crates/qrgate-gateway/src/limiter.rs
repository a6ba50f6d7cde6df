//! Rate limits (QG-RATE-*): fixed one-minute windows per key, counted on
//! this node by the gateway's clock. A refusal is 429 with `Retry-After`
//! (the seconds left in the window) and the rule. With several nodes each
//! counts its own requests, so a client spread over n nodes gets up to n
//! times the allowance; the limits are brute-force brakes, and the money
//! rules never depend on them.

use std::collections::HashMap;
use std::sync::Mutex;

use qrgate_core::Timestamp;

use crate::{Error, Kind};

/// Most keys tracked in one bucket; past it, windows that ended are
/// dropped, and while it is still full a new key is not tracked this
/// minute (a flood of new keys cannot grow memory without bound, and never
/// wipes the counts of the keys already braked).
const MAX_KEYS: usize = 100_000;
const WINDOW_MS: i64 = 60_000;

/// Per bucket: key → (window, count).
type Windows = Mutex<HashMap<String, (i64, i64)>>;

#[derive(Default)]
pub(crate) struct RateLimits {
    buckets: [Windows; 4],
}

/// Which allowance a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucket {
    /// Payment codes issued, per consumer API key.
    CodeIssue,
    /// Charges of numeric codes the gateway does not know, per merchant key.
    UnknownCode,
    /// PIN and one-time-password attempts, per customer.
    Pin,
    /// Public endpoints and failed authentications, per client address.
    Public,
}

impl Bucket {
    fn index(self) -> usize {
        match self {
            Bucket::CodeIssue => 0,
            Bucket::UnknownCode => 1,
            Bucket::Pin => 2,
            Bucket::Public => 3,
        }
    }

    pub(crate) fn rule(self) -> &'static str {
        match self {
            Bucket::CodeIssue => "QG-RATE-CODE-ISSUE",
            Bucket::UnknownCode => "QG-RATE-UNKNOWN-CODE",
            Bucket::Pin => "QG-RATE-PIN",
            Bucket::Public => "QG-RATE-PUBLIC",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Bucket::CodeIssue => "payment codes issued",
            Bucket::UnknownCode => "charges of unknown payment codes",
            Bucket::Pin => "PIN and one-time-password attempts",
            Bucket::Public => "requests from this address",
        }
    }
}

impl RateLimits {
    /// Take one from `key`'s allowance of `per_minute` in `bucket` (when
    /// `take`), or only check that one is left.
    pub(crate) fn draw(
        &self,
        bucket: Bucket,
        key: &str,
        per_minute: i64,
        now: Timestamp,
        take: bool,
    ) -> Result<(), Error> {
        let window = now.unix_millis().div_euclid(WINDOW_MS);
        let mut m = match self.buckets[bucket.index()].lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        // A check writes nothing: only what is taken is remembered.
        let used = match m.get(key) {
            Some((w, n)) if *w == window => *n,
            _ => 0,
        };
        if used >= per_minute {
            let left_ms = (window + 1) * WINDOW_MS - now.unix_millis();
            let retry_after_seconds = u64::try_from((left_ms + 999) / 1000).unwrap_or(1).max(1);
            return Err(Error::new(
                Kind::TooManyRequests {
                    retry_after_seconds,
                },
                "rate_limited",
                format!(
                    "too many {} (at most {per_minute} a minute); retry after {retry_after_seconds} s",
                    bucket.what()
                ),
            )
            .with_rule(bucket.rule()));
        }
        if take {
            if m.len() >= MAX_KEYS && !m.contains_key(key) {
                m.retain(|_, (w, _)| *w == window);
                if m.len() >= MAX_KEYS {
                    tracing::warn!(
                        rule = bucket.rule(),
                        "rate-limit table full this minute: a new key is not counted"
                    );
                    return Ok(());
                }
            }
            m.insert(key.to_owned(), (window, used + 1));
        }
        Ok(())
    }

    /// Give back one taken from `key`'s allowance this window (a request
    /// that turned out not to be what the bucket counts).
    pub(crate) fn give_back(&self, bucket: Bucket, key: &str, now: Timestamp) {
        let window = now.unix_millis().div_euclid(WINDOW_MS);
        let mut m = match self.buckets[bucket.index()].lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some((w, n)) = m.get_mut(key)
            && *w == window
            && *n > 0
        {
            *n -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_new_keys_never_wipes_a_braked_key() {
        let r = RateLimits::default();
        let now = Timestamp::from_unix_millis(60_000);
        r.draw(Bucket::Public, "1.2.3.4", 1, now, true).unwrap();
        assert!(r.draw(Bucket::Public, "1.2.3.4", 1, now, true).is_err());
        for i in 0..MAX_KEYS + 10 {
            // Past the table's size, new keys are let through uncounted.
            r.draw(Bucket::Public, &format!("k{i}"), 1, now, true)
                .unwrap();
        }
        assert!(
            r.draw(Bucket::Public, "1.2.3.4", 1, now, true).is_err(),
            "the braked address was let go by a flood of others"
        );
        // A minute later the stale windows make room again.
        let later = Timestamp::from_unix_millis(120_000);
        r.draw(Bucket::Public, "new", 1, later, true).unwrap();
        assert!(r.draw(Bucket::Public, "new", 1, later, true).is_err());
    }

    #[test]
    fn a_window_allows_its_number_then_refuses_until_the_next_minute() {
        let r = RateLimits::default();
        let at = |ms: i64| Timestamp::from_unix_millis(ms);
        for _ in 0..3 {
            r.draw(Bucket::Pin, "cus_1", 3, at(60_000), true).unwrap();
        }
        let e = r
            .draw(Bucket::Pin, "cus_1", 3, at(60_500), true)
            .unwrap_err();
        assert_eq!(
            (e.kind, e.code, e.rule.as_deref()),
            (
                Kind::TooManyRequests {
                    retry_after_seconds: 60
                },
                "rate_limited",
                Some("QG-RATE-PIN")
            )
        );
        // Another key, and another bucket, have their own allowance.
        r.draw(Bucket::Pin, "cus_2", 3, at(60_500), true).unwrap();
        r.draw(Bucket::CodeIssue, "cus_1", 3, at(60_500), true)
            .unwrap();
        // A check takes nothing.
        for _ in 0..5 {
            r.draw(Bucket::UnknownCode, "k", 1, at(61_000), false)
                .unwrap();
        }
        // The next minute starts afresh.
        r.draw(Bucket::Pin, "cus_1", 3, at(120_000), true).unwrap();
        let e = r
            .draw(Bucket::Pin, "cus_1", 1, at(179_999), true)
            .unwrap_err();
        assert_eq!(
            e.kind,
            Kind::TooManyRequests {
                retry_after_seconds: 1
            }
        );
    }
}
