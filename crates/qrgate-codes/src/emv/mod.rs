//! EMV® QR Code Specification for Payment Systems, merchant-presented mode.

pub mod build;
pub mod crc;
pub mod parse;
pub mod profile;

pub use build::{BuildError, Encoder, LanguageTemplate, MpmPayload, PointOfInitiation, Template};
pub use crc::{crc_hex, crc16_ccitt_false};
pub use parse::{EmvError, EmvErrorKind, Field, Payload, Tag, parse};
pub use profile::{Finding, check_emvco};
