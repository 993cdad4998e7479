//! The `totp` strategy: RFC 6238 time-based one-time codes (authenticator apps), a second factor.
//!
//! Enrollment (`createCredentials`, `createMyCredentials`, and their `update` twins, which
//! re-enroll): `{}`, or any of `{"secret": "<base32>", "algorithm": "SHA1"|"SHA256"|"SHA512",
//! "digits": 6|7|8, "period": 30}`. Without a secret, 20 random bytes are drawn. The answer holds
//! the secret and an `otpauth://` URI (show it as a QR code): the only times the secret leaves
//! the strategy; `getInfo` never shows it.
//!
//! TOTP has no username, so pairing it with a first factor such as `local` goes one of two ways:
//! - recommended: log in with `local`, then call `auth:validateMyCredentials` for `totp` with
//!   `{"code": "123456"}`; the code is checked for the logged-in user and the application
//!   unlocks what needs the second factor only when that succeeds;
//! - or log in with `local` first (which tells the client its kuid), then `auth:login` with
//!   `totp` and `{"kuid": "<user id>", "code": "123456"}`, keeping the second token. On its own
//!   that login is a single factor: whoever knows a kuid may try codes, bounded by the host's
//!   per-account lock after repeated failures (it keys on the `kuid` field).
//!
//! A code is accepted for the current time step and one step either side (clock skew). A step
//! is accepted once: a code for the same or an older step than the last accepted one is refused
//! (a code seen over a shoulder or in a log can't be replayed). The host keeps a call's storage
//! writes only when it returns Ok, so a refused code changes nothing.
//!
//! Storage layout (private to this strategy):
//! - `kuid:<kuid>` → `{"secret": "<base32>", "algorithm": "SHA1", "digits": 6, "period": 30}`
//! - `last:<kuid>` → the last accepted time step, in decimal
//!
//! Config (optional): `{"issuer": "My App"}`, the name authenticator apps show (default
//! "Sandgate").

use sandgate_strategy::{
    Login, LoginRequest, Result, Strategy, StrategyError, bad_request, config_json, conflict, crypto, export_strategy,
    internal, parse_credentials, rejected, store, to_json,
};
use serde::{Deserialize, Serialize};

const INVALID: &str = "invalid code";
const SECRET_BYTES: u32 = 20;
/// Shortest secret accepted from a client: 80 bits, what many providers issue (16 base32
/// characters). RFC 4226 asks for 128; we generate 160.
const MIN_SECRET_BYTES: usize = 10;
const MAX_SECRET_BYTES: usize = 128;
const PERIODS: std::ops::RangeInclusive<u64> = 10..=600;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
enum Algorithm {
    #[default]
    #[serde(rename = "SHA1", alias = "sha1")]
    Sha1,
    #[serde(rename = "SHA256", alias = "sha256")]
    Sha256,
    #[serde(rename = "SHA512", alias = "sha512")]
    Sha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    /// HMAC through the host (native code, counted).
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Sha1 => crypto::hmac_sha1(key, data),
            Algorithm::Sha256 => crypto::hmac_sha256(key, data),
            Algorithm::Sha512 => crypto::hmac_sha512(key, data),
        }
    }
}

/// A code, as text (`"012345"`) or, since some clients send one, a JSON number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Code {
    Text(String),
    Number(u64),
}

impl Code {
    fn text(self, digits: u32) -> String {
        match self {
            // Authenticator apps show "123 456"; people type what they see.
            Code::Text(text) => text.chars().filter(|c| !c.is_whitespace()).collect(),
            // A number lost its leading zeros.
            Code::Number(n) => format!("{n:0width$}", width = digits as usize),
        }
    }
}

/// Everything a client may send: enrollment fields, or `kuid`/`code` to check a code.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Creds {
    secret: Option<String>,
    algorithm: Option<Algorithm>,
    digits: Option<u32>,
    period: Option<u64>,
    kuid: Option<String>,
    code: Option<Code>,
}

#[derive(Serialize, Deserialize)]
struct Enrollment {
    /// Canonical base32 (upper case, no padding).
    secret: String,
    algorithm: Algorithm,
    digits: u32,
    period: u64,
}

#[derive(Serialize)]
struct PublicInfo<'a> {
    kuid: &'a str,
    algorithm: &'static str,
    digits: u32,
    period: u64,
}

/// What create/update answer: the one place the secret is shown.
#[derive(Serialize)]
struct EnrollmentInfo<'a> {
    kuid: &'a str,
    secret: &'a str,
    algorithm: &'static str,
    digits: u32,
    period: u64,
    otpauth: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Config {
    issuer: Option<String>,
}

fn kuid_key(kuid: &str) -> String {
    format!("kuid:{kuid}")
}
fn last_key(kuid: &str) -> String {
    format!("last:{kuid}")
}

