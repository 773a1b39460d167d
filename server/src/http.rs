//! The HTTP face of [`ApiError`](schemas::ApiError): every error any route
//! returns, with its status, as JSON `{error, message, field?}`, and the
//! checks every JSON-taking route applies to its body.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use schemas::{ApiError, DecodeError, FieldError};

#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub body: ApiError,
    pub retry_after_secs: Option<u32>,
}

impl HttpError {
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        HttpError {
            status,
            body: ApiError { error: error.to_string(), message: message.into(), field: None, order_id: None },
            retry_after_secs: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.body.field = (!field.is_empty()).then_some(field);
        self
    }

    pub fn invalid(err: FieldError) -> Self {
        HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", err.message).with_field(err.field)
    }

    pub fn bad_id(field: &str) -> Self {
        HttpError::new(StatusCode::BAD_REQUEST, "invalid_id", "order ids are UUIDs").with_field(field)
    }

    pub fn not_found(what: &str) -> Self {
        HttpError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn conflict(error: &str, message: impl Into<String>) -> Self {
        HttpError::new(StatusCode::CONFLICT, error, message)
    }

    pub fn unavailable(message: impl Into<String>, retry_after_secs: u32) -> Self {
        HttpError {
            retry_after_secs: Some(retry_after_secs),
            ..HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }
}

impl From<DecodeError> for HttpError {
    fn from(err: DecodeError) -> Self {
        match err {
            DecodeError::Malformed(message) => HttpError::new(StatusCode::BAD_REQUEST, "malformed_json", message),
            DecodeError::Invalid(field) => HttpError::invalid(field),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Checks the content type (415) and size (413), then reads the body.
pub async fn read_json_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, HttpError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media_type != "application/json" {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send Content-Type: application/json (got {content_type:?})"),
        )
        .with_field("Content-Type"));
    }
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    if !encoding.trim().eq_ignore_ascii_case("identity") {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("Content-Encoding {encoding:?} is not accepted: send the JSON uncompressed"),
        )
        .with_field("Content-Encoding"));
    }
    let too_large = || {
        HttpError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the body exceeds {limit} bytes"))
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|_| too_large())
}

/// Reads and decodes a JSON body in one step.
pub async fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, HttpError> {
    let bytes = read_json_body(headers, body, limit).await?;
    Ok(schemas::decode_json(&bytes)?)
}

/// A query string decoded into `T`, or a JSON 400 naming what is wrong
/// (axum's own rejection is plain text).
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, HttpError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(e) => Err(HttpError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e.body_text())),
        }
    }
}

/// Path parameters decoded into `T`, or a JSON 400 (a segment that is not
/// UTF-8 once percent-decoded, say).
pub struct Path<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, HttpError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(e) => Err(HttpError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text())),
        }
    }
}

/// A WebSocket handshake, or a JSON 426 for a plain HTTP request.
pub struct WebSocketUpgrade(pub axum::extract::ws::WebSocketUpgrade);

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, HttpError> {
        match axum::extract::ws::WebSocketUpgrade::from_request_parts(parts, state).await {
            Ok(upgrade) => Ok(WebSocketUpgrade(upgrade)),
            Err(e) => Err(HttpError::new(
                StatusCode::UPGRADE_REQUIRED,
                "websocket_required",
                format!("this route is a WebSocket: connect with a WebSocket client ({})", e.body_text()),
            )),
        }
    }
}

pub async fn not_found_route() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "not_found", "no such route; see /api/openapi.json")
}

pub async fn method_not_allowed() -> HttpError {
    HttpError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
}
