//! `/dev/mailbox`: the emails the app sent, for development without SMTP (sandbox mode only).

use crate::state::AppState;
use axum::{extract::State, response::Html, routing::get, Router};
use maud::{html, DOCTYPE};

pub fn router() -> Router<AppState> {
    Router::new().route("/dev/mailbox", get(show_mailbox))
}

type Message = (String, String, String, String, time::OffsetDateTime);

async fn show_mailbox(
    State(state): State<AppState>,
) -> Result<Html<String>, crate::error::AppError> {
    let messages: Vec<Message> = sqlx::query_as(
        "select to_address, kind, subject, body_text, created_at from email_outbox order by id desc limit 100",
    )
    .fetch_all(&state.db)
    .await?;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Dev mailbox" }
                link rel="stylesheet" href=(format!("/{}/saas-billing.css", state.leptos_options.site_pkg_dir));
            }
            body.mailbox {
                main {
                    h1 { "Dev mailbox" }
                    p { small { "Email the app sent (no SMTP_URL is set). Newest first." } }
                    @if messages.is_empty() { p { "No email yet." } }
                    @for (to, kind, subject, text, at) in &messages {
                        article data-testid="email" data-kind=(kind) {
                            small { "To " (to) " · " (at.date()) }
                            h2 { (subject) }
                            pre { (text) }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(page.into_string()))
}