fn enrollment(kuid: &str) -> Result<Option<Enrollment>> {
    store::get_json(&kuid_key(kuid))
}

fn no_credentials(kuid: &str) -> StrategyError {
    conflict(format!("No credentials found for user \"{kuid}\"."))
}

/// Checks enrollment fields; the secret is decoded but not generated yet.
fn settings(creds: &Creds) -> Result<(Option<Vec<u8>>, Algorithm, u32, u64)> {
    let secret = match &creds.secret {
        None => None,
        Some(text) => {
            let bytes = base32::decode(text)
                .ok_or_else(|| bad_request("\"secret\" must be base32 (RFC 4648: letters A-Z and digits 2-7)."))?;
            if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
                return Err(bad_request(format!(
                    "\"secret\" must decode to {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes (16 base32 characters at least)."
                )));
            }
            Some(bytes)
        }
    };
    let digits = creds.digits.unwrap_or(6);
    if !(6..=8).contains(&digits) {
        return Err(bad_request("\"digits\" must be 6, 7 or 8."));
    }
    let period = creds.period.unwrap_or(30);
    if !PERIODS.contains(&period) {
        return Err(bad_request(format!("\"period\" must be {} to {} seconds.", PERIODS.start(), PERIODS.end())));
    }
    Ok((secret, creds.algorithm.unwrap_or_default(), digits, period))
}

/// Stores a (re-)enrollment and answers with the secret and its otpauth URI.
fn enroll(kuid: &str, creds: &Creds) -> Result<String> {
    let (secret, algorithm, digits, period) = settings(creds)?;
    let secret = base32::encode(&secret.unwrap_or_else(|| crypto::random_bytes(SECRET_BYTES)));
    let enrollment = Enrollment { secret, algorithm, digits, period };
    store::set_json(&kuid_key(kuid), &enrollment)?;
    let config: Config = config_json()?;
    let issuer = config.issuer.as_deref().unwrap_or("Sandgate");
    let otpauth = format!(
        "otpauth://totp/{}:{}?secret={}&algorithm={}&digits={digits}&period={period}&issuer={}",
        uri::encode(issuer),
        uri::encode(kuid),
        enrollment.secret,
        algorithm.name(),
        uri::encode(issuer),
    );
    to_json(&EnrollmentInfo { kuid, secret: &enrollment.secret, algorithm: algorithm.name(), digits, period, otpauth })
}

/// Checks `code` for `kuid` now, and records the step it was accepted for.
fn check(kuid: &str, code: Code) -> Result<()> {
    // An unknown user gets the same answer as a wrong code.
    let enrollment = enrollment(kuid)?.ok_or_else(|| rejected(INVALID))?;
    let key = base32::decode(&enrollment.secret).ok_or_else(|| internal("stored TOTP secret is corrupt"))?;
    let last = store::get(&last_key(kuid)).and_then(|text| text.parse().ok());
    let code = code.text(enrollment.digits);
    let now = crypto::now_ms() / 1000;
    let hmac = |key: &[u8], data: &[u8]| enrollment.algorithm.hmac(key, data);
    match totp::check(hmac, &key, now, enrollment.period, enrollment.digits, &code, last) {
        totp::Check::Accepted(step) => store::set(&last_key(kuid), &step.to_string()).map_err(internal),
        totp::Check::Reused => Err(rejected("code already used")),
        totp::Check::Wrong => Err(rejected(INVALID)),
    }
}

fn public_info(kuid: &str, enrollment: &Enrollment) -> Result<String> {
    to_json(&PublicInfo {
        kuid,
        algorithm: enrollment.algorithm.name(),
        digits: enrollment.digits,
        period: enrollment.period,
    })
}

struct Totp;

impl Strategy for Totp {
    fn fields() -> Vec<String> {
        ["secret", "algorithm", "digits", "period", "kuid", "code"].map(String::from).to_vec()
    }

    fn verify(req: LoginRequest) -> Result<Login> {
        let creds: Creds = serde_json::from_str(&req.credentials).unwrap_or_default();
        let (Some(kuid), Some(code)) = (creds.kuid, creds.code) else {
            return Err(rejected("Missing credentials"));
        };
        check(&kuid, code)?;
        Ok(Login::User(kuid))
    }

    fn validate(kuid: String, credentials: String, is_update: bool) -> Result<()> {
        let creds: Creds = parse_credentials(&credentials)?;
        match creds.code {
            // `auth:validateMyCredentials` with a code: the second-factor check.
            Some(code) if !is_update => check(&kuid, code),
            Some(_) => Err(bad_request("\"code\" is not an enrollment field.")),
            None => settings(&creds).map(drop),
        }
    }

