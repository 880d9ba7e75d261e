//! Login passwords as argon2id hashes in PHC string form, with the cost the
//! OWASP password storage guidance recommends (19 MiB, 2 passes).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::{Error, Result, random_bytes};

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// Hashes a new password; refuses one too short to resist guessing.
pub fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(Error::Malformed {
            what: "password",
            reason: format!("a password has at least {MIN_PASSWORD} characters"),
        });
    }
    let mut salt = [0u8; 16];
    random_bytes(&mut salt)?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Malformed {
            what: "password hash",
            reason: e.to_string(),
        })
}

/// Whether `password` matches the stored hash (constant time inside
/// argon2). A malformed stored hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("x", "not a hash"));
        assert!(hash_password("short").is_err());
    }
}
