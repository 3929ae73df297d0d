//! Stripe's HTTP dialect: secret-key auth, form-encoded bracket parameters, error JSON,
//! lists, and Idempotency-Key replay. The lowest layer with the store: everything above
//! speaks through these types.

mod error;
mod extract;
mod idempotency;

pub use error::{ApiResult, StripeError};
pub use extract::{int_of, str_of, Account, Page, Params, RequestInfo};
pub use idempotency::idempotency;
