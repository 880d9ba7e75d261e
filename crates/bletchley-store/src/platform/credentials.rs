//! How principals prove who they are to the server: a password (argon2id),
//! and API tokens for scripts (scoped, expiring, revocable). Kept in the
//! catalog as a sealed row per principal, found by blind index.

use bletchley_audit::Outcome;
use bletchley_crypto::password::{hash_password, verify_password};

use super::{Actor, Platform, now_ms};
use crate::catalog::{Catalog, SealedRow, SealedTable};
use crate::error::{Error, Result};

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Search, read, graph: every read path (each still gated).
    Read,
    /// Upload items.
    Write,
}

impl TokenScope {
    /// Parses `read` or `write`.
    pub fn parse(s: &str) -> Result<TokenScope> {
        match s {
            "read" => Ok(TokenScope::Read),
            "write" => Ok(TokenScope::Write),
            other => Err(Error::Invalid(format!(
                "token scope {other:?}: expected read or write"
            ))),
        }
    }
}

/// One API token as stored: only a hash of its secret.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TokenRecord {
    /// Public identifier (shown in listings and the audit log).
    pub id: String,
    /// What it was made for.
    pub label: String,
    /// SHA-256 of the secret part, hex.
    secret_hash: String,
    /// What it may do.
    pub scopes: Vec<TokenScope>,
    /// Unix milliseconds after which it is refused.
    pub expires_ms: i64,
    /// Revoked tokens stay listed so the record shows what existed.
    pub revoked: bool,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Credentials {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    tokens: Vec<TokenRecord>,
    /// The second factor, when enrolled (inside the sealed row, like the
    /// password hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp: Option<TotpState>,
    /// Client certificates issued to the principal (mutual TLS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    certificates: Vec<CertificateRecord>,
}

/// A client certificate issued to a principal, as the platform remembers
/// it: only what identifies it, so it can be refused once revoked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertificateRecord {
    /// Serial number, hex.
    pub serial: String,
    /// Unix milliseconds after which it is refused.
    pub not_after_ms: i64,
    /// Revoked certificates stay listed so the record shows what existed.
    pub revoked: bool,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct TotpState {
    /// The shared secret, hex.
    secret: String,
    /// The last time step a code was accepted for: no code for it or an
    /// earlier step is accepted again.
    #[serde(default)]
    last_step: u64,
}

/// What a second-factor check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondFactor {
    /// The principal has none enrolled.
    NotEnrolled,
    /// The code is right and fresh (now spent).
    Accepted,
    /// Wrong, stale, reused or malformed.
    Refused,
}

