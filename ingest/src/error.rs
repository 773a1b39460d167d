//! Every HTTP error is JSON `{error, message, field?}` with the right status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemas::{ApiError, DecodeError, FieldError};

use crate::intake::IntakeError;

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
            body: ApiError { error: error.to_string(), message: message.into(), field: None },
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

    pub fn not_found(what: &str) -> Self {
        HttpError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn unavailable(message: impl Into<String>, retry_after_secs: u32) -> Self {
        HttpError {
            retry_after_secs: Some(retry_after_secs),
            ..HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }

    pub fn from_intake(err: IntakeError, retry_after_secs: u32) -> Self {
        match err {
            IntakeError::Invalid(field) => HttpError::invalid(field),
            IntakeError::KeyReused => HttpError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body",
            )
            .with_field("Idempotency-Key"),
            IntakeError::Unavailable(why) => HttpError::unavailable(
                format!("the order was not accepted ({why}); retry with the same Idempotency-Key"),
                retry_after_secs,
            ),
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
