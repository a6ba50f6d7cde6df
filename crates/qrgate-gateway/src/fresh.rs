//! Two reads of every payment kept in memory for a moment: the caller's
//! API key and the block list. Unlike the rows of [`crate::rows`] these
//! change (a key is revoked, a party blocked or let go), so a copy is
//! trusted for [`FRESH_MS`] at most and dropped at once when this gateway
//! makes the change itself. A copy can be wrong only for a change another
//! gateway made within that moment, and even then it cannot move money:
//! a payment's movement checks the key and the block list again with its
//! writes ([`Movement::live_api_key`], [`Movement::unblocked`]), so the
//! refusal then comes from the store instead of from here.
//!
//! Nothing absent is remembered: an unknown or revoked key is looked up
//! every time. A read that started before an invalidation is not kept
//! (each invalidation bumps a generation number the read must still see).
//!
//! [`Movement::live_api_key`]: qrgate_store::Movement::live_api_key
//! [`Movement::unblocked`]: qrgate_store::Movement::unblocked

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use qrgate_core::Timestamp;

/// How long a copy is trusted, in milliseconds.
pub(crate) const FRESH_MS: i64 = 1_000;

/// Most keys kept (about 200 bytes each); the map is emptied when full.
const MAX_KEYS: usize = 10_000;

/// Most blocked parties kept as a list; with more, every payment asks the
/// store about its own two parties.
pub(crate) const MAX_BLOCKED: i64 = 10_000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// What a cached key says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedKey {
    pub key_id: String,
    pub role: String,
    pub subject_id: Option<String>,
}

#[derive(Default)]
struct KeyMap {
    generation: u64,
    /// By key hash: the key and when it was read.
    keys: HashMap<String, (CachedKey, Timestamp)>,
}

/// Unrevoked API keys by the hash of their secret.
#[derive(Default)]
pub(crate) struct Keys(Mutex<KeyMap>);

impl Keys {
    /// The key, if it was read less than [`FRESH_MS`] before `now`.
    pub fn get(&self, hash: &str, now: Timestamp) -> Option<CachedKey> {
        let g = lock(&self.0);
        let (k, read_at) = g.keys.get(hash)?;
        fresh(*read_at, now).then(|| k.clone())
    }

    /// The generation to pass to [`put`](Self::put) with a read that starts now.
    pub fn generation(&self) -> u64 {
        lock(&self.0).generation
    }

    /// Keep an unrevoked key read at `read_at`, unless an invalidation came since.
    pub fn put(&self, hash: &str, key: CachedKey, read_at: Timestamp, generation: u64) {
        let mut g = lock(&self.0);
        if g.generation != generation {
            return;
        }
        if g.keys.len() >= MAX_KEYS {
            g.keys.clear();
        }
        g.keys.insert(hash.to_owned(), (key, read_at));
    }

    /// Forget every key (one was revoked here).
    pub fn invalidate(&self) {
        let mut g = lock(&self.0);
        g.generation += 1;
        g.keys.clear();
    }
}

/// What a read of the block list found.
enum Listing {
    /// The blocked parties.
    Parties(HashSet<String>),
    /// More than [`MAX_BLOCKED`] parties (none kept).
    TooMany,
}

#[derive(Default)]
struct BlockList {
    generation: u64,
    /// The last read and when it was made; `None` until read or after an
    /// invalidation.
    read: Option<(Listing, Timestamp)>,
}

/// The parties with a block in force.
#[derive(Default)]
pub(crate) struct Blocks(Mutex<BlockList>);

/// What the block list says about a pair of parties.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The first of them that is blocked.
    Blocked(String),
    Clear,
    /// The list was read lately but is too long to keep: ask the store
    /// about these two.
    TooMany,
    /// No fresh list: read it.
    Unknown,
}

impl Blocks {
    pub fn check(&self, parties: [&str; 2], now: Timestamp) -> Verdict {
        let g = lock(&self.0);
        match &g.read {
            Some((listing, read_at)) if fresh(*read_at, now) => match listing {
                Listing::TooMany => Verdict::TooMany,
                Listing::Parties(set) => parties
                    .into_iter()
                    .find(|p| set.contains(*p))
                    .map_or(Verdict::Clear, |p| Verdict::Blocked(p.to_owned())),
            },
            _ => Verdict::Unknown,
        }
    }

