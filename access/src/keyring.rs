//! The keys every process holds in memory, kept current by a watch on the
//! `API_KEYS` bucket: a key created or revoked anywhere is accepted or
//! refused everywhere within the watch's delay, without a restart.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::StreamExt;

use server::health::Health;

use crate::keys::{KEY_ENTRY_PREFIX, KeyRecord, list_keys};
use crate::{AccessError, Caller, Grant, Principal, Role, nats, sha256};

/// The name of the part `/readyz` lists.
const HEALTH_PART: &str = "access";
/// The principal `--admin-token` stands for.
const ADMIN_TOKEN_ID: &str = "admin-token";

#[derive(Default)]
struct KeyState {
    /// False until the keys were read once: until then nothing but public
    /// routes answers (a role that starts before NATS must not start open).
    loaded: bool,
    by_hash: HashMap<[u8; 32], Arc<Principal>>,
    /// Set by the first key ever seen (or an admin token), never unset.
    enforced: bool,
}

/// Why a request's key was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No key sent, while keys are required.
    Missing,
    /// A key that is not (or no longer) valid.
    Unknown,
    /// The keys are not read yet (NATS does not answer).
    NotLoaded,
}

#[derive(Clone)]
pub struct Keyring {
    state: Arc<RwLock<KeyState>>,
    health: Health,
}

fn principal(record: &KeyRecord) -> Arc<Principal> {
    Arc::new(Principal {
        id: record.id.as_str().into(),
        name: record.name.as_str().into(),
        role: record.role,
        grants: record.grants.clone(),
        rate_limit_per_minute: record.rate_limit_per_minute,
    })
}

