//! Ingest's errors as HTTP: the shared [`HttpError`] plus what intake adds.

use axum::http::StatusCode;
pub use server::HttpError;

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
            format!("the order was not stored ({why}); retry (with the same Idempotency-Key, if it had one)"),
            retry_after_secs,
        ),
        IntakeError::Unknown { order_id, why } => {
            let mut error = HttpError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "ack_unknown",
                format!(
                    "JetStream did not confirm the order in time ({why}): it may have been stored. \
                     GET /api/orders/{order_id} says whether it was; a retry with the same Idempotency-Key \
                     returns this order either way"
                ),
            );
            error.body.order_id = Some(order_id);
            error.retry_after_secs = Some(retry_after_secs);
            error
        }
    }
}
