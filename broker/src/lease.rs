//! Leases: one holder at a time for a job that must run once per system
//! (the analytics job's consumers), as an entry in the lease bucket that
//! expires unless its holder renews it ([`LEASE_TTL`]).

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use thiserror::Error;

use crate::{LEASE_BUCKET, LEASE_TTL};

/// The analytics job's lease: its holder owns the `analytics-*` consumers.
pub const ANALYTICS_LEASE_KEY: &str = "analytics";

/// How often a holder renews: three times per [`LEASE_TTL`].
pub const LEASE_RENEW_EVERY: std::time::Duration = std::time::Duration::from_millis(1000);

#[derive(Debug, Error)]
pub enum LeaseError {
    #[error("cannot open the lease bucket: {0}")]
    Open(String),
    #[error("cannot take the lease {key}: {message}")]
    Take { key: String, message: String },
    #[error("lost the lease {key}: {message}")]
    Lost { key: String, message: String },
}

/// A lease this process holds.
pub struct Lease {
    kv: kv::Store,
    key: String,
    value: Bytes,
    revision: u64,
}

/// Whether a take succeeded.
pub enum Taken {
    Held(Box<Lease>),
    /// Someone else holds it; their value.
    ByOther(Bytes),
}

impl Lease {
    /// Takes `key` with `value` unless another holder has it.
    pub async fn take(js: &jetstream::Context, key: &str, value: Bytes) -> Result<Taken, LeaseError> {
        let kv = js.get_key_value(LEASE_BUCKET).await.map_err(|e| LeaseError::Open(e.to_string()))?;
        let take_error = |message: String| LeaseError::Take { key: key.to_string(), message };
        match kv.create(key, value.clone()).await {
            Ok(revision) => Ok(Taken::Held(Box::new(Lease { kv, key: key.to_string(), value, revision }))),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let holder = kv.get(key).await.map_err(|e| take_error(e.to_string()))?;
                Ok(Taken::ByOther(holder.unwrap_or_default()))
            }
            Err(e) => Err(take_error(e.to_string())),
        }
    }

    /// Renews the lease; an error means someone else may hold it now.
    pub async fn renew(&mut self) -> Result<(), LeaseError> {
        let renewed = tokio::time::timeout(LEASE_TTL / 2, self.kv.update(&self.key, self.value.clone(), self.revision))
            .await
            .map_err(|_| LeaseError::Lost { key: self.key.clone(), message: "NATS did not answer in time".into() })?;
        self.revision = renewed.map_err(|e| LeaseError::Lost { key: self.key.clone(), message: e.to_string() })?;
        Ok(())
    }

    /// Gives the lease back (only if still ours), so a successor need not
    /// wait for it to expire.
    pub async fn release(self) {
        let _ = self.kv.delete_expect_revision(&self.key, Some(self.revision)).await;
    }
}
