//! `/dev/mailbox`: the emails the app sent, for development without SMTP (sandbox mode only).

use crate::{sandbox::html_escape as escape, state::AppState};
use axum::{extract::State, response::Html, routing::get, Router};
use std::fmt::Write;

pub fn router() -> Router<AppState> {
    Router::new().route("/dev/mailbox", get(page))
}

async fn page(State(state): State<AppState>) -> Result<Html<String>, crate::error::AppError> {
    let rows: Vec<(String, String, String, String, time::OffsetDateTime)> = sqlx::query_as(
        "select to_address, kind, subject, body_text, created_at from email_outbox order by id desc limit 100",
    )
    .fetch_all(&state.db)
    .await?;
    let mut html = String::from(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Dev mailbox</title>
<style>body{font-family:system-ui,sans-serif;max-width:760px;margin:0 auto;padding:1rem;color:#1a1a2e}article{border:1px solid #e3e8ee;border-radius:8px;padding:1rem;margin:1rem 0}pre{white-space:pre-wrap;overflow-wrap:anywhere;font:inherit}small{color:#697386}</style></head>
<body><h1>Dev mailbox</h1><p><small>Email the app sent (no SMTP_URL is set). Newest first.</small></p>"#,
    );
    if rows.is_empty() {
        html.push_str("<p>No email yet.</p>");
    }
    for (to, kind, subject, text, at) in rows {
        let _ = write!(
            html,
            r#"<article data-testid="email" data-kind="{kind}"><small>To {to} · {at}</small><h2>{subject}</h2><pre>{text}</pre></article>"#,
            kind = escape(&kind),
            to = escape(&to),
            at = at.date(),
            subject = escape(&subject),
            text = escape(&text),
        );
    }
    html.push_str("</body></html>");
    Ok(Html(html))
}
