//! Who is calling: a key's principal, or anyone while access is open.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::{Grant, Role};

/// A key's identity as the routes see it (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Stable and public: what orders record as their producer.
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub role: Role,
    pub grants: Vec<Grant>,
    /// Requests a minute this key may make, across every instance.
    pub rate_limit_per_minute: Option<u32>,
}

/// The caller of a request, put in its extensions by [`crate::authorize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No key exists yet: everyone may do everything.
    Open,
    Key(Arc<Principal>),
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Open => None,
            Caller::Key(p) => Some(p),
        }
    }

    /// The key id an order records as its producer (any key that posts it).
    pub fn key_id(&self) -> Option<&str> {
        self.principal().map(|p| &*p.id)
    }

    /// Whether this caller may read or cancel an order `producer` created:
    /// producers only their own, admins (and everyone while open) any.
    pub fn may_touch_order(&self, producer: Option<&str>) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(p) if p.role == Role::Producer => producer == Some(&*p.id),
            Caller::Key(p) => p.role == Role::Admin,
        }
    }

    /// Whether customers' data (who ordered what) is shown: admins, and
    /// everyone while access is open.
    pub fn sees_customers(&self) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(p) => p.role == Role::Admin,
        }
    }

    /// Whether PII columns are shown unmasked: admins, keys with the `pii`
    /// grant, and everyone while open.
    pub fn sees_pii(&self) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(p) => p.role == Role::Admin || p.grants.contains(&Grant::Pii),
        }
    }

    /// The name to record for an admin action.
    pub fn actor(&self) -> String {
        match self {
            Caller::Open => "anonymous (no API keys)".to_string(),
            Caller::Key(p) => format!("{} ({})", p.name, p.id),
        }
    }
}

/// Reads the caller [`crate::authorize`] left; a router served without it
/// (a crate's own tests) has no access control, which is [`Caller::Open`].
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, Self::Rejection> {
        Ok(parts.extensions.get::<Caller>().cloned().unwrap_or(Caller::Open))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(role: Role, id: &str) -> Caller {
        Caller::Key(Arc::new(Principal {
            id: id.into(),
            name: "n".into(),
            role,
            grants: vec![],
            rate_limit_per_minute: None,
        }))
    }

    #[test]
    fn producers_touch_only_their_own_orders() {
        assert!(key(Role::Producer, "a").may_touch_order(Some("a")));
        assert!(!key(Role::Producer, "a").may_touch_order(Some("b")));
        assert!(!key(Role::Producer, "a").may_touch_order(None));
        assert!(key(Role::Admin, "z").may_touch_order(Some("b")));
        assert!(!key(Role::Viewer, "v").may_touch_order(Some("v")));
        assert!(Caller::Open.may_touch_order(None));
    }

    #[test]
    fn pii_needs_admin_or_the_grant() {
        assert!(!key(Role::Analyst, "a").sees_pii());
        let granted = Caller::Key(Arc::new(Principal {
            id: "a".into(),
            name: "n".into(),
            role: Role::Analyst,
            grants: vec![Grant::Pii],
            rate_limit_per_minute: None,
        }));
        assert!(granted.sees_pii());
        assert!(key(Role::Admin, "z").sees_pii());
    }
}
