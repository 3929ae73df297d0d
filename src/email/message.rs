//! One message, written once and sent as plain text and HTML: paragraphs and at most one
//! call to action. The HTML comes from a maud template, which escapes every value.

use super::outbox::{enqueue, Email};
use maud::html;
use sqlx::PgConnection;
use uuid::Uuid;

pub struct Message {
    /// What kind of email this is (`payment_failed`, `verify_email`, …): kept with the
    /// message, and part of its key.
    pub kind: &'static str,
    pub subject: String,
    pub paragraphs: Vec<String>,
    pub link: Option<(&'static str, String)>,
}

impl Message {
    /// The plain-text and HTML bodies.
    pub fn bodies(&self) -> (String, String) {
        let mut text = self.paragraphs.join("\n\n");
        if let Some((label, url)) = &self.link {
            text.push_str(&format!("\n\n{label}: {url}"));
        }
        let html = html! {
            @for p in &self.paragraphs { p { (p) } }
            @if let Some((label, url)) = &self.link { p { a href=(url) { (label) } } }
        };
        (text, html.into_string())
    }

    /// Queues the message for `user` at `to` in the caller's transaction. `occasion` makes
    /// it unique (an event id, a signup): the same occasion never sends twice. Returns
    /// whether it was queued now.
    pub async fn queue(
        self,
        conn: &mut PgConnection,
        occasion: &str,
        user_id: Uuid,
        to: &str,
    ) -> sqlx::Result<bool> {
        let (text, html) = self.bodies();
        enqueue(
            conn,
            &Email {
                dedupe_key: format!("{occasion}:{}", self.kind),
                user_id,
                to: to.to_owned(),
                kind: self.kind,
                subject: self.subject,
                text,
                html,
            },
        )
        .await
    }
}