fn hex_sha256(s: &str) -> String {
    bletchley_crypto::sha256(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Platform {
    fn credentials(&self, name: &str) -> Result<(Vec<u8>, Option<SealedRow>, Credentials)> {
        // The principal must exist.
        self.principal(name)?;
        let tag = self.tag("credentials", name);
        match self.catalog.find_sealed(SealedTable::Credentials, &tag)? {
            Some(row) => {
                let c = self.open_row(SealedTable::Credentials, &row)?;
                Ok((tag, Some(row), c))
            }
            None => Ok((tag, None, Credentials::default())),
        }
    }

    fn save_credentials(&self, tag: &[u8], row: Option<SealedRow>, c: &Credentials) -> Result<()> {
        match row {
            Some(row) => self.update_row(SealedTable::Credentials, &row, c),
            None => self
                .insert_row(SealedTable::Credentials, tag, None, c)
                .map(|_| ()),
        }
    }

    /// Sets (or replaces) a principal's login password.
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<()> {
        let (tag, row, mut c) = self.credentials(name)?;
        c.password = Some(hash_password(password).map_err(|e| Error::Invalid(e.to_string()))?);
        self.save_credentials(&tag, row, &c)?;
        self.record(
            Actor::Operator,
            "principal.passwd",
            vec![name.to_owned()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Whether `password` is the principal's. Unknown principals and
    /// principals without a password get `false` after the same hashing
    /// work, so timing does not tell which names exist.
    pub fn check_password(&self, name: &str, password: &str) -> Result<bool> {
        const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let stored = match self.credentials(name) {
            Ok((_, _, c)) => c.password,
            Err(Error::Unknown { .. }) => None,
            Err(e) => return Err(e),
        };
        match stored {
            // A disabled or suspended principal cannot log in: the same answer as
            // a wrong password, after the same work.
            Some(h) => Ok(verify_password(password, &h) && self.acting(name).is_ok()),
            None => {
                let _ = verify_password(password, DECOY);
                Ok(false)
            }
        }
    }

    /// Makes an API token for `name`; returns its record and the secret,
    /// shown once (`bt1.NAME.ID.SECRET`).
    pub fn create_token(
        &mut self,
        name: &str,
        label: &str,
        scopes: Vec<TokenScope>,
        expires_ms: i64,
    ) -> Result<(TokenRecord, String)> {
        if scopes.is_empty() {
            return Err(Error::Invalid("a token needs at least one scope".into()));
        }
        if expires_ms <= now_ms() {
            return Err(Error::Invalid(
                "a token's expiry must be in the future".into(),
            ));
        }
        let (tag, row, mut c) = self.credentials(name)?;
        let mut raw = [0u8; 32];
        bletchley_crypto::random_bytes(&mut raw).map_err(Error::from)?;
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let (id, secret) = (hex[..12].to_owned(), hex[12..].to_owned());
        let rec = TokenRecord {
            id: id.clone(),
            label: label.to_owned(),
            secret_hash: hex_sha256(&secret),
            scopes,
            expires_ms,
            revoked: false,
        };
        c.tokens.push(rec.clone());
        self.save_credentials(&tag, row, &c)?;
        self.record(
            Actor::Operator,
            "token.create",
            vec![name.to_owned(), id.clone()],
            None,
            Outcome::Allowed,
            Some(label.to_owned()),
        )?;
        Ok((rec, format!("bt1.{name}.{id}.{secret}")))
    }

    /// The principal and scopes a token stands for, if it is valid now.
    pub fn check_token(&self, token: &str) -> Result<Option<(String, Vec<TokenScope>)>> {
        // Names may hold dots; the id and secret (hex) never do, so they
        // are read from the right.
        let Some(rest) = token.strip_prefix("bt1.") else {
            return Ok(None);
        };
        let mut parts = rest.rsplitn(3, '.');
        let (Some(secret), Some(id), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let c = match self.credentials(name) {
            Ok((_, _, c)) => c,
            Err(Error::Unknown { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if self.acting(name).is_err() {
            return Ok(None);
        }
        let want = hex_sha256(secret);
        Ok(c.tokens
            .iter()
            .find(|t| t.id == id)
            .filter(|t| !t.revoked && t.expires_ms > now_ms())
            // Comparing hashes, not secrets: an early exit tells a guesser
            // nothing about the secret.
            .filter(|t| t.secret_hash == want)
            .map(|t| (name.to_owned(), t.scopes.clone())))
    }

    /// Revokes every token and client certificate of a principal (it was disabled).
    pub(crate) fn revoke_all_credentials(&mut self, name: &str) -> Result<()> {
        let (tag, row, mut c) = self.credentials(name)?;
        let mut revoked = Vec::new();
        for t in c.tokens.iter_mut().filter(|t| !t.revoked) {
            t.revoked = true;
            revoked.push(format!("token {}", t.id));
        }
        for cert in c.certificates.iter_mut().filter(|x| !x.revoked) {
            cert.revoked = true;
            revoked.push(format!("certificate {}", cert.serial));
        }
        if revoked.is_empty() {
            return Ok(());
        }
        self.save_credentials(&tag, row, &c)?;
        self.record(
            Actor::Operator,
            "principal.credentials-revoked",
            vec![name.to_owned()],
            None,
            Outcome::Allowed,
            Some(revoked.join(", ")),
        )
    }

    /// Revokes a token; revoking twice is harmless.
    pub fn revoke_token(&mut self, name: &str, id: &str) -> Result<()> {
        let (tag, row, mut c) = self.credentials(name)?;
        let t = c
            .tokens
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| Error::Unknown {
                kind: "token",
                name: id.to_owned(),
            })?;
        t.revoked = true;
        self.save_credentials(&tag, row, &c)?;
        self.record(
            Actor::Operator,
            "token.revoke",
            vec![name.to_owned(), id.to_owned()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Enrols (or re-enrols) a TOTP second factor for `name`: from now on
    /// a login needs a code as well as the password. Returns the
    /// `otpauth://` URL and the base32 secret, to show once.
    pub fn enable_totp(&mut self, name: &str) -> Result<(String, String)> {
        let (tag, row, mut c) = self.credentials(name)?;
        let secret = bletchley_crypto::totp::new_secret()?;
        let shown = bletchley_crypto::totp::enrolment(&secret, name, "Bletchley")?;
        c.totp = Some(TotpState {
            secret: hex::encode(&secret),
            last_step: 0,
        });
        self.save_credentials(&tag, row, &c)?;
        self.record(
            Actor::Operator,
            "principal.totp.enable",
            vec![name.to_owned()],
            None,
            Outcome::Allowed,
            None,
        )?;
        Ok(shown)
    }

    /// Removes a principal's second factor.
    pub fn disable_totp(&mut self, name: &str) -> Result<()> {
        let (tag, row, mut c) = self.credentials(name)?;
        c.totp = None;
        self.save_credentials(&tag, row, &c)?;
        self.record(
            Actor::Operator,
            "principal.totp.disable",
            vec![name.to_owned()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Checks a one-time code for `name` at `unix_secs` and spends it: the
    /// step it was valid for is remembered, so the same code (or an older
    /// one) is refused next time. Unknown principals are `NotEnrolled`.
    pub fn check_totp(&mut self, name: &str, code: &str, unix_secs: u64) -> Result<SecondFactor> {
        let (tag, row, mut c) = match self.credentials(name) {
            Ok(x) => x,
            Err(Error::Unknown { .. }) => return Ok(SecondFactor::NotEnrolled),
            Err(e) => return Err(e),
        };
        let Some(state) = c.totp.as_mut() else {
            return Ok(SecondFactor::NotEnrolled);
        };
        let secret = hex::decode(&state.secret)
            .map_err(|e| Error::Layout(format!("stored TOTP secret: {e}")))?;
        match bletchley_crypto::totp::verify(&secret, code, unix_secs) {
            Some(step) if step > state.last_step => {
                state.last_step = step;
                self.save_credentials(&tag, row, &c)?;
                Ok(SecondFactor::Accepted)
            }
            _ => Ok(SecondFactor::Refused),
        }
    }

    /// Whether `name` has a second factor enrolled.
    pub fn totp_enrolled(&self, name: &str) -> Result<bool> {
        match self.credentials(name) {
            Ok((_, _, c)) => Ok(c.totp.is_some()),
            Err(Error::Unknown { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records a client certificate issued to `name` (by the server's
    /// client CA), so that it is accepted until it expires or is revoked.
    pub fn register_certificate(
        &mut self,
        name: &str,
        serial: &str,
        not_after_ms: i64,
    ) -> Result<()> {
        if serial.is_empty() || serial.len() > 64 || !serial.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::Invalid(format!(
                "certificate serial {serial:?}: expected hex"
            )));
        }
        let (tag, row, mut c) = self.credentials(name)?;
        c.certificates.push(CertificateRecord {
            serial: serial.to_ascii_lowercase(),
            not_after_ms,
            revoked: false,
        });
        self.save_credentials(&tag, row, &c)?;
        self.record(
            Actor::Operator,
            "certificate.issue",
            vec![name.to_owned(), serial.to_owned()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Whether the certificate with `serial` stands for `name` now: issued
    /// to that principal, not revoked, not expired. Unknown names are not.
    pub fn check_certificate(&self, name: &str, serial: &str) -> Result<bool> {
        let c = match self.credentials(name) {
            Ok((_, _, c)) => c,
            Err(Error::Unknown { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        if self.acting(name).is_err() {
            return Ok(false);
        }
        let serial = serial.to_ascii_lowercase();
        Ok(c.certificates
            .iter()
            .any(|r| r.serial == serial && !r.revoked && r.not_after_ms > now_ms()))
    }

    /// Revokes a client certificate; revoking twice is harmless.
    pub fn revoke_certificate(&mut self, name: &str, serial: &str) -> Result<()> {
        let (tag, row, mut c) = self.credentials(name)?;
        let serial = serial.to_ascii_lowercase();
        let r = c
            .certificates
            .iter_mut()
            .find(|r| r.serial == serial)
            .ok_or_else(|| Error::Unknown {
                kind: "certificate",
                name: serial.clone(),
            })?;
        r.revoked = true;
        self.save_credentials(&tag, row, &c)?;
        self.record(
            Actor::Operator,
            "certificate.revoke",
            vec![name.to_owned(), serial],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Client certificates issued to a principal.
    pub fn certificates(&self, name: &str) -> Result<Vec<CertificateRecord>> {
        Ok(self.credentials(name)?.2.certificates)
    }

    /// A principal's tokens (without secrets).
    pub fn tokens(&self, name: &str) -> Result<Vec<TokenRecord>> {
        Ok(self.credentials(name)?.2.tokens)
    }
}
