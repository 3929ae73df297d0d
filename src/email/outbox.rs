//! The outbox table and its worker.

use lettre::{
    message::{header::ContentType, MultiPart, SinglePart},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use secrecy::ExposeSecret;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// One message to queue.
pub struct Email {
    pub dedupe_key: String,
    pub user_id: Uuid,
    pub to: String,
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Queues `email` in the caller's transaction; a second call with the same key is a no-op.
pub async fn enqueue(conn: &mut PgConnection, email: &Email) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "insert into email_outbox (dedupe_key, user_id, to_address, kind, subject, body_text, body_html)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict (dedupe_key) do nothing",
    )
    .bind(&email.dedupe_key)
    .bind(email.user_id)
    .bind(&email.to)
    .bind(email.kind)
    .bind(&email.subject)
    .bind(&email.text)
    .bind(&email.html)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Where messages go.
#[derive(Clone)]
pub enum Sender {
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: lettre::message::Mailbox,
    },
    /// Kept in the outbox and shown at `/dev/mailbox`.
    DevMailbox,
}

impl Sender {
    pub fn from_config(config: &crate::config::Config) -> Result<Self, String> {
        match &config.smtp_url {
            None => Ok(Self::DevMailbox),
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|e| format!("SMTP_URL: {e}"))?
                    .timeout(Some(Duration::from_secs(20)))
                    .build();
                let from = config
                    .email_from
                    .parse()
                    .map_err(|e| format!("EMAIL_FROM: {e}"))?;
                Ok(Self::Smtp {
                    transport: Box::new(transport),
                    from,
                })
            }
        }
    }

    async fn send(&self, to: &str, subject: &str, text: &str, html: &str) -> Result<(), String> {
        let Self::Smtp { transport, from } = self else {
            return Ok(());
        };
        let message = Message::builder()
            .from(from.clone())
            .to(to.parse().map_err(|e| format!("recipient: {e}"))?)
            .subject(subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(text.to_owned()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html.to_owned()),
                    ),
            )
            .map_err(|e| e.to_string())?;
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Give up on a message after this many attempts (about a day with the backoff below).
const MAX_ATTEMPTS: i32 = 10;

/// Sends what is due, forever. Safe to run in several instances: each claims rows with
/// `FOR UPDATE SKIP LOCKED` and a lease, so a crashed sender's rows come back after it.
pub fn spawn_worker(db: PgPool, sender: Sender) {
    tokio::spawn(async move {
        loop {
            match send_due(&db, &sender).await {
                Ok(0) => tokio::time::sleep(Duration::from_millis(300)).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "email outbox");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    });
}

pub async fn send_due(db: &PgPool, sender: &Sender) -> sqlx::Result<usize> {
    let rows: Vec<(i64, String, String, String, String, i32)> = sqlx::query_as(
        "update email_outbox set locked_until = now() + interval '2 minutes'
         where id in (select id from email_outbox
                      where status = 'pending' and next_attempt_at <= now()
                        and (locked_until is null or locked_until < now())
                      order by id limit 10 for update skip locked)
         returning id, to_address, subject, body_text, body_html, attempts",
    )
    .fetch_all(db)
    .await?;
    for (id, to, subject, text, html, attempts) in &rows {
        match sender.send(to, subject, text, html).await {
            Ok(()) => {
                sqlx::query("update email_outbox set status = 'sent', sent_at = now(), attempts = attempts + 1, locked_until = null, last_error = null where id = $1")
                    .bind(id)
                    .execute(db)
                    .await?;
                tracing::info!(email_id = id, "email sent");
            }
            Err(e) => {
                let attempts = attempts + 1;
                let status = if attempts >= MAX_ATTEMPTS {
                    "failed"
                } else {
                    "pending"
                };
                // 30 s, 1 min, 2 min, … capped at 2 h.
                let wait = (30_i64 << attempts.min(8)).min(7200);
                tracing::warn!(email_id = id, attempts, error = %e, "email not sent");
                sqlx::query(
                    "update email_outbox set status = $2, attempts = $3, last_error = $4, locked_until = null,
                         next_attempt_at = now() + make_interval(secs => $5) where id = $1",
                )
                .bind(id)
                .bind(status)
                .bind(attempts)
                .bind(e.chars().take(500).collect::<String>())
                .bind(wait as f64)
                .execute(db)
                .await?;
            }
        }
    }
    Ok(rows.len())
}
