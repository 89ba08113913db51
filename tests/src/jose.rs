//! Verifies delivery signatures the way a receiver would, with the `jsonwebtoken`
//! crate (RustCrypto backend): independent of Hookline's own signing code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Computes the RFC 7638 thumbprint of an RSA JWK from its `n` and `e`.
pub fn thumbprint(jwk: &Value) -> String {
    let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, jwk["e"].as_str().expect("e"), jwk["n"].as_str().expect("n"));
    B64.encode(Sha256::digest(canonical.as_bytes()))
}

/// Verifies `token` over `body` against a JWKS document, as the LogAlto webhook
/// documentation tells receivers to: pick the key by `kid`, check the RS256 signature
/// and expiry, then compare the `payload-checksum` claim with the SHA-256 of the body.
/// Returns the claims.
pub fn verify(token: &str, body: &[u8], jwks: &Value) -> Result<Value, String> {
    let header = decode_header(token).map_err(|e| format!("header: {e}"))?;
    if header.alg != Algorithm::RS256 {
        return Err(format!("alg is {:?}", header.alg));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks["keys"].as_array().ok_or("no keys")?.iter().find(|k| k["kid"] == kid.as_str()).ok_or("kid not in JWKS")?;
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().ok_or("n")?, jwk["e"].as_str().ok_or("e")?).map_err(|e| format!("key: {e}"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat"]);
    validation.leeway = 5;
    let data = decode::<Value>(token, &key, &validation).map_err(|e| format!("signature: {e}"))?;
    let claims = data.claims;
    if claims["payload-checksum-alg"] != "sha256" {
        return Err("checksum alg is not sha256".into());
    }
    let actual = hex::encode(Sha256::digest(body));
    if claims["payload-checksum"] != actual.as_str() {
        return Err(format!("checksum mismatch: claim {} body {actual}", claims["payload-checksum"]));
    }
    Ok(claims)
}
