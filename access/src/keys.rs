//! Creating, listing and revoking keys. The bucket holds each key's SHA-256
//! (under `key.<hex>`) with its record, never the key: a key is 256 random
//! bits, so an unsalted hash cannot be reversed by guessing. Revoking keeps
//! the record (with when), so the bucket never empties and access never
//! silently reopens.

use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AccessError, Grant, Role, hex, nats, random_bytes, sha256};

/// The prefix of every key: recognisable in a log or a leaked file.
pub const KEY_PREFIX: &str = "osk_";
/// Bucket entries that are keys.
pub(crate) const KEY_ENTRY_PREFIX: &str = "key.";

/// What the bucket stores per key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The first 16 hex digits of the key's hash: stable, public.
    pub id: String,
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
    /// Requests per minute this key may make (unset: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new key: the secret is shown once and stored nowhere.
pub struct CreatedKey {
    pub secret: String,
    pub record: KeyRecord,
}

pub(crate) fn entry_key(hash: &[u8; 32]) -> String {
    format!("{KEY_ENTRY_PREFIX}{}", hex(hash))
}

fn check_name(name: &str) -> Result<(), AccessError> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(AccessError::Invalid(format!(
            "key name {name:?}: 1 to 64 characters of letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(())
}

/// Every key ever created, revoked ones included, oldest first.
pub async fn list_keys(bucket: &kv::Store) -> Result<Vec<(String, KeyRecord)>, AccessError> {
    use futures::TryStreamExt;
    let names: Vec<String> = bucket
        .keys()
        .await
        .map_err(|e| nats("list keys")(&e))?
        .try_collect()
        .await
        .map_err(|e| nats("list keys")(&e))?;
    let mut out = Vec::new();
    for entry_key in names.into_iter().filter(|k| k.starts_with(KEY_ENTRY_PREFIX)) {
        let Some(value) = bucket.get(&entry_key).await.map_err(|e| nats("read a key")(&e))? else { continue };
        let record: KeyRecord = serde_json::from_slice(&value)
            .map_err(|e| AccessError::Record { key: entry_key.clone(), message: e.to_string() })?;
        out.push((entry_key, record));
    }
    out.sort_by(|a, b| a.1.created_at.cmp(&b.1.created_at).then_with(|| a.1.id.cmp(&b.1.id)));
    Ok(out)
}

/// Creates a key. Names are unique among keys not revoked.
pub async fn create_key(
    bucket: &kv::Store,
    name: Option<&str>,
    role: Role,
    grants: Vec<Grant>,
    rate_limit_per_minute: Option<u32>,
) -> Result<CreatedKey, AccessError> {
    if rate_limit_per_minute == Some(0) {
        return Err(AccessError::Invalid("a rate limit is at least 1 request per minute".into()));
    }
    let secret = format!("{KEY_PREFIX}{}", hex(&random_bytes::<32>()?));
    let hash = sha256(&secret);
    let id = hex(&hash[..8]);
    let name = name.map_or_else(|| format!("{role}-{}", &id[..6]), str::to_string);
    check_name(&name)?;
    if list_keys(bucket).await?.iter().any(|(_, r)| r.name == name && r.revoked_at.is_none()) {
        return Err(AccessError::Invalid(format!("a key named {name:?} exists; revoke it or choose another name")));
    }
    let record = KeyRecord { id, name, role, grants, rate_limit_per_minute, created_at: Utc::now(), revoked_at: None };
    let value = serde_json::to_vec(&record).map_err(|e| AccessError::Invalid(e.to_string()))?;
    bucket.create(entry_key(&hash), value.into()).await.map_err(|e| nats("store the key")(&e))?;
    Ok(CreatedKey { secret, record })
}

/// Revokes the key with this id or name (not yet revoked); every process
/// stops accepting it as soon as its watch sees the change.
pub async fn revoke_key(bucket: &kv::Store, id_or_name: &str) -> Result<KeyRecord, AccessError> {
    let keys = list_keys(bucket).await?;
    let found = keys
        .into_iter()
        .filter(|(_, r)| r.revoked_at.is_none())
        .find(|(_, r)| r.id == id_or_name || r.name == id_or_name);
    let Some((entry_key, mut record)) = found else { return Err(AccessError::NoSuchKey(id_or_name.to_string())) };
    record.revoked_at = Some(Utc::now());
    let value = serde_json::to_vec(&record).map_err(|e| AccessError::Invalid(e.to_string()))?;
    bucket.put(entry_key, value.into()).await.map_err(|e| nats("revoke the key")(&e))?;
    Ok(record)
}
