//! The orderstream domain in one place: money, orders, the status state
//! machine, events, and the HTTP request/response bodies with their
//! validation. No other crate declares a status, an order, or a rule.

pub mod amount;
pub mod api;
pub mod audit;
pub mod command;
pub mod currency;
pub mod customers;
pub mod event;
pub mod forecast;
pub mod fraud;
pub mod money;
pub mod order;
pub mod product;
pub mod records;
pub mod rfc3339;
#[cfg(feature = "arrow")]
pub mod rollups;
pub mod sql;
pub mod status;
#[cfg(feature = "arrow")]
pub mod tables;
pub mod validate;

pub use amount::Amount;
pub use api::{
    ApiError, BatchItemResult, BatchRequest, BatchResponse, CreateOrderRequest, OrderAccepted, OrderItemRequest,
    OrderItemView, OrderView, StatusTime,
};
pub use command::{
    ListPrice, MAX_STOCK_UNITS, OrderCommand, OrderCommandEnvelope, ReviewDecision, StockChange, StockCommand,
    StockEvent, StockLevel, stock_event_id,
};
pub use currency::Currency;
pub use event::{EventKind, EventPayload, OrderEvent, status_event_id};
pub use money::{MinorUnits, MoneyError, TaxRate};
pub use order::{Address, LinePrice, NewOrder, Order, OrderItem, OrderState, PaymentMethod};
pub use product::{Product, ProductView};
pub use status::{CancelReason, OrderStatus, TransitionError, check_transition};
pub use validate::{DecodeError, FieldError, decode_json, validate_idempotency_key, validate_order};
