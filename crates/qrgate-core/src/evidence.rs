//! Signed evidence: a JSON document signed with Ed25519 over its canonical
//! form (compact JSON with sorted keys), the signature carried in the
//! document's own `signature` field. The conformance suite signs its
//! reports this way; an auditor verifies one with the public key alone
//! (the suite's `verify`, or the gateway's auditor page). A change of any
//! byte of the file fails.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

/// Canonical bytes: compact JSON with sorted keys (serde_json keeps object
/// keys sorted).
pub fn canonical(v: &Value) -> String {
    v.to_string()
}

/// `v` in canonical form with its `signature` added, made with `key`.
pub fn sign(mut v: Value, key: &Ed25519KeyPair) -> String {
    let sig = key.sign(canonical(&v).as_bytes());
    v["signature"] = json!({
        "alg": "Ed25519",
        "public_key": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
        "value": URL_SAFE_NO_PAD.encode(sig.as_ref()),
        "covers": "the document without this field, as compact JSON with sorted keys",
    });
    canonical(&v)
}

/// Check a signed file against a public key (base64url, as `keygen`
/// writes it); the document without its signature when it verifies.
pub fn verify(file: &str, public_key_b64: &str) -> Result<Value, String> {
    let file = file.strip_suffix('\n').unwrap_or(file);
    let mut v: Value = serde_json::from_str(file).map_err(|e| format!("not JSON: {e}"))?;
    if canonical(&v) != file {
        return Err("the file is not in its signed (canonical) form: it was changed".into());
    }
    let sig = v
        .as_object_mut()
        .and_then(|o| o.remove("signature"))
        .ok_or("the report is not signed")?;
    let embedded = sig["public_key"].as_str().unwrap_or_default();
    if embedded != public_key_b64.trim() {
        return Err("the report was signed with another key".into());
    }
    let pk = URL_SAFE_NO_PAD
        .decode(public_key_b64.trim())
        .map_err(|_| "the public key is not base64url")?;
    let value = URL_SAFE_NO_PAD
        .decode(sig["value"].as_str().unwrap_or_default())
        .map_err(|_| "the signature is not base64url")?;
    UnparsedPublicKey::new(&ED25519, pk)
        .verify(canonical(&v).as_bytes(), &value)
        .map_err(|_| "the signature does not match the report: it was changed".to_owned())?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    #[test]
    fn a_signed_document_verifies_and_any_change_fails() {
        let k = key();
        let public = URL_SAFE_NO_PAD.encode(k.public_key().as_ref());
        let file = sign(
            json!({ "summary": { "pass": 3, "fail": 0 }, "cases": ["a"] }),
            &k,
        );
        let doc = verify(&file, &public).unwrap();
        assert_eq!(doc["summary"]["pass"], 3);
        assert!(doc.get("signature").is_none());
        // Any byte changed, the key swapped, the signature gone: refused.
        let changed = file.replace("\"pass\":3", "\"pass\":4");
        assert!(verify(&changed, &public).unwrap_err().contains("changed"));
        let other = URL_SAFE_NO_PAD.encode(key().public_key().as_ref());
        assert!(verify(&file, &other).unwrap_err().contains("another key"));
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(&file).unwrap()).unwrap();
        assert!(verify(&pretty, &public).unwrap_err().contains("canonical"));
        assert!(
            verify("{\"a\":1}", &public)
                .unwrap_err()
                .contains("not signed")
        );
        assert!(verify("nope", &public).unwrap_err().contains("not JSON"));
    }
}