fn parse_hash(entry_key: &str) -> Option<[u8; 32]> {
    let hex = entry_key.strip_prefix(KEY_ENTRY_PREFIX)?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Keyring {
    /// Loads every key, then follows the bucket. `admin_token` (the
    /// `--admin-token` flag) is one more admin key, and turns enforcement on.
    pub async fn open(
        js: &jetstream::Context,
        admin_token: Option<&str>,
        health: Health,
    ) -> Result<Keyring, AccessError> {
        let keyring = Keyring::pending(health, admin_token);
        keyring.load(js).await?;
        Ok(keyring)
    }

    /// A keyring that has not read the bucket yet: it accepts only the
    /// `--admin-token` (a credential configured locally) and refuses every
    /// other non-public request (503) until [`Keyring::load`] succeeds.
    pub fn pending(health: Health, admin_token: Option<&str>) -> Keyring {
        health.standby(HEALTH_PART, "API keys not read yet (waiting for NATS)");
        let keyring = Keyring { state: Arc::default(), health };
        if let Some(token) = admin_token {
            keyring.insert_admin_token(token);
        }
        keyring
    }

    /// Reads every key, then follows the bucket in the background.
    pub async fn load(&self, js: &jetstream::Context) -> Result<(), AccessError> {
        let bucket = js.get_key_value(broker::API_KEYS_BUCKET).await.map_err(|e| nats("open API_KEYS")(&e))?;
        let records = list_keys(&bucket).await?;
        for (entry_key, record) in &records {
            self.apply(entry_key, Some(record));
        }
        self.state.write().unwrap_or_else(PoisonError::into_inner).loaded = true;
        self.report();
        self.warn_if_open();
        let follower = self.clone();
        tokio::spawn(async move { follower.follow(bucket).await });
        Ok(())
    }

    /// A keyring of fixed keys (no bucket): for tests and tools.
    pub fn fixed(keys: &[(&str, KeyRecord)]) -> Keyring {
        let keyring = Keyring { state: Arc::default(), health: Health::new() };
        keyring.state.write().unwrap_or_else(PoisonError::into_inner).loaded = true;
        for (secret, record) in keys {
            let mut state = keyring.state.write().unwrap_or_else(PoisonError::into_inner);
            state.by_hash.insert(sha256(secret), principal(record));
            state.enforced = true;
            state.loaded = true;
        }
        keyring
    }

    fn insert_admin_token(&self, token: &str) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let admin = Principal {
            id: ADMIN_TOKEN_ID.into(),
            name: ADMIN_TOKEN_ID.into(),
            role: Role::Admin,
            grants: vec![Grant::Pii],
            rate_limit_per_minute: None,
        };
        state.by_hash.insert(sha256(token), Arc::new(admin));
        state.enforced = true;
    }

    /// Applies one bucket entry: a record (active or revoked) or a deletion.
    fn apply(&self, entry_key: &str, record: Option<&KeyRecord>) {
        let Some(hash) = parse_hash(entry_key) else { return };
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.enforced = true;
        match record {
            Some(record) if record.revoked_at.is_none() => {
                state.by_hash.insert(hash, principal(record));
            }
            _ => {
                state.by_hash.remove(&hash);
            }
        }
    }

    fn report(&self) {
        let (enforced, keys) = {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            (state.enforced, state.by_hash.len())
        };
        if enforced {
            self.health.ok(HEALTH_PART, format!("enforced: {keys} active API keys"));
        } else {
            self.health.ok(
                HEALTH_PART,
                "OPEN: no API key exists, so every route answers anyone; \
                 create one with `orderstream keys create --role admin`",
            );
        }
    }

    /// Follows the bucket until the process ends, reopening the watch after
    /// an error; meanwhile the keys last seen stay in force.
    async fn follow(self, bucket: kv::Store) {
        loop {
            match bucket.watch_with_history(format!("{KEY_ENTRY_PREFIX}>")).await {
                Ok(mut watch) => {
                    while let Some(entry) = watch.next().await {
                        let Ok(entry) = entry else { break };
                        let record = match entry.operation {
                            kv::Operation::Put => match serde_json::from_slice::<KeyRecord>(&entry.value) {
                                Ok(record) => Some(record),
                                Err(e) => {
                                    tracing::error!(key = %entry.key, error = %e, "unreadable key record; refused");
                                    None
                                }
                            },
                            kv::Operation::Delete | kv::Operation::Purge => None,
                        };
                        let was_open = !self.is_enforced();
                        self.apply(&entry.key, record.as_ref());
                        if was_open && self.is_enforced() {
                            tracing::warn!("the first API key exists: every route now needs a key");
                        }
                        self.report();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot watch the API keys; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    pub fn is_enforced(&self) -> bool {
        self.state.read().unwrap_or_else(PoisonError::into_inner).enforced
    }

    /// The caller a presented key stands for.
    pub fn resolve(&self, presented: Option<&str>) -> Result<Caller, Refusal> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        if state.loaded && !state.enforced {
            return Ok(Caller::Open);
        }
        let known = presented.and_then(|key| state.by_hash.get(&sha256(key)));
        match (known, presented) {
            (Some(principal), _) => Ok(Caller::Key(principal.clone())),
            // Not read yet: whether this key (or any) exists is unknown.
            (None, _) if !state.loaded => Err(Refusal::NotLoaded),
            (None, None) => Err(Refusal::Missing),
            (None, Some(_)) => Err(Refusal::Unknown),
        }
    }

    /// Says loudly, once at start-up, that access is open.
    fn warn_if_open(&self) {
        if !self.is_enforced() {
            tracing::warn!(
                "no API key exists: every route answers anyone. Create one with \
                 `orderstream keys create --role admin` (and producer, analyst or viewer keys)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_the_keys_are_read_only_the_admin_token_passes() {
        let pending = Keyring::pending(Health::new(), Some("local-admin"));
        assert!(matches!(pending.resolve(Some("local-admin")), Ok(Caller::Key(p)) if p.role == Role::Admin));
        assert_eq!(pending.resolve(None), Err(Refusal::NotLoaded));
        assert_eq!(pending.resolve(Some("osk_other")), Err(Refusal::NotLoaded));
        assert_eq!(Keyring::pending(Health::new(), None).resolve(None), Err(Refusal::NotLoaded), "never open");
    }

    #[test]
    fn a_revoked_key_is_refused_and_access_stays_closed() {
        let record = KeyRecord {
            id: "0123456789abcdef".into(),
            name: "shop".into(),
            role: Role::Producer,
            grants: vec![],
            rate_limit_per_minute: None,
            created_at: chrono::Utc::now(),
            revoked_at: None,
        };
        let keyring = Keyring::fixed(&[]);
        keyring.state.write().unwrap_or_else(PoisonError::into_inner).enforced = false;
        assert_eq!(keyring.resolve(None), Ok(Caller::Open));
        let entry = crate::keys::entry_key(&sha256("osk_shop"));
        keyring.apply(&entry, Some(&record));
        assert!(matches!(keyring.resolve(Some("osk_shop")), Ok(Caller::Key(p)) if p.role == Role::Producer));
        assert_eq!(keyring.resolve(None), Err(Refusal::Missing));
        let revoked = KeyRecord { revoked_at: Some(chrono::Utc::now()), ..record };
        keyring.apply(&entry, Some(&revoked));
        assert_eq!(keyring.resolve(Some("osk_shop")), Err(Refusal::Unknown));
        assert_eq!(keyring.resolve(None), Err(Refusal::Missing), "still closed with no active key");
    }
}
