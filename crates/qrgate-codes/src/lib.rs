//! qrgate-codes: every format qrgate reads or writes on a QR code or barcode.
//!
//! - [`emv`]: EMV MPM payloads (parse any scheme's, build our own, CRC, strict profile);
//! - [`keyring`]: Ed25519 keys with key ids, one active signer;
//! - [`merchant`]: our signed static and dynamic merchant codes;
//! - [`cpm`]: consumer payment codes: signed QR token and 18-digit numeric form;
//! - [`handle`]: sealed device handles, so device-signed codes cannot be linked;
//! - [`image`]: render PNG/SVG and scan photos.
//!
//! Byte-level formats are documented in `spec/formats.md`.

pub mod cpm;
pub mod emv;
pub mod handle;
pub mod image;
pub mod keyring;
pub mod merchant;
pub mod numeric;
pub mod otp;