    pub fn generation(&self) -> u64 {
        lock(&self.0).generation
    }

    /// Keep the list read at `read_at` (more than [`MAX_BLOCKED`] parties
    /// are not kept, only that there were too many), unless an invalidation
    /// came since.
    pub fn put(&self, subjects: Vec<String>, read_at: Timestamp, generation: u64) {
        let mut g = lock(&self.0);
        if g.generation != generation {
            return;
        }
        let listing = if subjects.len() as i64 > MAX_BLOCKED {
            Listing::TooMany
        } else {
            Listing::Parties(subjects.into_iter().collect())
        };
        g.read = Some((listing, read_at));
    }

    /// Forget the list (a block was made or lifted here).
    pub fn invalidate(&self) {
        let mut g = lock(&self.0);
        g.generation += 1;
        g.read = None;
    }
}

fn fresh(read_at: Timestamp, now: Timestamp) -> bool {
    let age = now.unix_millis() - read_at.unix_millis();
    (0..FRESH_MS).contains(&age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
    }

    fn key(id: &str) -> CachedKey {
        CachedKey {
            key_id: id.into(),
            role: "merchant".into(),
            subject_id: Some("mch_1".into()),
        }
    }

    #[test]
    fn a_key_is_trusted_for_fresh_ms_only() {
        let keys = Keys::default();
        keys.put("h", key("k1"), at(10_000), keys.generation());
        assert_eq!(keys.get("h", at(10_000)), Some(key("k1")));
        assert_eq!(keys.get("h", at(10_000 + FRESH_MS - 1)), Some(key("k1")));
        assert_eq!(keys.get("h", at(10_000 + FRESH_MS)), None);
        // A clock that went back does not make an old copy young.
        assert_eq!(keys.get("h", at(9_999)), None);
        assert_eq!(keys.get("other", at(10_000)), None);
    }

    #[test]
    fn a_read_from_before_an_invalidation_is_not_kept() {
        let keys = Keys::default();
        keys.put("h", key("k1"), at(0), keys.generation());
        let before = keys.generation();
        keys.invalidate();
        assert_eq!(keys.get("h", at(1)), None, "invalidation forgets");
        keys.put("h", key("k1"), at(1), before);
        assert_eq!(keys.get("h", at(2)), None, "stale read was kept");
        keys.put("h", key("k1"), at(1), keys.generation());
        assert_eq!(keys.get("h", at(2)), Some(key("k1")));
    }

    #[test]
    fn the_block_list_answers_while_fresh() {
        let blocks = Blocks::default();
        assert_eq!(blocks.check(["mch_1", "cus_1"], at(0)), Verdict::Unknown);
        blocks.put(vec!["cus_1".into()], at(0), blocks.generation());
        assert_eq!(
            blocks.check(["mch_1", "cus_1"], at(5)),
            Verdict::Blocked("cus_1".into())
        );
        assert_eq!(blocks.check(["mch_1", "cus_2"], at(5)), Verdict::Clear);
        assert_eq!(
            blocks.check(["mch_1", "cus_2"], at(FRESH_MS)),
            Verdict::Unknown
        );
        let g = blocks.generation();
        blocks.invalidate();
        assert_eq!(blocks.check(["mch_1", "cus_2"], at(5)), Verdict::Unknown);
        blocks.put(vec![], at(5), g);
        assert_eq!(blocks.check(["mch_1", "cus_2"], at(6)), Verdict::Unknown);
    }

    #[test]
    fn a_long_block_list_is_not_kept() {
        let blocks = Blocks::default();
        let many = (0..=MAX_BLOCKED).map(|i| format!("cus_{i}")).collect();
        blocks.put(many, at(0), blocks.generation());
        assert_eq!(blocks.check(["mch_1", "cus_x"], at(1)), Verdict::TooMany);
        assert_eq!(
            blocks.check(["mch_1", "cus_x"], at(FRESH_MS)),
            Verdict::Unknown,
            "read again after a while: it may have shrunk"
        );
    }
}
