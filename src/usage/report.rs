//! Sending usage to Stripe's meter events, exactly once.
//!
//! Two steps, each safe to repeat and to run in several instances at once:
//! 1. **Claim**: in one transaction, the unreported usage events are locked (`SKIP LOCKED`:
//!    another instance takes others), grouped per subscription and period, and each group
//!    becomes one report row whose identifier is made from the events it covers
//!    (`usage-{subscription}-{first id}-{last id}`); the events are marked with it. An event
//!    is in exactly one report, ever.
//! 2. **Send**: every report not yet sent goes to `POST /v1/billing/meter_events` with its
//!    identifier, then is marked sent. A crash between the two sends it again with the same
//!    identifier, and Stripe keeps one (it answers the repeat with `resource_already_exists`,
//!    which counts as sent).
//!
//! Stripe takes events from the past 35 days up to 5 minutes ahead. A report's timestamp is
//! its last event's time, kept inside the period it bills; one Stripe refuses as too old is
//! kept, marked refused, and logged (and `reconcile-usage` shows the difference); one it
//! finds ahead of its clock is logged and sent again next round.

use crate::stripe::Stripe;
use sqlx::PgPool;
use std::time::Duration;
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use time::OffsetDateTime;

/// At most this many events per claim; the rest wait for the next round.
const CLAIM_BATCH: i64 = 10_000;

/// A claimed report, ready to send.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Report {
    pub identifier: String,
    pub stripe_customer_id: String,
    pub event_name: String,
    pub quantity: i64,
    pub timestamp: i64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub sent: usize,
    pub refused: usize,
    pub failed: usize,
}

#[derive(sqlx::FromRow)]
struct Group {
    subscription_id: String,
    first: i64,
    last: i64,
    quantity: i64,
    last_at: OffsetDateTime,
    period_start: OffsetDateTime,
    period_end: Option<OffsetDateTime>,
    stripe_customer_id: String,
    event_name: Option<String>,
}

/// Step 1: turns unreported usage into reports. Returns how many it made.
pub async fn claim(db: &PgPool) -> sqlx::Result<usize> {
    let mut tx = db.begin().await?;
    let groups: Vec<Group> = sqlx::query_as(
        "with claimed as (
             select id, subscription_id, period_start, quantity, occurred_at from usage_events
             where reported_in is null order by id limit $1 for update skip locked)
         select c.subscription_id, min(c.id) as first, max(c.id) as last, sum(c.quantity)::bigint as quantity,
                max(c.occurred_at) as last_at, c.period_start, s.current_period_end as period_end,
                s.stripe_customer_id, m.event_name
         from claimed c
         join subscriptions s on s.id = c.subscription_id
         left join prices p on p.id = s.metered_price_id
         left join meters m on m.id = p.meter_id
         group by c.subscription_id, c.period_start, s.current_period_end, s.stripe_customer_id, m.event_name",
    )
    .bind(CLAIM_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let mut made = 0;
    for g in groups {
        let Some(event_name) = g.event_name else {
            // The meter is not known yet (its webhook is on the way): next round.
            tracing::warn!(subscription = %g.subscription_id, "usage waits: the subscription's meter is not known yet");
            continue;
        };
        let identifier = format!("usage-{}-{}-{}", g.subscription_id, g.first, g.last);
        // Inside the billed period: a test clock moves a customer's periods away from the
        // wall clock, and Stripe bills an event by its timestamp.
        let mut at = g.last_at.max(g.period_start);
        if let Some(end) = g.period_end.filter(|e| *e > g.period_start) {
            at = at.min(end - time::Duration::seconds(1));
        }
        sqlx::query(
            "update usage_events set reported_in = $1
             where subscription_id = $2 and period_start = $3 and id between $4 and $5 and reported_in is null",
        )
        .bind(&identifier)
        .bind(&g.subscription_id)
        .bind(g.period_start)
        .bind(g.first)
        .bind(g.last)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "insert into usage_reports (identifier, subscription_id, stripe_customer_id, event_name, quantity, timestamp)
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&identifier)
        .bind(&g.subscription_id)
        .bind(&g.stripe_customer_id)
        .bind(&event_name)
        .bind(g.quantity)
        .bind(at.unix_timestamp())
        .execute(&mut *tx)
        .await?;
        made += 1;
    }
    tx.commit().await?;
    Ok(made)
}

