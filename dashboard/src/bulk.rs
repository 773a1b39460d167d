//! `POST /api/admin/orders/bulk {action, order_ids}`: up to 100 orders at
//! once, each as a command through the ORDERS stream (the engine decides,
//! in log order, exactly as for a single request), with a result per order:
//! `applied` (the engine's event arrived), `rejected` (the engine refused,
//! with its reason), `duplicate` (the same action was already sent; JetStream
//! dropped it) or `queued` (durable in the log; no verdict within the
//! command timeout). Command ids derive from the order and the command, so
//! a retried bulk request sends nothing twice.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures::StreamExt;
use processor::commands::Verdict;
use schemas::{CancelReason, OrderCommand, OrderStatus};
use serde::{Deserialize, Serialize};
use server::http::{HttpError, json_body};
use uuid::Uuid;

use crate::Dashboard;

pub const MAX_BULK: usize = 100;

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// Cancel before shipping (stock released, refund if paid).
    Cancel,
    /// Move a confirmed or processing order to shipped.
    MarkShipped,
    /// Move a confirmed, processing or shipped order to delivered (the
    /// carrier's confirmation, entered by hand).
    MarkDelivered,
}

/// The steps an admin moves a paid order along, in order: each is one
/// `Advance` command, and an order already past a step refuses it and
/// takes the next.
const FULFILMENT: [OrderStatus; 4] =
    [OrderStatus::Confirmed, OrderStatus::Processing, OrderStatus::Shipped, OrderStatus::Delivered];

impl BulkAction {
    pub const ALL: [BulkAction; 3] = [BulkAction::Cancel, BulkAction::MarkShipped, BulkAction::MarkDelivered];

    pub fn name(self) -> &'static str {
        match self {
            BulkAction::Cancel => "cancel",
            BulkAction::MarkShipped => "mark_shipped",
            BulkAction::MarkDelivered => "mark_delivered",
        }
    }

    /// Where a fulfilment action leads.
    fn target(self) -> Option<OrderStatus> {
        match self {
            BulkAction::Cancel => None,
            BulkAction::MarkShipped => Some(OrderStatus::Shipped),
            BulkAction::MarkDelivered => Some(OrderStatus::Delivered),
        }
    }

    /// The states the action can apply to, from the one state machine: a
    /// customer's cancellation's, or the fulfilment steps before the target
    /// (each one a transition the state machine allows).
    pub fn allowed_from(self) -> Vec<OrderStatus> {
        match self.target() {
            None => CancelReason::CustomerCancelled.allowed_from().to_vec(),
            Some(target) => {
                let end = FULFILMENT.iter().position(|s| *s == target).unwrap_or(0);
                debug_assert!(FULFILMENT.windows(2).all(|w| w[0].next_states().contains(&w[1])));
                FULFILMENT[..end].to_vec()
            }
        }
    }

    /// The commands that carry an order to the target, from the first step
    /// after confirmed.
    fn commands(self) -> Vec<OrderCommand> {
        match self.target() {
            None => vec![OrderCommand::Cancel { reason: CancelReason::CustomerCancelled }],
            Some(target) => FULFILMENT
                .iter()
                .skip(1)
                .take_while(|s| **s != target)
                .chain(std::iter::once(&target))
                .map(|to| OrderCommand::Advance { to: *to })
                .collect(),
        }
    }
}

/// A status and where it may go next.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusStep {
    pub status: OrderStatus,
    pub next: Vec<OrderStatus>,
    pub terminal: bool,
}

/// The state machine as the page needs it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Contract {
    pub statuses: Vec<StatusStep>,
    /// Each bulk action and the statuses it applies to.
    pub actions: std::collections::BTreeMap<&'static str, Vec<OrderStatus>>,
    pub max_bulk: usize,
}

/// `GET /api/dashboard/statuses`: the statuses, their transitions and which
/// bulk action applies where, so the page offers only what can happen.
#[utoipa::path(
    get, path = "/api/dashboard/statuses", tag = "dashboard",
    responses((status = 200, body = Contract))
)]
pub async fn statuses() -> Json<Contract> {
    let statuses = OrderStatus::ALL
        .into_iter()
        .map(|s| StatusStep { status: s, next: s.next_states().to_vec(), terminal: s.next_states().is_empty() })
        .collect();
    let actions = BulkAction::ALL.into_iter().map(|a| (a.name(), a.allowed_from())).collect();
    Json(Contract { statuses, actions, max_bulk: MAX_BULK })
}

