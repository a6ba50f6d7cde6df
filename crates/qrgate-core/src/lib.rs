//! qrgate-core: the pure domain of the gateway.
//!
//! Nothing in here does I/O. Money is integer minor units with an ISO 4217
//! currency; time comes from a [`Clock`]; identifiers are typed and prefixed.

pub mod account;
pub mod clock;
pub mod complaint;
pub mod counter;
pub mod currency;
pub mod day;
pub mod evidence;
pub mod fee;
pub mod id;
pub mod json;
pub mod metadata;
pub mod money;
pub mod net;
pub mod payment;
pub mod risk;
pub mod rules;
pub mod seal;
pub mod state;

pub use account::AccountId;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use counter::CounterKey;
pub use currency::{Currency, UnknownCurrency};
pub use id::IdError;
pub use metadata::Metadata;
pub use money::{AmountError, Money, MoneyError};
pub use risk::{Element, ElementClass, RiskLevel};
