//! The email outbox, as the tests read it.

use super::TestApp;

pub async fn emails(app: &TestApp, user: uuid::Uuid, kind: &str) -> i64 {
    sqlx::query_scalar("select count(*) from email_outbox where user_id = $1 and kind = $2")
        .bind(user)
        .bind(kind)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The plain-text body of the user's email of `kind`, once queued.
pub async fn email_body(app: &TestApp, user: uuid::Uuid, kind: &str) -> Option<String> {
    sqlx::query_scalar("select body_text from email_outbox where user_id = $1 and kind = $2")
        .bind(user)
        .bind(kind)
        .fetch_optional(&app.db)
        .await
        .unwrap()
}
