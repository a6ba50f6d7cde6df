//! A business day: the calendar date in the zone the limits are counted
//! in (Asia/Shanghai, UTC+8, by default), from its first millisecond to
//! the first of the next. Settlements and statements are per business day.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Month};

use crate::Timestamp;

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BusinessDay(Date);

/// Why a text is not a business day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a date is YYYY-MM-DD (e.g. 2026-11-25), not {0:?}")]
pub struct DayError(pub String);

const MS_PER_DAY: i64 = 86_400_000;

impl BusinessDay {
    /// Parse `YYYY-MM-DD` exactly (a real date, four-digit year).
    pub fn parse(s: &str) -> Result<BusinessDay, DayError> {
        let bad = || DayError(s.chars().take(40).collect());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u16, DayError> {
            let part = s.get(r).ok_or_else(bad)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let month = Month::try_from(u8::try_from(m).map_err(|_| bad())?).map_err(|_| bad())?;
        let day = u8::try_from(d).map_err(|_| bad())?;
        Date::from_calendar_date(i32::from(y), month, day)
            .map(BusinessDay)
            .map_err(|_| bad())
    }

    /// The business day `at` falls in, in a zone `offset_minutes` east of UTC.
    pub fn of(at: Timestamp, offset_minutes: i32) -> BusinessDay {
        let local = at.unix_millis() + i64::from(offset_minutes) * 60_000;
        let days = local.div_euclid(MS_PER_DAY);
        // Day 0 is 1970-01-01 (Julian day 2440588); out-of-range days are
        // far outside any timestamp the gateway makes.
        let julian = i32::try_from(days + 2_440_588).unwrap_or(i32::MAX);
        BusinessDay(Date::from_julian_day(julian).unwrap_or(Date::MAX))
    }

    /// Its first millisecond.
    pub fn starts_at(self, offset_minutes: i32) -> Timestamp {
        let days = i64::from(self.0.to_julian_day()) - 2_440_588;
        Timestamp::from_unix_millis(days * MS_PER_DAY - i64::from(offset_minutes) * 60_000)
    }

    /// The first millisecond of the next day.
    pub fn ends_at(self, offset_minutes: i32) -> Timestamp {
        Timestamp::from_unix_millis(self.starts_at(offset_minutes).unix_millis() + MS_PER_DAY)
    }

    /// Days from `self` to `later` (negative when `later` is earlier).
    pub fn days_until(self, later: BusinessDay) -> i64 {
        i64::from(later.0.to_julian_day()) - i64::from(self.0.to_julian_day())
    }

    /// The day before.
    pub fn previous(self) -> BusinessDay {
        BusinessDay(self.0.previous_day().unwrap_or(self.0))
    }
}

impl fmt::Display for BusinessDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }
}

impl TryFrom<String> for BusinessDay {
    type Error = DayError;
    fn try_from(s: String) -> Result<BusinessDay, DayError> {
        BusinessDay::parse(&s)
    }
}

impl From<BusinessDay> for String {
    fn from(d: BusinessDay) -> String {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHANGHAI: i32 = 480;

    #[test]
    fn a_shanghai_day_runs_from_16_00_utc_to_16_00_utc() {
        let d = BusinessDay::parse("2026-11-25").unwrap();
        assert_eq!(d.to_string(), "2026-11-25");
        assert_eq!(d.starts_at(SHANGHAI).to_rfc3339(), "2026-11-24T16:00:00Z");
        assert_eq!(d.ends_at(SHANGHAI).to_rfc3339(), "2026-11-25T16:00:00Z");
        let last = Timestamp::from_unix_millis(d.ends_at(SHANGHAI).unix_millis() - 1);
        assert_eq!(BusinessDay::of(last, SHANGHAI), d);
        assert_eq!(BusinessDay::of(d.ends_at(SHANGHAI), SHANGHAI).previous(), d);
        assert_eq!(d.days_until(BusinessDay::parse("2027-11-25").unwrap()), 365);
        assert_eq!(d.days_until(d.previous()), -1);
        assert_eq!(
            BusinessDay::parse("2027-01-01")
                .unwrap()
                .previous()
                .to_string(),
            "2026-12-31"
        );
    }

    #[test]
    fn only_real_dates_parse() {
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "26-11-25",
            "2026/11/25",
            "+026-11-25",
            "2026-11-2x",
            "",
        ] {
            assert!(BusinessDay::parse(bad).is_err(), "{bad}");
        }
        assert!(BusinessDay::parse("2028-02-29").is_ok());
    }

    proptest! {
        /// Every instant falls in exactly one day, which agrees with
        /// `Timestamp::business_date`, and the days tile time.
        #[test]
        fn days_tile_time(ms in 0_i64..4_102_444_800_000, offset in -840_i32..=840) {
            let at = Timestamp::from_unix_millis(ms);
            let d = BusinessDay::of(at, offset);
            prop_assert_eq!(d.to_string(), at.business_date(offset));
            prop_assert!(d.starts_at(offset) <= at && at < d.ends_at(offset));
            prop_assert_eq!(BusinessDay::parse(&d.to_string()).unwrap(), d);
        }
    }
}
