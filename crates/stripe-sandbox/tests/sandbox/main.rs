//! The sandbox's own tests: it runs alone (no app), on a free port against a fresh
//! database, driven over real HTTP by async-stripe's typed client (the fidelity oracle:
//! Stripe's OpenAPI spec as Rust types), by raw requests for the dialect's details, and by
//! a browser-like client on the hosted pages.

mod api;
mod billing;
mod checkout;
mod delivery;
mod disputes;
mod durability;
mod helpers;
mod meters;
mod security;
mod statuses;
mod strict;
