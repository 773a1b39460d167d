//! Ingest's errors as HTTP: the shared [`HttpError`] plus what intake adds.

use axum::http::StatusCode;
pub use schemas::http::HttpError;

use crate::intake::IntakeError;

pub fn from_intake(err: IntakeError, retry_after_secs: u32) -> HttpError {
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
