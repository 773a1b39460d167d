//! The one table of who may use which route. Every role's server applies it
//! through [`crate::authorize`]; a route not named here is admin-only, so a
//! new route is closed until someone decides otherwise.

use axum::http::Method;

use crate::Role;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without a key: health, metrics, the web page's
    /// files, the OpenAPI document, tracking links.
    Public,
    /// Any valid key.
    AnyKey,
    /// Producers (their own orders; the handler checks whose) and admins.
    Producer,
    /// Viewers, analysts and admins: the dashboards' aggregates.
    Viewer,
    /// Analysts and admins: SQL.
    Analyst,
    Admin,
}

impl Access {
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::AnyKey => true,
            Access::Producer => matches!(role, Role::Producer | Role::Admin),
            Access::Viewer => matches!(role, Role::Viewer | Role::Analyst | Role::Admin),
            Access::Analyst => matches!(role, Role::Analyst | Role::Admin),
            Access::Admin => role == Role::Admin,
        }
    }

    /// The roles it allows, for error messages.
    pub fn roles(self) -> String {
        let roles: Vec<&str> = Role::ALL.iter().filter(|r| self.allows(**r)).map(|r| r.as_str()).collect();
        roles.join(" or ")
    }
}

/// Which access `method path` needs.
pub fn route_access(method: &Method, path: &str) -> Access {
    // Operations, and the web page with its files: it must load to sign in.
    let Some(api) = path.strip_prefix("/api/") else { return Access::Public };
    // The first segments, without allocating (this runs on every request):
    // no pattern below names more than four, and a deeper path only meets
    // the `..` patterns, which match it whatever its length.
    let mut segments = [""; 5];
    let mut count = 0;
    for (slot, part) in segments.iter_mut().zip(api.split('/')) {
        *slot = part;
        count += 1;
    }
    let parts = &segments[..count];
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match parts {
        ["openapi.json"] | ["track", ..] => Access::Public,
        ["whoami"] | ["products"] if get => Access::AnyKey,
        // A product's "bought together" is catalog knowledge a storefront
        // (a producer key) may show; a customer's picks reveal what they
        // bought, so they are staff's.
        ["recommendations"] if get => Access::AnyKey,
        ["recommendations", "personalized"] if get => Access::Viewer,
        ["orders"] | ["orders", "batch"] if post => Access::Producer,
        // A customer's order list: customers' data, for admins.
        ["orders"] => Access::Admin,
        ["orders", _] | ["orders", _, "events" | "stream"] if get => Access::Producer,
        ["orders", _, "cancel"] if post => Access::Producer,
        ["sql"] if post => Access::Analyst,
        ["sql", "tables"] if get => Access::Analyst,
        // The fraud queue and an order's context name customers and places.
        ["dashboard", "fraud-queue" | "fraud-audit" | "fraud-context", ..] => Access::Admin,
        ["dashboard", ..] | ["analytics", ..] if get => Access::Viewer,
        _ => Access::Admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_kind_of_route() {
        let cases = [
            (Method::GET, "/healthz", Access::Public),
            (Method::GET, "/readyz", Access::Public),
            (Method::GET, "/metrics", Access::Public),
            (Method::GET, "/", Access::Public),
            (Method::GET, "/assets/app.js", Access::Public),
            (Method::GET, "/api/openapi.json", Access::Public),
            (Method::GET, "/api/track/t1.x", Access::Public),
            (Method::GET, "/api/track/t1.x/stream", Access::Public),
            (Method::POST, "/api/orders", Access::Producer),
            (Method::POST, "/api/orders/batch", Access::Producer),
            (Method::GET, "/api/orders", Access::Admin),
            (Method::GET, "/api/orders/abc", Access::Producer),
            (Method::GET, "/api/orders/abc/events", Access::Producer),
            (Method::GET, "/api/orders/abc/stream", Access::Producer),
            (Method::POST, "/api/orders/abc/cancel", Access::Producer),
            (Method::DELETE, "/api/orders/abc", Access::Admin),
            (Method::GET, "/api/products", Access::AnyKey),
            (Method::GET, "/api/ws/orders", Access::Admin),
            (Method::POST, "/api/sql", Access::Analyst),
            (Method::GET, "/api/sql/tables", Access::Analyst),
            (Method::GET, "/api/dashboard/summary", Access::Viewer),
            (Method::GET, "/api/dashboard/ws", Access::Viewer),
            (Method::GET, "/api/dashboard/fraud-stats", Access::Viewer),
            (Method::GET, "/api/dashboard/fraud-queue", Access::Admin),
            (Method::GET, "/api/dashboard/fraud-context/o", Access::Admin),
            (Method::GET, "/api/analytics/demand-forecast", Access::Viewer),
            (Method::GET, "/api/analytics/customers/segments", Access::Viewer),
            (Method::GET, "/api/recommendations", Access::AnyKey),
            (Method::GET, "/api/recommendations/personalized", Access::Viewer),
            (Method::POST, "/api/admin/orders/bulk", Access::Admin),
            (Method::GET, "/api/something-new", Access::Admin),
            (Method::GET, "/api/dashboard/a/b/c/d/e/f", Access::Viewer),
            (Method::GET, "/api/orders/a/events/b/c/d", Access::Admin),
        ];
        for (method, path, want) in cases {
            assert_eq!(route_access(&method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn admins_pass_everything_and_viewers_only_reads() {
        for access in [Access::Public, Access::AnyKey, Access::Producer, Access::Viewer, Access::Analyst, Access::Admin]
        {
            assert!(access.allows(Role::Admin));
        }
        assert!(!Access::Analyst.allows(Role::Viewer));
        assert!(!Access::Viewer.allows(Role::Producer));
        assert!(!Access::Producer.allows(Role::Analyst));
        assert_eq!(Access::Analyst.roles(), "admin or analyst");
    }
}