/// What became of one order's action: the engine's [`Verdict`], or a
/// failure to send it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    Rejected,
    Duplicate,
    Queued,
    Failed,
}

/// What became of one order of a bulk request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkResult {
    pub order_id: Uuid,
    pub result: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<OrderStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl BulkResult {
    fn new(order_id: Uuid, result: Outcome) -> BulkResult {
        BulkResult { order_id, result, status: None, message: None }
    }

    fn because(mut self, message: impl Into<String>) -> BulkResult {
        self.message = Some(message.into());
        self
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkAnswer {
    pub action: &'static str,
    pub applied: usize,
    pub rejected: usize,
    pub queued: usize,
    pub duplicate: usize,
    pub failed: usize,
    pub results: Vec<BulkResult>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    action: BulkAction,
    order_ids: Vec<String>,
}

#[utoipa::path(
    post, path = "/api/admin/orders/bulk", tag = "admin",
    responses((status = 200, description = "a result per order: applied, rejected (with why), duplicate, queued or failed", body = BulkAnswer), (status = 422, body = schemas::ApiError))
)]
pub async fn bulk(
    State(state): State<Dashboard>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<BulkAnswer>, HttpError> {
    let request: BulkRequest = json_body(&headers, body, state.settings.max_body_bytes).await?;
    let invalid = |field: String, message: &str| {
        HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message).with_field(field)
    };
    if request.order_ids.is_empty() || request.order_ids.len() > MAX_BULK {
        return Err(invalid("order_ids".into(), "order_ids holds 1 to 100 order ids"));
    }
    let mut ids = Vec::with_capacity(request.order_ids.len());
    for (i, raw) in request.order_ids.iter().enumerate() {
        let id = Uuid::parse_str(raw).map_err(|_| invalid(format!("order_ids[{i}]"), "order ids are UUIDs"))?;
        if ids.contains(&id) {
            return Err(invalid(format!("order_ids[{i}]"), "an order id appears twice"));
        }
        ids.push(id);
    }
    let results: Vec<BulkResult> = futures::stream::iter(ids)
        .map(|id| {
            let state = state.clone();
            async move { one(&state, id, request.action).await }
        })
        .buffered(16)
        .collect()
        .await;
    let count = |r: Outcome| results.iter().filter(|v| v.result == r).count();
    Ok(Json(BulkAnswer {
        action: request.action.name(),
        applied: count(Outcome::Applied),
        rejected: count(Outcome::Rejected),
        queued: count(Outcome::Queued),
        duplicate: count(Outcome::Duplicate),
        failed: count(Outcome::Failed),
        results,
    }))
}

/// Sends the action's command(s) for one order and waits for the verdict
/// (the engine's one protocol: [`processor::commands::send_and_await`]).
async fn one(state: &Dashboard, id: Uuid, action: BulkAction) -> BulkResult {
    let answer = action.target().unwrap_or(OrderStatus::Cancelled);
    let verdict = processor::commands::send_and_await(
        &state.client,
        &state.js,
        id,
        &action.commands(),
        &[answer],
        state.settings.command_timeout,
    )
    .await;
    match verdict {
        Ok(Verdict::Applied(to)) => BulkResult { status: Some(to), ..BulkResult::new(id, Outcome::Applied) },
        Ok(Verdict::Rejected { status, message }) => {
            BulkResult { status: Some(status), ..BulkResult::new(id, Outcome::Rejected) }.because(message)
        }
        Ok(Verdict::Duplicate) => {
            BulkResult::new(id, Outcome::Duplicate).because("this action was already sent for this order")
        }
        Ok(Verdict::Queued) => {
            BulkResult::new(id, Outcome::Queued).because("durable in the log; the verdict is on its way")
        }
        Err(e) => BulkResult::new(id, Outcome::Failed).because(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_apply_where_the_state_machine_allows() {
        use OrderStatus::*;
        assert_eq!(BulkAction::MarkShipped.allowed_from(), [Confirmed, Processing]);
        assert_eq!(BulkAction::MarkDelivered.allowed_from(), [Confirmed, Processing, Shipped]);
        assert_eq!(
            BulkAction::MarkDelivered.commands(),
            [Processing, Shipped, Delivered].map(|to| OrderCommand::Advance { to })
        );
        assert!(!BulkAction::Cancel.allowed_from().contains(&Shipped));
        assert!(!BulkAction::Cancel.allowed_from().contains(&Cancelled));
    }
}
