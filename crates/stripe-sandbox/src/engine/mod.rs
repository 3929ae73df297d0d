//! The billing behaviour: what Stripe does with customers, cards, subscriptions, invoices,
//! payments, Checkout, the portal and test clocks. No HTTP and no HTML: the API and the
//! hosted pages parse what they receive into the plain values these functions take.

pub mod cards;
pub mod catalog;
pub mod checkout;
pub mod clocks;
pub mod coupons;
pub mod customers;
pub mod disputes;
pub mod invoices;
pub mod lifecycle;
pub mod meters;
pub mod objects;
pub mod payment_methods;
pub mod payments;
pub mod portal;
pub mod subscriptions;
pub mod tax;
