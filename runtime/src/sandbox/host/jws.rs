//! `crypto.jws-verify`: a JWS in compact serialization checked against a JSON Web Key Set, by
//! the host with `ring`, so a strategy (OpenID Connect: the ID token) ships no RSA of its own.
//!
//! Only asymmetric algorithms, each tied to its key type: RS256 (RSA, 2048 to 8192 bits),
//! ES256 (EC P-256), EdDSA (OKP Ed25519). `none`, HMAC and anything else is refused, and the
//! key must be of the algorithm's type, so a token cannot pick how it is checked (no
//! "alg confusion"). A header with `crit` is refused (no extension is understood). The claims
//! are the strategy's to check: this answers the payload once the signature holds.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{Map, Value};

/// Larger inputs are refused before anything is decoded (an ID token is a few KiB; a JWKS
/// of a dozen RSA keys is ~10 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 << 10;
pub const MAX_JWKS_BYTES: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    fn named(name: &str) -> Result<Alg, String> {
        match name {
            "RS256" => Ok(Alg::Rs256),
            "ES256" => Ok(Alg::Es256),
            "EdDSA" => Ok(Alg::EdDsa),
            other => Err(format!("algorithm {other:?} is not accepted (RS256, ES256, EdDSA)")),
        }
    }

    /// Whether `jwk` is a key of this algorithm's type.
    fn fits(self, jwk: &Map<String, Value>) -> bool {
        let s = |k: &str| jwk.get(k).and_then(Value::as_str);
        let typed = match self {
            Alg::Rs256 => s("kty") == Some("RSA"),
            Alg::Es256 => s("kty") == Some("EC") && s("crv") == Some("P-256"),
            Alg::EdDsa => s("kty") == Some("OKP") && s("crv") == Some("Ed25519"),
        };
        let alg_ok = s("alg").is_none_or(|a| Alg::named(a) == Ok(self));
        let use_ok = s("use").is_none_or(|u| u == "sig");
        typed && alg_ok && use_ok
    }
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| format!("{what} is not base64url (without padding)"))
}

fn member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = jwk.get(name).and_then(Value::as_str).ok_or_else(|| format!("the key has no `{name}`"))?;
    b64(text, &format!("the key's `{name}`"))
}

/// The payload of `token` if a key of `jwks` signed it.
pub fn verify(token: &str, jwks: &str) -> Result<String, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!("the token is larger than {MAX_TOKEN_BYTES} bytes"));
    }
    if jwks.len() > MAX_JWKS_BYTES {
        return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
    }
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts[..] else {
        return Err("not a JWS in compact serialization (header.payload.signature)".into());
    };
    let header: Map<String, Value> = serde_json::from_slice(&b64(header_b64, "the header")?)
        .map_err(|_| "the header is not a JSON object".to_string())?;
    if header.contains_key("crit") {
        return Err("the header has `crit` extensions, which are not understood".into());
    }
    let alg = Alg::named(header.get("alg").and_then(Value::as_str).ok_or("the header has no `alg`")?)?;
    let kid = header.get("kid").and_then(Value::as_str);
    let set: Value = serde_json::from_str(jwks).map_err(|e| format!("the key set is not JSON: {e}"))?;
    let keys = set.get("keys").and_then(Value::as_array).ok_or("the key set has no `keys` array")?;
    let keys: Vec<&Map<String, Value>> = keys.iter().filter_map(Value::as_object).collect();
    let key = match kid {
        // The set's key with this kid and of the token's type (a set may reuse a kid).
        Some(kid) => {
            let named: Vec<&&Map<String, Value>> =
                keys.iter().filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid)).collect();
            match named.iter().find(|k| alg.fits(k)) {
                Some(key) => **key,
                None if named.is_empty() => return Err(format!("no key {kid:?} in the set")),
                None => return Err("the key is not of the token's algorithm".into()),
            }
        }
        None => match keys.iter().filter(|k| alg.fits(k)).collect::<Vec<_>>()[..] {
            [only] => *only,
            [] => return Err("no key of the token's type in the set".into()),
            _ => return Err("the token names no `kid` and the set has several keys that could fit".into()),
        },
    };
    let signature = b64(signature_b64, "the signature")?;
    let signed = format!("{header_b64}.{payload_b64}");
    let checked = match alg {
        Alg::Rs256 => signature::RsaPublicKeyComponents { n: member(key, "n")?, e: member(key, "e")? }.verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &signature,
        ),
        Alg::Es256 => {
            let (x, y) = (member(key, "x")?, member(key, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("the P-256 key's coordinates are not 32 bytes".into());
            }
            let point = [&[4u8][..], &x, &y].concat();
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(signed.as_bytes(), &signature)
        }
        Alg::EdDsa => {
            UnparsedPublicKey::new(&signature::ED25519, member(key, "x")?).verify(signed.as_bytes(), &signature)
        }
    };
    checked.map_err(|_| "the signature does not verify".to_string())?;
    String::from_utf8(b64(payload_b64, "the payload")?).map_err(|_| "the payload is not UTF-8 text".into())
}

