//! The record of one admin action, as the `ADMIN_AUDIT` stream keeps it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminAction {
    pub at: DateTime<Utc>,
    /// The key's name and id (`ops (3f2a…)`), or `cli` for the command line.
    pub actor: String,
    /// `review`, `bulk`, `stock`, `dlq_retry`, `export`, `key_create`, ...
    pub action: String,
    /// What it was done to: the route (`POST /api/admin/orders/…/review`),
    /// or the key's name for a key change.
    pub target: String,
    /// The HTTP status answered (absent for the command line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl AdminAction {
    /// The action a route stands for, from its path.
    pub fn action_of(method: &str, path: &str) -> &'static str {
        let parts: Vec<&str> = path.trim_start_matches("/api/admin/").split('/').collect();
        match (method, parts.as_slice()) {
            (_, ["orders", _, "review"]) => "review",
            (_, ["orders", "bulk"]) => "bulk",
            (_, ["orders", "export"]) | (_, ["exports", ..]) => "export",
            (_, ["products", _, "stock"]) => "stock",
            (_, ["dlq", _, "retry"]) => "dlq_retry",
            (_, ["load-test"]) => "load_test",
            _ => "admin",
        }
    }
}
