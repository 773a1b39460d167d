//! Tracking links: `GET /api/track/{token}` shows one order's status and
//! timeline to whoever holds the link (its customer), until it expires. The
//! token is `t1.{order id}.{expiry, Unix seconds}.{HMAC-SHA256, 128 bits}`,
//! signed with a secret every process shares through the `API_KEYS` bucket;
//! nothing is stored per link.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;

use crate::{AccessError, hex, nats, random_bytes};

const SECRET_ENTRY: &str = "tracking.secret";
const VERSION: &str = "t1";
/// Bytes of the MAC kept in the token.
const MAC_BYTES: usize = 16;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TrackingError {
    #[error("not a valid tracking link")]
    Invalid,
    #[error("this tracking link expired at {0}")]
    Expired(DateTime<Utc>),
}

/// A verified token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackingToken {
    pub order_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// How long a tracking link stays valid unless configured: 90 days.
pub const DEFAULT_TRACKING_TTL: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

#[derive(Clone)]
pub struct TrackingLinks {
    key: ring::hmac::Key,
    ttl: Duration,
}

impl std::fmt::Debug for TrackingLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackingLinks").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl TrackingLinks {
    /// Reads the shared secret, creating it if this is the first process.
    pub async fn open(js: &jetstream::Context, ttl: Duration) -> Result<TrackingLinks, AccessError> {
        let bucket = js.get_key_value(broker::API_KEYS_BUCKET).await.map_err(|e| nats("open API_KEYS")(&e))?;
        if let Some(secret) = bucket.get(SECRET_ENTRY).await.map_err(|e| nats("read the tracking secret")(&e))? {
            return Ok(TrackingLinks::with_secret(&secret, ttl));
        }
        let fresh = hex(&random_bytes::<32>()?);
        match bucket.create(SECRET_ENTRY, fresh.clone().into()).await {
            Ok(_) => Ok(TrackingLinks::with_secret(fresh.as_bytes(), ttl)),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let secret = bucket
                    .get(SECRET_ENTRY)
                    .await
                    .map_err(|e| nats("read the tracking secret")(&e))?
                    .ok_or_else(|| AccessError::Invalid("the tracking secret vanished".into()))?;
                Ok(TrackingLinks::with_secret(&secret, ttl))
            }
            Err(e) => Err(nats("store the tracking secret")(&e)),
        }
    }

    pub fn with_secret(secret: &[u8], ttl: Duration) -> TrackingLinks {
        TrackingLinks { key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), ttl }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self, signed: &str) -> String {
        hex(&ring::hmac::sign(&self.key, signed.as_bytes()).as_ref()[..MAC_BYTES])
    }

    /// A token for `order_id`, valid for the configured time from `now`.
    pub fn issue(&self, order_id: Uuid, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::days(30));
        let expires_at = now + ttl;
        let signed = format!("{VERSION}.{}.{}", order_id.simple(), expires_at.timestamp());
        let mac = self.mac(&signed);
        (format!("{signed}.{mac}"), DateTime::from_timestamp(expires_at.timestamp(), 0).unwrap_or(expires_at))
    }

    /// The order a token names, if its signature holds and it has not expired.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<TrackingToken, TrackingError> {
        let (signed, mac) = token.rsplit_once('.').ok_or(TrackingError::Invalid)?;
        let expected = self.mac(signed);
        // Compared in constant time: the MAC must not leak byte by byte.
        let differs = mac.len() != expected.len()
            || mac.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0;
        if differs {
            return Err(TrackingError::Invalid);
        }
        let mut parts = signed.split('.');
        let (Some(VERSION), Some(id), Some(expiry), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TrackingError::Invalid);
        };
        let order_id = Uuid::parse_str(id).map_err(|_| TrackingError::Invalid)?;
        let expires_at = expiry
            .parse::<i64>()
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .ok_or(TrackingError::Invalid)?;
        if now >= expires_at {
            return Err(TrackingError::Expired(expires_at));
        }
        Ok(TrackingToken { order_id, expires_at })
    }

    /// The route a token is served at.
    pub fn path(token: &str) -> String {
        format!("/api/track/{token}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_order_until_it_expires() {
        let links = TrackingLinks::with_secret(b"secret", Duration::from_secs(60));
        let id = Uuid::now_v7();
        let now = Utc::now();
        let (token, expires) = links.issue(id, now);
        assert_eq!(links.verify(&token, now).unwrap().order_id, id);
        assert_eq!(links.verify(&token, expires), Err(TrackingError::Expired(expires)));
    }

    #[test]
    fn a_forged_or_altered_token_is_invalid() {
        let links = TrackingLinks::with_secret(b"secret", Duration::from_secs(60));
        let now = Utc::now();
        let (token, _) = links.issue(Uuid::now_v7(), now);
        let other = TrackingLinks::with_secret(b"other", Duration::from_secs(60));
        assert_eq!(other.verify(&token, now), Err(TrackingError::Invalid));
        // A later expiry with the old MAC.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[2] = (now.timestamp() + 10_000_000).to_string();
        assert_eq!(links.verify(&parts.join("."), now), Err(TrackingError::Invalid));
        for junk in ["", "t1", "t1.x.y.z", "....", "t1.0.0.00"] {
            assert_eq!(links.verify(junk, now), Err(TrackingError::Invalid), "{junk}");
        }
    }
}