#[cfg(test)]
mod tests {
    use super::verify;
    use serde_json::json;

    // RFC 7515 appendix A.2 (RS256), A.3 (ES256), RFC 8037 appendix A.4 (EdDSA).
    const RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
    const RS256: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
    const ES256: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
    const EDDSA: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    const PAYLOAD: &str = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

    fn rsa() -> serde_json::Value {
        json!({"kty": "RSA", "n": RSA_N, "e": "AQAB"})
    }
    fn ec() -> serde_json::Value {
        json!({"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }
    fn ed() -> serde_json::Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
    }
    fn set(keys: &[serde_json::Value]) -> String {
        json!({ "keys": keys }).to_string()
    }

    #[test]
    fn the_rfc_examples_verify_in_a_set_of_every_type() {
        let all = set(&[rsa(), ec(), ed()]);
        assert_eq!(verify(RS256, &all).unwrap(), PAYLOAD);
        assert_eq!(verify(ES256, &all).unwrap(), PAYLOAD);
        assert_eq!(verify(EDDSA, &all).unwrap(), "Example of Ed25519 signing");
    }

    #[test]
    fn a_changed_payload_or_signature_does_not_verify() {
        let keys = set(&[rsa()]);
        let parts: Vec<&str> = RS256.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], "eyJpc3MiOiJldmUifQ", parts[2]);
        assert_eq!(verify(&forged, &keys).unwrap_err(), "the signature does not verify");
        let mut sig = parts[2].to_string();
        sig.replace_range(0..1, "d");
        assert!(verify(&format!("{}.{}.{sig}", parts[0], parts[1]), &keys).is_err());
        let parts: Vec<&str> = EDDSA.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], "RXhhbXBsZQ", parts[2]);
        assert!(verify(&forged, &set(&[ed()])).is_err());
    }

    #[test]
    fn the_key_must_be_of_the_tokens_type_and_the_one_it_names() {
        // The RS256 token against a set holding only other types of keys.
        assert_eq!(verify(RS256, &set(&[ec(), ed()])).unwrap_err(), "no key of the token's type in the set");
        // A kid naming a key of another type.
        let mut ed_kid = ed();
        ed_kid["kid"] = json!("k1");
        let header =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, br#"{"alg":"RS256","kid":"k1"}"#);
        let parts: Vec<&str> = RS256.split('.').collect();
        let renamed = format!("{header}.{}.{}", parts[1], parts[2]);
        assert_eq!(verify(&renamed, &set(&[ed_kid, rsa()])).unwrap_err(), "the key is not of the token's algorithm");
        assert_eq!(verify(&renamed, &set(&[rsa()])).unwrap_err(), "no key \"k1\" in the set");
        // Two RSA keys and no kid: which one is not guessed.
        assert!(verify(RS256, &set(&[rsa(), rsa()])).unwrap_err().contains("several keys"));
        // A key marked for another algorithm or for encryption.
        let mut rsa_enc = rsa();
        rsa_enc["use"] = json!("enc");
        assert!(verify(RS256, &set(&[rsa_enc])).is_err());
    }

    #[test]
    fn none_hmac_and_crit_are_refused() {
        let b64 = |s: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
        let payload = b64(b"{\"sub\":\"admin\"}");
        let none = format!("{}.{payload}.", b64(br#"{"alg":"none"}"#));
        assert!(verify(&none, &set(&[rsa()])).unwrap_err().contains("\"none\" is not accepted"));
        let hs = format!("{}.{payload}.c2ln", b64(br#"{"alg":"HS256"}"#));
        let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(verify(&hs, &set(&[oct])).unwrap_err().contains("\"HS256\" is not accepted"));
        let crit = format!("{}.{payload}.c2ln", b64(br#"{"alg":"RS256","crit":["exp"]}"#));
        assert!(verify(&crit, &set(&[rsa()])).unwrap_err().contains("crit"));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for token in ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30", &"a".repeat(super::MAX_TOKEN_BYTES + 1)] {
            assert!(verify(token, &set(&[rsa()])).is_err(), "{token:.20}");
        }
        for jwks in ["", "[]", "{\"keys\":3}", "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"!\",\"e\":\"AQAB\"}]}"] {
            assert!(verify(RS256, jwks).is_err(), "{jwks}");
        }
    }
}