/// What happened to one report at Stripe.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// Stripe has it (now, or from an earlier attempt with the same identifier).
    Accepted,
    /// Stripe will never take it (too old); kept with the reason.
    Refused(String),
    /// Stripe finds it ahead of its clock (more than 5 minutes): it will take it later.
    Later(String),
}

/// Sends one report's meter event. A repeat of an identifier Stripe already has is success.
pub async fn send(stripe: &Stripe, report: &Report) -> Result<Sent, stripe::StripeError> {
    let create = CreateBillingMeterEvent::new(
        report.event_name.as_str(),
        [
            (
                "stripe_customer_id".to_owned(),
                report.stripe_customer_id.clone(),
            ),
            ("value".to_owned(), report.quantity.to_string()),
        ],
    )
    .identifier(report.identifier.as_str())
    .timestamp(report.timestamp);
    match stripe.post(&create, &report.identifier).await {
        Ok(_) => Ok(Sent::Accepted),
        Err(stripe::StripeError::Stripe(e, 400))
            if e.code
                .as_ref()
                .is_some_and(|c| c.as_str() == "resource_already_exists") =>
        {
            Ok(Sent::Accepted)
        }
        Err(stripe::StripeError::Stripe(e, 400)) if e.param.as_deref() == Some("timestamp") => {
            let why = e
                .message
                .clone()
                .unwrap_or_else(|| "timestamp refused".into());
            // Ahead of Stripe's clock (ours runs fast): it becomes acceptable by itself.
            Ok(if why.contains("future") {
                Sent::Later(why)
            } else {
                Sent::Refused(why)
            })
        }
        Err(e) => Err(e),
    }
}

/// Step 2: sends every report not sent yet, oldest first.
pub async fn send_unsent(db: &PgPool, stripe: &Stripe) -> sqlx::Result<Round> {
    let unsent: Vec<Report> = sqlx::query_as(
        "select identifier, stripe_customer_id, event_name, quantity, timestamp from usage_reports
         where sent_at is null and refused is null order by created_at, identifier limit 500",
    )
    .fetch_all(db)
    .await?;
    let mut round = Round::default();
    for report in unsent {
        match send(stripe, &report).await {
            Ok(Sent::Accepted) => {
                mark_sent(db, &report.identifier).await?;
                round.sent += 1;
            }
            Ok(Sent::Later(why)) => {
                tracing::warn!(identifier = %report.identifier, reason = %why, "usage ahead of Stripe's clock; sent again next round");
                round.failed += 1;
            }
            Ok(Sent::Refused(why)) => {
                tracing::error!(identifier = %report.identifier, reason = %why, "Stripe refused usage for good; reconcile-usage will show it");
                sqlx::query("update usage_reports set refused = $2 where identifier = $1")
                    .bind(&report.identifier)
                    .bind(&why)
                    .execute(db)
                    .await?;
                round.refused += 1;
            }
            Err(e) => {
                // Sent again next round, with the same identifier.
                tracing::warn!(identifier = %report.identifier, error = %e, "usage not sent; will retry");
                round.failed += 1;
            }
        }
    }
    Ok(round)
}

pub async fn mark_sent(db: &PgPool, identifier: &str) -> sqlx::Result<()> {
    sqlx::query(
        "update usage_reports set sent_at = now() where identifier = $1 and sent_at is null",
    )
    .bind(identifier)
    .execute(db)
    .await?;
    Ok(())
}

/// One round: claim, then send.
pub async fn run_once(db: &PgPool, stripe: &Stripe) -> sqlx::Result<Round> {
    let claimed = claim(db).await?;
    let mut round = send_unsent(db, stripe).await?;
    round.claimed = claimed;
    Ok(round)
}

/// Reports every `every` (`USAGE_REPORT_SECONDS`): one meter event per customer and round,
/// well within Stripe's rate limits.
pub fn spawn(db: PgPool, stripe: Stripe, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&db, &stripe).await {
                Ok(r) if r.sent + r.refused + r.failed > 0 => {
                    tracing::info!(
                        claimed = r.claimed,
                        sent = r.sent,
                        refused = r.refused,
                        failed = r.failed,
                        "usage reported"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "usage reporting failed; will retry"),
            }
        }
    });
}
