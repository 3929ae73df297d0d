//! Integration tests: the real server on a free port, a fresh Postgres database per test,
//! driven over HTTP like a browser or API client would.

mod accounts;
mod billing;
mod email;
mod fidelity;
mod helpers;
mod licenses;
mod operations;
mod pages;
mod security;
mod usage;
mod webhooks;
