//! Stripe's HTTP dialect: secret-key auth, form-encoded bracket parameters, error JSON,
//! lists, Idempotency-Key replay, and the dashboard's token gate. The lowest layer with the store: everything above
//! speaks through these types.

mod accepts;
mod error;
mod extract;
mod gate;
mod idempotency;

pub use accepts::{accepts, lists, ApiCall};
pub use error::{ApiResult, StripeError};
pub use extract::{int_of, str_of, Account, Page, Params, RequestId, RequestInfo, MAX_BODY};
pub use gate::{require_dashboard_token, DashboardGate};
pub use idempotency::idempotency;
