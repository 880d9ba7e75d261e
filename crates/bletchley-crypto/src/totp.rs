//! Time-based one-time codes (RFC 6238: HMAC-SHA-1, 6 digits, 30-second
//! steps), the second factor of a console or API login, as authenticator
//! apps expect them. Built on `totp-rs`; secrets come from the OS generator.

use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::{Error, Result};

/// Bytes of a new secret (160 bits, as RFC 4226 recommends).
pub const SECRET_LEN: usize = 20;

/// A fresh random secret.
pub fn new_secret() -> Result<Vec<u8>> {
    let mut s = vec![0u8; SECRET_LEN];
    crate::random_bytes(&mut s)?;
    Ok(s)
}

fn totp(secret: &[u8], account: &str, issuer: &str) -> Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(Secret::from(secret.to_vec()))
        .with_account_name(account)
        .with_issuer(Some(issuer))
        .build()
        .map_err(|e| Error::Malformed {
            what: "TOTP secret",
            reason: e.to_string(),
        })
}

/// The `otpauth://` URL an authenticator app enrols from (shown once, as
/// text or a QR code), and the secret in base32 for typing in.
pub fn enrolment(secret: &[u8], account: &str, issuer: &str) -> Result<(String, String)> {
    let t = totp(secret, account, issuer)?;
    let url = t.to_url().map_err(|e| Error::Malformed {
        what: "TOTP enrolment",
        reason: e.to_string(),
    })?;
    Ok((url, Secret::from(secret.to_vec()).to_base32()))
}

/// The time step `code` is valid for at `unix_secs` (one step of clock
/// skew either way), or `None`. Callers keep the last step accepted and
/// refuse any step not after it, so a code cannot be replayed.
pub fn verify(secret: &[u8], code: &str, unix_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret, "x", "x").ok()?.check(code, unix_secs)
}

/// The code for `unix_secs` (for tests and enrolment checks).
pub fn code_at(secret: &[u8], unix_secs: u64) -> Result<String> {
    Ok(totp(secret, "x", "x")?.generate(unix_secs).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 seed, last six digits.
        let seed = b"12345678901234567890";
        for (t, want) in [
            (59u64, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(seed, t).unwrap(), want, "t = {t}");
            assert!(verify(seed, want, t).is_some());
        }
    }

    #[test]
    fn skew_is_one_step_and_junk_is_refused() {
        let s = new_secret().unwrap();
        let t = 1_800_000_000;
        let c = code_at(&s, t).unwrap();
        assert_eq!(verify(&s, &c, t), Some(t / 30));
        assert!(verify(&s, &c, t + 30).is_some());
        assert!(verify(&s, &c, t + 61).is_none());
        for junk in ["", "12345", "1234567", "abcdef", "12 345", "１２３４５６"] {
            assert!(verify(&s, junk, t).is_none(), "{junk:?}");
        }
        let (url, b32) = enrolment(&s, "alice", "Bletchley").unwrap();
        assert!(
            url.starts_with("otpauth://totp/") && url.contains(&b32),
            "{url}"
        );
    }
}
