//! Transactional email through an outbox: messages are written in the transaction of the
//! webhook that causes them (unique per event and kind, so a redelivered webhook never sends
//! twice), and a worker sends them at least once, with retries. SMTP (`lettre`) when
//! `SMTP_URL` is set; otherwise the dev mailbox at `/dev/mailbox` shows them.

pub mod account;
pub mod dunning;
pub mod licenses;
mod mailbox;
pub mod message;
pub mod outbox;
pub mod usage;

pub use mailbox::router as mailbox_router;