    fn create(kuid: String, credentials: String) -> Result<String> {
        let creds: Creds = parse_credentials(&credentials)?;
        if creds.code.is_some() {
            return Err(bad_request("\"code\" is not an enrollment field."));
        }
        if enrollment(&kuid)?.is_some() {
            return Err(conflict(format!("A strategy already exists for user \"{kuid}\".")));
        }
        enroll(&kuid, &creds)
    }

    fn update(kuid: String, credentials: String) -> Result<String> {
        let creds: Creds = parse_credentials(&credentials)?;
        if creds.code.is_some() {
            return Err(bad_request("\"code\" is not an enrollment field."));
        }
        enrollment(&kuid)?.ok_or_else(|| no_credentials(&kuid))?;
        // A new secret: codes of the old one are worthless, so the user may confirm the new
        // enrollment right away, even within the step of their last login.
        store::delete(&last_key(&kuid));
        enroll(&kuid, &creds)
    }

    fn delete(kuid: String) -> Result<()> {
        if !store::delete(&kuid_key(&kuid)) {
            return Err(no_credentials(&kuid));
        }
        store::delete(&last_key(&kuid));
        Ok(())
    }

    fn exists(kuid: String) -> bool {
        store::get(&kuid_key(&kuid)).is_some()
    }

    fn get_info(kuid: String) -> Result<String> {
        let enrollment = enrollment(&kuid)?.ok_or_else(|| no_credentials(&kuid))?;
        public_info(&kuid, &enrollment)
    }

    /// TOTP credentials have no id of their own: `id` is the kuid.
    fn get_by_id(id: String) -> Result<String> {
        Self::get_info(id)
    }
}

export_strategy!(Totp);

/// RFC 4226 (HOTP) and RFC 6238 (TOTP), pure: the HMAC comes as a closure, so the host's is
/// used in the component and a native one in the tests.
mod totp {
    /// The `digits`-digit HOTP value for `counter` (RFC 4226 §5.3, dynamic truncation).
    pub fn hotp(hmac: impl Fn(&[u8], &[u8]) -> Vec<u8>, key: &[u8], counter: u64, digits: u32) -> u32 {
        let mac = hmac(key, &counter.to_be_bytes());
        let offset = usize::from(mac[mac.len() - 1] & 0x0f);
        let bin = u32::from_be_bytes([mac[offset], mac[offset + 1], mac[offset + 2], mac[offset + 3]]) & 0x7fff_ffff;
        bin % 10u32.pow(digits)
    }

    /// The code for time step `step` (`unix seconds / period`), zero-padded.
    pub fn code(hmac: impl Fn(&[u8], &[u8]) -> Vec<u8>, key: &[u8], step: u64, digits: u32) -> String {
        format!("{:0width$}", hotp(hmac, key, step, digits), width = digits as usize)
    }

    #[derive(Debug, PartialEq)]
    pub enum Check {
        /// Valid for this step, newer than the last accepted one.
        Accepted(u64),
        /// Valid, but for a step already accepted or older: a replay.
        Reused,
        Wrong,
    }

    /// Checks `code` at `now` (unix seconds) against the steps around it.
    pub fn check(
        hmac: impl Fn(&[u8], &[u8]) -> Vec<u8>,
        key: &[u8],
        now: u64,
        period: u64,
        digits: u32,
        code: &str,
        last: Option<u64>,
    ) -> Check {
        if code.len() != digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Check::Wrong;
        }
        let current = now / period;
        let mut reused = false;
        // Oldest first: should two steps share a code, the older is used up first.
        for step in current.saturating_sub(1)..=current + 1 {
            if !same(code, &self::code(&hmac, key, step, digits)) {
                continue;
            }
            if last.is_some_and(|last| step <= last) {
                reused = true;
            } else {
                return Check::Accepted(step);
            }
        }
        if reused { Check::Reused } else { Check::Wrong }
    }

    /// Constant-time comparison of two codes of the same length (the host's would do too,
    /// but this keeps the module pure).
    fn same(a: &str, b: &str) -> bool {
        a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// RFC 4648 base32, the alphabet authenticator apps use for secrets.
mod base32 {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    /// Upper case, no padding.
    pub fn encode(data: &[u8]) -> String {
        let mut out = String::with_capacity((data.len() * 8).div_ceil(5));
        let (mut buffer, mut bits) = (0u32, 0u32);
        for &byte in data {
            buffer = (buffer << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
            }
        }
        if bits > 0 {
            out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
        }
        out
    }

    /// Either case; padding, spaces and dashes (as secrets are often shown) are skipped.
    /// `None` on any other character.
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(text.len() * 5 / 8);
        let (mut buffer, mut bits) = (0u32, 0u32);
        for c in text.bytes() {
            let value = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a',
                b'2'..=b'7' => c - b'2' + 26,
                b'=' | b' ' | b'-' => continue,
                _ => return None,
            };
            buffer = (buffer << 5) | u32::from(value);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        Some(out)
    }
}

