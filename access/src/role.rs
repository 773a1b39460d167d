//! The roles a key can have, and the grants that widen one.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A storefront service: creates orders, reads and cancels its own.
    Producer,
    /// Everything: reviews, bulk actions, stock, DLQ, exports, customers' data.
    Admin,
    /// SQL over the lake (PII masked without the `pii` grant), and the dashboards.
    Analyst,
    /// The dashboards' aggregates, read only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Producer, Role::Admin, Role::Analyst, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role {s:?}; one of {}", names.join(", "))
        })
    }
}

/// What a key may do beyond its role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// Sees the PII columns (`client_ip`, `city`) unmasked in SQL.
    Pii,
}

impl std::str::FromStr for Grant {
    type Err = String;

    fn from_str(s: &str) -> Result<Grant, String> {
        match s {
            "pii" => Ok(Grant::Pii),
            _ => Err(format!("unknown grant {s:?}; the one grant is pii")),
        }
    }
}
