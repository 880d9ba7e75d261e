//! Who is calling: server-side sessions behind a secure cookie, API tokens
//! for scripts, CSRF tokens for state changes, and login throttling.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use bletchley_store::TokenScope;

use crate::error::ApiError;
use crate::worker::Worker;

/// The session cookie. `__Host-` makes browsers insist on Secure, Path=/
/// and no Domain.
pub const COOKIE_NAME: &str = "__Host-bletchley";
/// A session ends after this long without use.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// And after this long in any case.
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 3600);

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    // The OS random source failing is not recoverable for a server.
    bletchley_crypto::random_bytes(&mut b).expect("system random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn digest(token: &str) -> String {
    bletchley_crypto::sha256(token.as_bytes())
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// One logged-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// Principal name.
    pub principal: String,
    /// The CSRF token every state-changing request must echo.
    pub csrf: String,
    created: Instant,
    last: Instant,
}

/// Sessions, kept in memory by the hash of their cookie value: a restart
/// logs everyone out, and nothing about sessions is written to disk.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session; returns the cookie value and the CSRF token.
    pub fn create(&self, principal: &str) -> (String, String) {
        let (token, csrf) = (random_hex(32), random_hex(16));
        let now = Instant::now();
        if let Ok(mut m) = self.map.lock() {
            m.retain(|_, s| now - s.last < IDLE && now - s.created < ABSOLUTE);
            m.insert(
                digest(&token),
                Session {
                    principal: principal.to_owned(),
                    csrf: csrf.clone(),
                    created: now,
                    last: now,
                },
            );
        }
        (token, csrf)
    }

    /// The live session for a cookie value, refreshed.
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut m = self.map.lock().ok()?;
        let key = digest(token);
        let now = Instant::now();
        let s = m.get_mut(&key)?;
        if now - s.last >= IDLE || now - s.created >= ABSOLUTE {
            m.remove(&key);
            return None;
        }
        s.last = now;
        Some(s.clone())
    }

    /// Ends a session (logout).
    pub fn revoke(&self, token: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&digest(token));
        }
    }
}

/// Failed logins per key (account name, client address): after
/// [`FREE_FAILURES`] failures each further one doubles a lockout, up to
/// [`MAX_LOCK`]. A success clears the account's count.
#[derive(Default)]
pub struct Throttle {
    map: Mutex<HashMap<String, (u32, Option<Instant>)>>,
}

/// Failures allowed before lockouts start.
pub const FREE_FAILURES: u32 = 5;
/// Longest lockout.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);

