//! Transactional email over real SMTP: lettre talks to a small SMTP server on a free port.
//! Two app instances share one outbox, and each message still goes out once.

use crate::helpers::*;
use saas_billing::email::outbox::{enqueue, Email};
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Clone, Default)]
struct Smtp {
    /// Each accepted message's DATA, as received.
    messages: Arc<Mutex<Vec<String>>>,
    /// How many more recipients to refuse with a temporary failure.
    refuse: Arc<AtomicUsize>,
}

/// Enough of RFC 5321 for a client without TLS or auth: greeting, EHLO, MAIL, RCPT, DATA, QUIT.
async fn spawn_smtp(refuse: usize) -> (String, Smtp) {
    let smtp = Smtp::default();
    smtp.refuse.store(refuse, Ordering::SeqCst);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let server = smtp.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let smtp = server.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test ESMTP\r\n").await.ok();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 test\r\n",
                        "RCPT"
                            if smtp
                                .refuse
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok() =>
                        {
                            b"451 4.3.0 try again later\r\n"
                        }
                        "DATA" => {
                            write.write_all(b"354 go ahead\r\n").await.ok();
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            smtp.messages.lock().unwrap().push(data);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.ok();
                            break;
                        }
                        _ => b"250 OK\r\n",
                    };
                    write.write_all(reply).await.ok();
                }
            });
        }
    });
    (url, smtp)
}

fn email(user: &saas_billing::accounts::User, n: usize) -> Email {
    Email {
        dedupe_key: format!("smtp-test:{n}"),
        user_id: user.id,
        to: user.email.clone(),
        kind: "payment_failed",
        subject: format!("Message {n}"),
        text: format!("Plain body {n}"),
        html: format!("<p>HTML body {n}</p>"),
    }
}

async fn statuses(app: &TestApp) -> Vec<(String, i32)> {
    sqlx::query_as(
        "select status, attempts from email_outbox where kind <> 'verify_email' order by id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn two_instances_send_each_queued_email_once_over_smtp() {
    let (url, smtp) = spawn_smtp(0).await;
    let database = TestDatabase::create().await;
    let with_smtp = |c: &mut saas_billing::config::Config| {
        c.smtp_url = Some(url.clone().into());
        c.email_from = "Billing <billing@saas.example>".into();
    };
    let one = spawn_app_on(&database, with_smtp).await;
    let _two = spawn_app_on(&database, with_smtp).await;
    let user = signed_up_user(&one, "mail").await;
    let mut conn = one.db.acquire().await.unwrap();
    for n in 0..12 {
        assert!(enqueue(&mut conn, &email(&user, n)).await.unwrap());
    }
    assert!(
        !enqueue(&mut conn, &email(&user, 0)).await.unwrap(),
        "the same key queues nothing"
    );
    let all_sent =
        eventually(|| async { statuses(&one).await.iter().all(|(s, _)| s == "sent") }).await;
    assert!(all_sent, "{:?}", statuses(&one).await);
    assert!(statuses(&one)
        .await
        .iter()
        .all(|(_, attempts)| *attempts == 1));

    // The sign-up's own confirmation email went out too; the test's twelve are counted.
    let messages: Vec<String> = smtp
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains("Subject: Message "))
        .cloned()
        .collect();
    assert_eq!(
        messages.len(),
        12,
        "each message once, whichever instance sent it"
    );
    for n in 0..12 {
        let subject = format!("Subject: Message {n}\n");
        assert_eq!(
            messages.iter().filter(|m| m.contains(&subject)).count(),
            1,
            "{subject}"
        );
    }
    let first = messages
        .iter()
        .find(|m| m.contains("Subject: Message 0\n"))
        .unwrap();
    assert!(
        first.contains("From: Billing <billing@saas.example>"),
        "{first}"
    );
    assert!(first.contains(&format!("To: {}", user.email)), "{first}");
    assert!(first.contains("multipart/alternative"), "{first}");
    assert!(
        first.contains("text/plain") && first.contains("Plain body 0"),
        "{first}"
    );
    assert!(
        first.contains("text/html") && first.contains("HTML body 0"),
        "{first}"
    );
}

#[tokio::test]
async fn a_refused_email_is_retried_later_not_lost() {
    // The first message the server refuses is the test's: the user is made without the
    // sign-up's own email.
    let (url, smtp) = spawn_smtp(1).await;
    let app = spawn_app_with(|c| c.smtp_url = Some(url.into())).await;
    let user = saas_billing::accounts::User {
        id: sqlx::query_scalar("insert into users (email, password_hash) values ('retry@example.com', 'x') returning id")
            .fetch_one(&app.db)
            .await
            .unwrap(),
        email: "retry@example.com".into(),
        password_hash: "x".into(),
        email_verified_at: None,
    };
    let mut conn = app.db.acquire().await.unwrap();
    enqueue(&mut conn, &email(&user, 1)).await.unwrap();

    let waiting =
        eventually(|| async { statuses(&app).await == [("pending".to_owned(), 1)] }).await;
    assert!(waiting, "{:?}", statuses(&app).await);
    let (error, later): (String, bool) = sqlx::query_as(
        "select last_error, next_attempt_at > now() + interval '20 seconds' from email_outbox where kind <> 'verify_email'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        error.contains("451") || error.contains("try again"),
        "{error}"
    );
    assert!(later, "the retry waits (backoff)");
    assert!(smtp.messages.lock().unwrap().is_empty());

    // Time passes: the retry goes through.
    sqlx::query("update email_outbox set next_attempt_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    let sent = eventually(|| async { statuses(&app).await == [("sent".to_owned(), 2)] }).await;
    assert!(sent, "{:?}", statuses(&app).await);
    assert_eq!(smtp.messages.lock().unwrap().len(), 1);
}