/// Percent-encoding for the otpauth URI: everything but RFC 3986's unreserved characters.
mod uri {
    pub fn encode(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for b in text.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::totp::{Check, check, code};
    use super::{base32, uri};
    use hmac::{Hmac, Mac};

    fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    fn sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
        mac::<Hmac<sha1::Sha1>>(key, data)
    }
    fn sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
        mac::<Hmac<sha2::Sha256>>(key, data)
    }
    fn sha512(key: &[u8], data: &[u8]) -> Vec<u8> {
        mac::<Hmac<sha2::Sha512>>(key, data)
    }

    const SEED1: &[u8] = b"12345678901234567890";
    const SEED256: &[u8] = b"12345678901234567890123456789012";
    const SEED512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 6238 Appendix B: (time, SHA1, SHA256, SHA512), 8 digits, 30-second steps.
    const VECTORS: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ];

    #[test]
    fn rfc6238_appendix_b() {
        for (time, s1, s256, s512) in VECTORS {
            let step = time / 30;
            assert_eq!(code(sha1, SEED1, step, 8), s1, "SHA1 at {time}");
            assert_eq!(code(sha256, SEED256, step, 8), s256, "SHA256 at {time}");
            assert_eq!(code(sha512, SEED512, step, 8), s512, "SHA512 at {time}");
        }
    }

    #[test]
    fn rfc4226_appendix_d() {
        // HOTP values for counters 0..9 with the SHA1 seed, 6 digits.
        let expected =
            ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(code(sha1, SEED1, counter as u64, 6), *want, "counter {counter}");
        }
    }

    #[test]
    fn check_accepts_one_step_of_skew_and_refuses_replays() {
        let now = 1234567890;
        let step = now / 30;
        let at = |s: u64| code(sha1, SEED1, s, 6);
        assert_eq!(check(sha1, SEED1, now, 30, 6, &at(step), None), Check::Accepted(step));
        assert_eq!(check(sha1, SEED1, now, 30, 6, &at(step - 1), None), Check::Accepted(step - 1));
        assert_eq!(check(sha1, SEED1, now, 30, 6, &at(step + 1), None), Check::Accepted(step + 1));
        assert_eq!(check(sha1, SEED1, now, 30, 6, &at(step - 2), None), Check::Wrong);
        assert_eq!(check(sha1, SEED1, now, 30, 6, &at(step + 2), None), Check::Wrong);
        // The same step again, or an older one after a newer was accepted.
        assert_eq!(check(sha1, SEED1, now, 30, 6, &at(step), Some(step)), Check::Reused);
        assert_eq!(check(sha1, SEED1, now, 30, 6, &at(step - 1), Some(step)), Check::Reused);
        assert_eq!(check(sha1, SEED1, now, 30, 6, &at(step + 1), Some(step)), Check::Accepted(step + 1));
        // Malformed codes never reach the HMAC.
        assert_eq!(check(sha1, SEED1, now, 30, 6, "12345", None), Check::Wrong);
        assert_eq!(check(sha1, SEED1, now, 30, 6, "12a456", None), Check::Wrong);
        assert_eq!(check(sha1, SEED1, now, 30, 6, "", None), Check::Wrong);
    }

    #[test]
    fn check_near_epoch() {
        let c = code(sha1, SEED1, 0, 6);
        assert_eq!(check(sha1, SEED1, 5, 30, 6, &c, None), Check::Accepted(0));
    }

    #[test]
    fn base32_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base32::encode(plain.as_bytes()), encoded);
            assert_eq!(base32::decode(encoded).unwrap(), plain.as_bytes());
        }
        // Padded, lower case, grouped: all read the same.
        assert_eq!(base32::decode("MZXW6YQ=").unwrap(), b"foob");
        assert_eq!(base32::decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert_eq!(base32::decode("MZXW 6YTB-OI").unwrap(), b"foobar");
        assert_eq!(base32::decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap(), SEED1);
    }

    #[test]
    fn base32_rejects_foreign_characters() {
        for bad in ["MZXW1", "MZXW0", "MZXW8", "MZ_W6", "MZXW6!", "é"] {
            assert_eq!(base32::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn base32_round_trips() {
        let data: Vec<u8> = (0..=255).collect();
        for len in 0..=64 {
            let slice = &data[len..len * 3];
            assert_eq!(base32::decode(&base32::encode(slice)).unwrap(), slice);
        }
    }

    #[test]
    fn uri_encoding() {
        assert_eq!(uri::encode("alice"), "alice");
        assert_eq!(uri::encode("My App"), "My%20App");
        assert_eq!(uri::encode("a:b/c?d&e=f"), "a%3Ab%2Fc%3Fd%26e%3Df");
        assert_eq!(uri::encode("é"), "%C3%A9");
    }
}