impl Throttle {
    /// `Err(seconds)` while `key` is locked out.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let m = self.map.lock().map_err(|_| 1u64)?;
        match m.get(key) {
            Some((_, Some(until))) if *until > Instant::now() => {
                Err((*until - Instant::now()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure.
    pub fn fail(&self, key: &str) {
        if let Ok(mut m) = self.map.lock() {
            let e = m.entry(key.to_owned()).or_insert((0, None));
            e.0 += 1;
            if e.0 > FREE_FAILURES {
                let secs = 1u64 << (e.0 - FREE_FAILURES).min(10);
                e.1 = Some(Instant::now() + Duration::from_secs(secs).min(MAX_LOCK));
            }
        }
    }

    /// Clears a key after a success.
    pub fn clear(&self, key: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(key);
        }
    }
}

/// How a caller proved who it is.
#[derive(Clone, Debug)]
pub enum Via {
    /// A browser session (CSRF applies).
    Session {
        /// Cookie value.
        token: String,
        /// Expected CSRF token.
        csrf: String,
    },
    /// An API token (no ambient credentials, so no CSRF).
    Token {
        /// What it may do.
        scopes: Vec<TokenScope>,
    },
    /// A client certificate issued by the platform's client CA (mutual
    /// TLS). A browser could present one on its own, so state changes need
    /// the `X-CSRF-Token: certificate` header, which no cross-site form can
    /// send.
    Certificate {
        /// Its serial, hex.
        serial: String,
    },
}

/// Where the accept loop puts the verified client certificate's identity
/// (`NAME SERIAL`), after removing any header of that name a client sent.
pub const CLIENT_CERT_HEADER: &str = "x-bletchley-client-certificate";

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Principal name.
    pub principal: String,
    /// How.
    pub via: Via,
}

impl Caller {
    /// Refuses a token without `scope`.
    pub fn require(&self, scope: TokenScope) -> Result<(), ApiError> {
        match &self.via {
            Via::Token { scopes } if !scopes.contains(&scope) => Err(ApiError::forbidden(
                format!("this token lacks the {scope:?} scope").to_lowercase(),
            )),
            _ => Ok(()),
        }
    }

    /// For a state change: a session must echo its CSRF token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ApiError> {
        match &self.via {
            Via::Session { csrf, .. } => {
                let ok = presented.is_some_and(|p| {
                    p.len() == csrf.len()
                        && p.bytes()
                            .zip(csrf.bytes())
                            .fold(0u8, |a, (x, y)| a | (x ^ y))
                            == 0
                });
                if ok {
                    Ok(())
                } else {
                    Err(ApiError::forbidden(
                        "missing or wrong CSRF token (send the X-CSRF-Token header)",
                    ))
                }
            }
            Via::Token { .. } => Ok(()),
            Via::Certificate { .. } => {
                if presented == Some("certificate") {
                    Ok(())
                } else {
                    Err(ApiError::forbidden(
                        "a client-certificate caller must send X-CSRF-Token: certificate to change anything",
                    ))
                }
            }
        }
    }
}

/// The session cookie's value, if the request carries one.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_owned())
}

/// Establishes the caller from a session cookie or a bearer token.
pub async fn authenticate(
    headers: &HeaderMap,
    sessions: &Sessions,
    worker: &Worker,
) -> Result<Caller, ApiError> {
    if let Some(auth) = headers.get(AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthenticated)?
            .trim()
            .to_owned();
        let found = worker
            .run(move |s| Ok(s.platform.check_token(&token)?))
            .await?;
        let (principal, scopes) = found.ok_or_else(ApiError::unauthenticated)?;
        return Ok(Caller {
            principal,
            via: Via::Token { scopes },
        });
    }
    let Some(token) = cookie_token(headers) else {
        return certificate_caller(headers, worker).await;
    };
    let s = sessions.get(&token).ok_or_else(ApiError::unauthenticated)?;
    // A principal disabled or suspended since it logged in loses the session on
    // its next request, whatever page it is on.
    let name = s.principal.clone();
    let standing = worker
        .run(move |st| Ok(st.platform.acting(&name).map(|_| ())))
        .await?;
    if standing.is_err() {
        sessions.revoke(&token);
        return Err(ApiError::unauthenticated());
    }
    Ok(Caller {
        principal: s.principal,
        via: Via::Session {
            token,
            csrf: s.csrf,
        },
    })
}

/// A caller by client certificate: the identity the TLS layer verified,
/// accepted only while the platform holds the certificate as issued to that
/// principal, unexpired and unrevoked.
async fn certificate_caller(headers: &HeaderMap, worker: &Worker) -> Result<Caller, ApiError> {
    let (name, serial) = headers
        .get(CLIENT_CERT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(n, s)| (n.to_owned(), s.to_owned()))
        .ok_or_else(ApiError::unauthenticated)?;
    let (n, s) = (name.clone(), serial.clone());
    let ok = worker
        .run(move |st| Ok(st.platform.check_certificate(&n, &s)?))
        .await?;
    if !ok {
        return Err(ApiError::unauthenticated());
    }
    Ok(Caller {
        principal: name,
        via: Via::Certificate { serial },
    })
}

/// The `Set-Cookie` value that starts a session.
pub fn set_cookie(token: &str) -> String {
    format!(
        "{COOKIE_NAME}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        ABSOLUTE.as_secs()
    )
}

/// The `Set-Cookie` value that clears it.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}
