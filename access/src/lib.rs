//! Who may do what: API keys with a role, kept hashed in the `API_KEYS`
//! bucket and watched by every process; the one table of which role may use
//! which route; the middleware that applies it (with per-key rate limits,
//! the admin audit and the security headers); signed, expiring tracking
//! links for one order's customer; and rate limits counted in NATS KV.
//!
//! Open until the first key: with no key in the bucket (and no
//! `--admin-token`), every route answers anyone, and the process says so at
//! start-up and in `/readyz`. The first key created turns enforcement on for
//! every role at once, and it stays on (revoking every key does not reopen).

mod caller;
mod keyring;
mod keys;
mod middleware;
mod policy;
mod rate_limit;
mod role;
mod tracking;

pub use caller::{Caller, Principal};
pub use keyring::{Keyring, Refusal};
pub use keys::{CreatedKey, KeyRecord, create_key, list_keys, revoke_key};
pub use middleware::{Gate, authorize, protect, record_admin_action, security_headers, whoami};
pub use policy::{Access, route_access};
pub use rate_limit::{RateLimiter, Verdict, allowed_on_error};
pub use role::{Grant, Role};
pub use tracking::{DEFAULT_TRACKING_TTL, TrackingError, TrackingLinks, TrackingToken};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AccessError {
    #[error("NATS: cannot {what}: {message}")]
    Nats { what: &'static str, message: String },
    #[error("unreadable key record {key}: {message}")]
    Record { key: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("no key with id or name {0:?}")]
    NoSuchKey(String),
}

pub(crate) fn nats(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> AccessError {
    move |e| AccessError::Nats { what, message: e.to_string() }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// SHA-256 of `text`: what the bucket stores instead of a key.
pub(crate) fn sha256(text: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `n` bytes from the operating system's generator.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], AccessError> {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| AccessError::Invalid("the operating system's random generator failed".into()))?;
    Ok(out)
}
