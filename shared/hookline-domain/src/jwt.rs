//! The `X-Webhook-Signature` JWT, as LogAlto's receivers verify it: an RS256 JWS whose
//! claims carry the SHA-256 of the exact body bytes, and the JWKS they verify it against.
//!
//! Assembly is pure; the RSA operation itself is the [`crate::ports::Signer`]'s, so the
//! private key can stay in KMS.

use crate::ids::AttemptId;
use crate::time::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where receivers fetch the public keys, relative to the API's base URL.
pub const JWKS_PATH: &str = "/jwks/webhooks";
/// How long a signature is valid after it was made, in seconds.
pub const TOKEN_LIFETIME_SECS: i64 = 300;

/// A public RSA key as a JWK (RFC 7517), with its RFC 7638 thumbprint as `kid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `RSA`.
    pub kty: String,
    /// RFC 7638 thumbprint of the key.
    pub kid: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Always `RS256`.
    pub alg: String,
    /// Modulus, base64url without padding.
    pub n: String,
    /// Public exponent, base64url without padding.
    pub e: String,
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len().saturating_sub(1));
    &b[first..]
}

impl Jwk {
    /// The JWK of an RSA public key given as big-endian modulus and exponent bytes.
    pub fn rsa(modulus: &[u8], exponent: &[u8]) -> Self {
        let n = B64.encode(strip_leading_zeros(modulus));
        let e = B64.encode(strip_leading_zeros(exponent));
        // RFC 7638 §3.2: the required members, in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = B64.encode(Sha256::digest(canonical.as_bytes()));
        Jwk { kty: "RSA".into(), kid, use_: "sig".into(), alg: "RS256".into(), n, e }
    }

    /// The JWK of a DER `SubjectPublicKeyInfo` (what KMS `GetPublicKey` returns) or a
    /// DER PKCS#1 `RSAPublicKey`.
    pub fn from_rsa_der(der: &[u8]) -> Result<Self, NotRsaKey> {
        let (n, e) = der::rsa_public_key(der).ok_or(NotRsaKey)?;
        Ok(Self::rsa(n, e))
    }
}

/// A JSON Web Key Set, as served at [`JWKS_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// Current key first, then any previous key still accepted.
    pub keys: Vec<Jwk>,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

/// The claims of a delivery signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Always [`JWKS_PATH`].
    #[serde(rename = "jwks-endpoint")]
    pub jwks_endpoint: String,
    /// Hex SHA-256 of the exact body bytes.
    #[serde(rename = "payload-checksum")]
    pub payload_checksum: String,
    /// Always `sha256`.
    #[serde(rename = "payload-checksum-alg")]
    pub payload_checksum_alg: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires, Unix seconds: `iat` + [`TOKEN_LIFETIME_SECS`].
    pub exp: i64,
    /// The attempt id.
    pub jti: String,
}

impl Claims {
    /// The claims for one attempt's body.
    pub fn for_body(body: &[u8], attempt: &AttemptId, now: Timestamp) -> Self {
        let iat = now.timestamp();
        Claims {
            jwks_endpoint: JWKS_PATH.to_owned(),
            payload_checksum: hex::encode(Sha256::digest(body)),
            payload_checksum_alg: "sha256".to_owned(),
            iat,
            exp: iat + TOKEN_LIFETIME_SECS,
            jti: attempt.to_string(),
        }
    }
}

/// A public key that is not DER-encoded RSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("public key is not DER RSA")]
pub struct NotRsaKey;

/// The JWS signing input (`base64url(header).base64url(claims)`) for a key id.
pub fn signing_input(kid: &str, claims: &Claims) -> Result<String, serde_json::Error> {
    let header = serde_json::to_vec(&Header { alg: "RS256", kid, typ: "JWT" })?;
    let claims = serde_json::to_vec(claims)?;
    Ok(format!("{}.{}", B64.encode(header), B64.encode(claims)))
}

/// The compact JWT: the signing input and the base64url signature over it.
pub fn compact(signing_input: &str, signature: &[u8]) -> String {
    format!("{signing_input}.{}", B64.encode(signature))
}

/// Just enough DER to read an RSA public key: SubjectPublicKeyInfo or PKCS#1.
mod der {
    /// Reads one TLV; returns (tag, content, rest).
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, b) = b.split_first()?;
        let (&first, mut b) = b.split_first()?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || b.len() < n {
                return None;
            }
            let len = b[..n].iter().fold(0usize, |acc, &x| (acc << 8) | x as usize);
            b = &b[n..];
            len
        };
        if b.len() < len {
            return None;
        }
        Some((tag, &b[..len], &b[len..]))
    }

    fn pkcs1(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let (0x30, seq, _) = tlv(b)? else { return None };
        let (0x02, n, rest) = tlv(seq)? else {
            return None;
        };
        let (0x02, e, _) = tlv(rest)? else {
            return None;
        };
        Some((n, e))
    }

    pub fn rsa_public_key(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let (0x30, seq, _) = tlv(b)? else { return None };
        let (tag, first, rest) = tlv(seq)?;
        match tag {
            0x02 => pkcs1(b),
            0x30 => {
                let _ = first; // AlgorithmIdentifier; only RSA keys reach here
                let (0x03, bits, _) = tlv(rest)? else {
                    return None;
                };
                let (&unused, key) = bits.split_first()?;
                if unused != 0 {
                    return None;
                }
                pkcs1(key)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1's key and its thumbprint.
        let n = B64
            .decode("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
            .unwrap();
        let jwk = Jwk::rsa(&n, &[1, 0, 1]);
        assert_eq!(jwk.e, "AQAB");
        assert_eq!(jwk.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn leading_zero_bytes_do_not_change_the_key() {
        assert_eq!(Jwk::rsa(&[0, 0xc1, 2], &[0, 1, 0, 1]), Jwk::rsa(&[0xc1, 2], &[1, 0, 1]));
    }

    #[test]
    fn der_spki_and_pkcs1_give_the_same_jwk() {
        // A tiny hand-made key: n = 0x00c1 02, e = 0x010001.
        let pkcs1 = [0x30, 0x0a, 0x02, 0x03, 0x00, 0xc1, 0x02, 0x02, 0x03, 0x01, 0x00, 0x01];
        let mut spki = vec![0x30, 0x1b, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x03, 0x0d, 0x00];
        spki.extend_from_slice(&pkcs1[..]);
        // Fix the outer lengths for the bytes actually present.
        spki[1] = (spki.len() - 2) as u8;
        spki[16] = (pkcs1.len() + 1) as u8;
        spki[3] = 0x0b;
        let a = Jwk::from_rsa_der(&pkcs1).unwrap();
        let b = Jwk::from_rsa_der(&spki).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.n, B64.encode([0xc1, 0x02]));
        assert!(Jwk::from_rsa_der(&[0x30, 0x80]).is_err());
    }

    #[test]
    fn claims_carry_the_body_checksum_and_a_five_minute_lifetime() {
        let now = crate::time::from_micros(1_795_000_000_000_000);
        let a = AttemptId::generate();
        let c = Claims::for_body(b"{}", &a, now);
        assert_eq!(c.payload_checksum, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert_eq!(c.exp - c.iat, 300);
        assert_eq!(c.jti, a.to_string());
        let input = signing_input("kid1", &c).unwrap();
        let header = B64.decode(input.split('.').next().unwrap()).unwrap();
        assert_eq!(header, br#"{"alg":"RS256","kid":"kid1","typ":"JWT"}"#);
    }
}
