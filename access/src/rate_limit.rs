//! Rate limits shared by every ingest instance: a sliding window per
//! subject (a key, a customer) over per-minute counters in the
//! `RATE_LIMITS` bucket. The estimate of the last 60 s is this minute's
//! count plus the previous minute's weighted by how much of it is still
//! inside the window (Cloudflare's approximation: exact for a steady rate,
//! never more than one minute's count off). A counter is incremented by
//! compare-and-set, so two instances never lose each other's requests.

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::{AccessError, hex, nats, sha256};

/// How often an increment retries a lost compare-and-set before giving up
/// (and letting the request through: a limit never blocks on contention).
const CAS_ATTEMPTS: usize = 8;

#[derive(Clone)]
pub struct RateLimiter {
    bucket: kv::Store,
}

/// What one request was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u32,
    /// Requests left in the window after this one.
    pub remaining: u32,
    /// Seconds until the window has room again (or resets).
    pub reset_secs: u32,
}

fn counter_key(subject: &str, minute: i64) -> String {
    // Subjects are any text (customer ids): hashed to a valid KV key.
    format!("{}.{minute}", hex(&sha256(subject)[..12]))
}

fn count(value: &[u8]) -> u64 {
    std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

impl RateLimiter {
    pub async fn open(js: &jetstream::Context) -> Result<RateLimiter, AccessError> {
        let bucket = js.get_key_value(broker::RATE_LIMIT_BUCKET).await.map_err(|e| nats("open RATE_LIMITS")(&e))?;
        Ok(RateLimiter { bucket })
    }

    /// Counts one request of `subject` against `limit` per minute, unless
    /// the window is already full (a refused request is not counted).
    pub async fn check(&self, subject: &str, limit: u32, now: DateTime<Utc>) -> Result<Verdict, AccessError> {
        let millis = now.timestamp_millis();
        let minute = millis.div_euclid(60_000);
        let into_minute = millis.rem_euclid(60_000) as f64 / 60_000.0;
        let previous = match self.bucket.get(counter_key(subject, minute - 1)).await {
            Ok(value) => value.map_or(0, |v| count(&v)),
            Err(e) => return Err(nats("read a rate counter")(&e)),
        };
        let key = counter_key(subject, minute);
        let weighted_previous = previous as f64 * (1.0 - into_minute);
        let to_next_minute = (60.0 * (1.0 - into_minute)).ceil().max(1.0) as u32;
        for _ in 0..CAS_ATTEMPTS {
            let entry = self.bucket.entry(&key).await.map_err(|e| nats("read a rate counter")(&e))?;
            let (current, revision) = entry
                .filter(|e| e.operation == kv::Operation::Put)
                .map_or((0, None), |e| (count(&e.value), Some(e.revision)));
            let used = weighted_previous + current as f64;
            if used + 1.0 > f64::from(limit) {
                return Ok(Verdict { allowed: false, limit, remaining: 0, reset_secs: to_next_minute });
            }
            let next = Bytes::from((current + 1).to_string());
            let stored = match revision {
                None => self.bucket.create(&key, next).await.is_ok(),
                Some(revision) => self.bucket.update(&key, next, revision).await.is_ok(),
            };
            if stored {
                let remaining = (f64::from(limit) - used - 1.0).floor().max(0.0) as u32;
                return Ok(Verdict { allowed: true, limit, remaining, reset_secs: to_next_minute });
            }
        }
        tracing::warn!(subject, "rate counter contended; letting the request through");
        Ok(Verdict { allowed: true, limit, remaining: 0, reset_secs: to_next_minute })
    }
}

impl Verdict {
    /// `RateLimit-*` (IETF draft) and, when refused, `Retry-After`.
    pub fn headers(&self, headers: &mut axum::http::HeaderMap) {
        use axum::http::HeaderValue;
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset_secs));
        if !self.allowed {
            headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(self.reset_secs));
        }
    }

    /// The `429` error for a refused request: JSON naming what was limited,
    /// with `Retry-After` (a batch's item carries it as it is).
    pub fn error(&self, what: &str, field: &str) -> server::http::HttpError {
        server::http::HttpError {
            retry_after_secs: Some(self.reset_secs),
            ..server::http::HttpError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("{what}: at most {} requests a minute; retry in {} s", self.limit, self.reset_secs),
            )
            .with_field(field)
        }
    }

    /// [`Verdict::error`] as a response, with the `RateLimit-*` headers.
    pub fn refusal(&self, what: &str, field: &str) -> axum::response::Response {
        use axum::response::IntoResponse;
        let mut response = self.error(what, field).into_response();
        self.headers(response.headers_mut());
        response
    }
}

/// A limiter that cannot be read lets the request through: NATS trouble is
/// answered where it matters (an order that cannot be stored is a 503), not
/// by refusing as if over the limit.
pub fn allowed_on_error(result: Result<Verdict, AccessError>, limit: u32) -> Verdict {
    result.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "rate limit not checked");
        Verdict { allowed: true, limit, remaining: limit, reset_secs: 60 }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn counter_keys_are_valid_kv_keys_for_any_subject() {
        let key = super::counter_key("cust with spaces/and*wildcards>", 29_000_000);
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'), "{key}");
        assert_ne!(key, super::counter_key("cust with spaces/and*wildcards>", 29_000_001));
    }
}
