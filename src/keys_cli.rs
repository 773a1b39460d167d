//! `orderstream keys create|list|revoke`, and the access flags every
//! serving role takes.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::nats_args::NatsArgs;

#[derive(Args, Debug, Clone, Default)]
pub struct AccessArgs {
    /// One more admin key, given on the command line (kept for deployments
    /// that used it; prefer `orderstream keys create --role admin`). Setting
    /// it turns key enforcement on for every route, as a created key does.
    #[arg(long, env = "ORDERSTREAM_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// How long the tracking link of an accepted order stays valid, in
    /// seconds (default 90 days).
    #[arg(long, env = "ORDERSTREAM_TRACKING_TTL_SECS", default_value_t = access::DEFAULT_TRACKING_TTL.as_secs())]
    pub tracking_ttl_secs: u64,
    /// An origin whose web pages may call the API (CORS), e.g.
    /// `https://shop.example.com`; repeat for more, `*` for any. None by
    /// default: no CORS headers.
    #[arg(long = "cors-origin", env = "ORDERSTREAM_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

impl AccessArgs {
    pub fn tracking_ttl(&self) -> Duration {
        Duration::from_secs(self.tracking_ttl_secs.max(1))
    }
}

/// What a serving role puts in front of its routes.
#[derive(Clone)]
pub struct Guard {
    pub keyring: access::Keyring,
    /// Where per-key rate limits are counted (none: not enforced here).
    pub limiter: Option<access::RateLimiter>,
    /// Where admin actions are recorded.
    pub audit: Option<async_nats::jetstream::Context>,
    pub cors_origins: Vec<String>,
}

impl Guard {
    pub fn protect(&self, router: axum::Router) -> axum::Router {
        let gate =
            access::Gate { keyring: self.keyring.clone(), limiter: self.limiter.clone(), audit: self.audit.clone() };
        access::protect(router, gate, &self.cors_origins)
    }
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Creates a key and prints it once (only its hash is stored). The
    /// first key turns enforcement on for every route of every role.
    Create {
        /// producer, admin, analyst or viewer.
        #[arg(long)]
        role: access::Role,
        /// A name to list and revoke it by (default: role and id).
        #[arg(long)]
        name: Option<String>,
        /// `pii`: an analyst key sees client_ip and city unmasked.
        #[arg(long = "grant")]
        grants: Vec<access::Grant>,
        /// Requests per minute this key may make (default: unlimited).
        #[arg(long)]
        rate_limit: Option<u32>,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Every key: id, name, role, grants, created, revoked.
    List {
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Revokes a key by id or name; every process refuses it within a second.
    Revoke {
        id_or_name: String,
        #[command(flatten)]
        nats: NatsArgs,
    },
}

/// Records a key change made from the command line in `ADMIN_AUDIT`.
async fn audit(client: &async_nats::Client, action: &str, key: &access::KeyRecord) {
    let record = schemas::audit::AdminAction {
        at: chrono::Utc::now(),
        actor: "cli".to_string(),
        action: action.to_string(),
        target: format!("{} key {:?} ({})", key.role, key.name, key.id),
        status: None,
    };
    access::record_admin_action(&async_nats::jetstream::new(client.clone()), &record).await;
}

async fn bucket(nats: &NatsArgs) -> Result<(async_nats::Client, async_nats::jetstream::kv::Store)> {
    let client = nats.connect("orderstream-keys").await?;
    let js = async_nats::jetstream::new(client.clone());
    broker::ensure_topology(&js, &nats.topology()).await?;
    let store = js.get_key_value(broker::API_KEYS_BUCKET).await.context("opening the API_KEYS bucket")?;
    Ok((client, store))
}

pub async fn run(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create { role, name, grants, rate_limit, nats } => {
            let (client, store) = bucket(&nats).await?;
            let created = access::create_key(&store, name.as_deref(), role, grants, rate_limit).await?;
            audit(&client, "key_create", &created.record).await;
            let r = &created.record;
            println!("{}", created.secret);
            eprintln!(
                "created {} key {:?} (id {}); it is shown once: send it as `Authorization: Bearer <key>`",
                r.role, r.name, r.id
            );
            Ok(())
        }
        KeysCommand::List { nats } => {
            let (_client, store) = bucket(&nats).await?;
            println!(
                "{:<17} {:<24} {:<9} {:<6} {:<9} {:<25} revoked",
                "id", "name", "role", "grants", "limit/min", "created"
            );
            for (_, r) in access::list_keys(&store).await? {
                let grants: Vec<String> = r.grants.iter().map(|g| format!("{g:?}").to_lowercase()).collect();
                println!(
                    "{:<17} {:<24} {:<9} {:<6} {:<9} {:<25} {}",
                    r.id,
                    r.name,
                    r.role,
                    grants.join(","),
                    r.rate_limit_per_minute.map_or_else(|| "-".to_string(), |n| n.to_string()),
                    r.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    r.revoked_at
                        .map_or_else(|| "-".to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id_or_name, nats } => {
            let (client, store) = bucket(&nats).await?;
            let record = access::revoke_key(&store, &id_or_name).await?;
            audit(&client, "key_revoke", &record).await;
            println!("revoked {} key {:?} (id {})", record.role, record.name, record.id);
            Ok(())
        }
    }
}
