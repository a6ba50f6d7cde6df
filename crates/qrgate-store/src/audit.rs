//! The audit log's hash chain (rule QG-AUDIT-CHAIN): each row holds
//! `SHA-256(previous hash ‖ canonical row bytes)`, hex encoded; the first
//! row's previous hash is 32 zero bytes.

use ring::digest::{SHA256, digest};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Canonical bytes of a row: the JSON array `[seq, at, action, subject, details]`
/// where `details` is the exact stored text.
pub fn canonical(seq: i64, at_ms: i64, action: &str, subject: &str, details: &str) -> Vec<u8> {
    serde_json::to_vec(&(seq, at_ms, action, subject, details)).unwrap_or_default()
}

pub fn chain_hash(prev_hex: &str, canonical: &[u8]) -> Option<String> {
    let prev = decode_hex32(prev_hex)?;
    let mut buf = Vec::with_capacity(32 + canonical.len());
    buf.extend_from_slice(&prev);
    buf.extend_from_slice(canonical);
    Some(hex(digest(&SHA256, &buf).as_ref()))
}

pub fn hex(b: &[u8]) -> String {
    ::hex::encode(b)
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0_u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// SHA-256 of arbitrary bytes, hex (used for idempotency request hashes).
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest(&SHA256, data).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_is_deterministic_and_linked() {
        let c1 = canonical(1, 1000, "payment.succeeded", "pay_x", "{\"a\":1}");
        let h1 = chain_hash(GENESIS, &c1).unwrap();
        assert_eq!(h1.len(), 64);
        assert_eq!(chain_hash(GENESIS, &c1).unwrap(), h1);
        let c2 = canonical(2, 1000, "payment.succeeded", "pay_x", "{\"a\":1}");
        assert_ne!(
            chain_hash(&h1, &c2).unwrap(),
            chain_hash(GENESIS, &c2).unwrap()
        );
        assert!(chain_hash("zz", &c1).is_none());
        // Field boundaries are unambiguous.
        assert_ne!(
            canonical(1, 1, "a\",\"b", "c", "{}"),
            canonical(1, 1, "a", "b\",\"c", "{}")
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
