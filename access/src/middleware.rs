//! The layer every role's server puts in front of its routes: finds the
//! caller from `Authorization: Bearer <key>`, checks [`route_access`], and
//! leaves the [`Caller`] for the handlers (which check whose order it is).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use server::http::HttpError;

use crate::keyring::Refusal;
use crate::{Access, Caller, Keyring, route_access};

/// The key a request presents. Browsers cannot set headers on a WebSocket
/// or an `EventSource`, so those two may send it as `?access_token=`;
/// no other request may (a key in a URL ends up in logs).
fn presented_key(request: &Request) -> Option<String> {
    let headers = request.headers();
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return Some(value.strip_prefix("Bearer ").unwrap_or(value).trim().to_string());
    }
    let upgrade = headers.get(header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let sse =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/event-stream"));
    if !(upgrade || sse) {
        return None;
    }
    let query = request.uri().query()?;
    query.split('&').find_map(|pair| pair.strip_prefix("access_token=")).map(percent_decoded)
}

/// A query value as the browser's `encodeURIComponent` wrote it (`%XX`, and
/// `+` for a space); a malformed escape is kept as it is.
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| value.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (byte, None) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the layer needs: the keys, and where per-key limits are counted.
#[derive(Clone)]
pub struct Gate {
    pub keyring: Keyring,
    pub limiter: Option<crate::RateLimiter>,
    /// Where admin actions are recorded (`ADMIN_AUDIT`); none: not recorded.
    pub audit: Option<async_nats::jetstream::Context>,
}

/// Whether a request to an admin route is an action to record: anything
/// that changes something, and exports (data leaving the system).
fn is_admin_action(method: &axum::http::Method, path: &str) -> bool {
    path.starts_with("/api/admin/")
        && (method != axum::http::Method::GET || path.contains("/export") || path.ends_with("/download"))
}

/// Appends the record of one admin action; a failure is logged, not
/// answered (the action itself is done and recorded in its own stream).
pub async fn record_admin_action(js: &async_nats::jetstream::Context, action: &schemas::audit::AdminAction) {
    let Ok(payload) = serde_json::to_vec(action) else { return };
    let subject = broker::admin_audit_subject(&action.action);
    let sent = async {
        js.publish(subject, payload.into()).await.map_err(|e| e.to_string())?.await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), sent).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, action = %action.action, "cannot record an admin action"),
        Err(_) => tracing::error!(action = %action.action, "timed out recording an admin action"),
    }
}

pub async fn authorize(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let keyring = &gate.keyring;
    let access = route_access(request.method(), request.uri().path());
    if access == Access::Public {
        return next.run(request).await;
    }
    let caller = match keyring.resolve(presented_key(&request).as_deref()) {
        Ok(caller) => caller,
        Err(Refusal::NotLoaded) => {
            return HttpError::unavailable("the API keys are not read yet: NATS does not answer", 2).into_response();
        }
        Err(refusal) => {
            let message = match refusal {
                Refusal::Unknown => "this API key is not valid (unknown or revoked)",
                _ => "this route needs an API key: send Authorization: Bearer <key>",
            };
            let mut response = HttpError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
                .with_field("Authorization")
                .into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    };
    if let Caller::Key(principal) = &caller
        && !access.allows(principal.role)
    {
        return HttpError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "a {} key cannot {} {}: it needs a {} key",
                principal.role,
                request.method(),
                request.uri().path(),
                access.roles()
            ),
        )
        .with_field("Authorization")
        .into_response();
    }
    // A key's own limit, counted across every instance.
    let limited = match (&caller, &gate.limiter) {
        (Caller::Key(p), Some(limiter)) => p.rate_limit_per_minute.map(|limit| (limiter, limit, p.id.clone())),
        _ => None,
    };
    let verdict = match limited {
        Some((limiter, limit, id)) => {
            let verdict =
                crate::allowed_on_error(limiter.check(&format!("key:{id}"), limit, chrono::Utc::now()).await, limit);
            if !verdict.allowed {
                return verdict.refusal("this API key", "Authorization");
            }
            Some(verdict)
        }
        None => None,
    };
    let audited = match &gate.audit {
        Some(js) if is_admin_action(request.method(), request.uri().path()) => {
            let (method, path) = (request.method().to_string(), request.uri().path().to_string());
            Some((js.clone(), method, path, caller.actor()))
        }
        _ => None,
    };
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    if let Some(verdict) = verdict {
        verdict.headers(response.headers_mut());
    }
    if let Some((js, method, path, actor)) = audited {
        let action = schemas::audit::AdminAction {
            at: chrono::Utc::now(),
            actor,
            action: schemas::audit::AdminAction::action_of(&method, &path).to_string(),
            target: format!("{method} {path}"),
            status: Some(response.status().as_u16()),
        };
        record_admin_action(&js, &action).await;
    }
    response
}

/// `GET /api/whoami`: the caller's role, for the web page to show only what
/// it may use.
pub async fn whoami(State(keyring): State<Keyring>, caller: Caller) -> Response {
    match caller.principal() {
        None => Json(json!({"enforced": keyring.is_enforced(), "role": "admin", "open": true})).into_response(),
        Some(p) => Json(json!({
            "enforced": true,
            "open": false,
            "id": &*p.id,
            "name": &*p.name,
            "role": p.role,
            "grants": p.grants,
        }))
        .into_response(),
    }
}

/// The content security policy of the web page: its own scripts and
/// styles only (no inline script), never framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Security headers on every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Where browsers on other origins may call the API from (`--cors-origin`);
/// none by default, which sends no CORS headers at all.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let any = origins.iter().any(|o| o == "*");
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let origin = if any { AllowOrigin::any() } else { AllowOrigin::list(allowed) };
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                header::HeaderName::from_static("idempotent-replayed"),
            ]),
    )
}

/// Puts `router` behind the keys: `/api/whoami`, [`authorize`] on every
/// route (fallbacks included), CORS when configured, security headers.
pub fn protect(router: axum::Router, gate: Gate, cors_origins: &[String]) -> axum::Router {
    let whoami = axum::Router::new().route("/api/whoami", axum::routing::get(whoami)).with_state(gate.keyring.clone());
    let router = router.merge(whoami).layer(axum::middleware::from_fn_with_state(gate, authorize));
    let router = match cors(cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    };
    router.layer(axum::middleware::from_fn(security_headers))
}

#[cfg(test)]
mod tests {
    use super::percent_decoded;

    #[test]
    fn access_tokens_are_read_as_the_browser_encoded_them() {
        assert_eq!(percent_decoded("osk_0a1b"), "osk_0a1b");
        assert_eq!(percent_decoded("s%2Fcr%3Dt%26x"), "s/cr=t&x");
        assert_eq!(percent_decoded("a+b%20c"), "a b c");
        assert_eq!(percent_decoded("bad%zz%4"), "bad%zz%4", "a malformed escape is kept");
    }
}
