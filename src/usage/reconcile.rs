//! `saas-billing reconcile-usage`: for each metered subscription, what the app counted in a
//! period beside what Stripe's meter aggregated for it (event summaries), and any
//! difference. Usage not sent yet is shown apart: it is on its way, not lost.

use crate::stripe::Stripe;
use sqlx::PgPool;
use stripe_billing::billing_meter_event_summary::ListIdBillingMeterEventSummary;
use time::OffsetDateTime;

/// Which period of each subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Current,
    Previous,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub subscription: String,
    pub customer: String,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    /// Units counted here in the period.
    pub counted: i64,
    /// Of those, units sent to Stripe (or refused by it for good).
    pub sent: i64,
    pub refused: i64,
    /// What Stripe's meter aggregated for the customer over the period.
    pub stripe: i64,
}

impl Line {
    /// Stripe's figure differs from what left here: sent, or refused by Stripe (usage not
    /// sent yet is on its way, not a difference yet).
    pub fn differs(&self) -> bool {
        self.stripe != self.sent + self.refused
    }

    pub fn unsent(&self) -> i64 {
        self.counted - self.sent - self.refused
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    subscription: String,
    customer: String,
    meter: String,
    from: OffsetDateTime,
    to: OffsetDateTime,
    counted: i64,
    sent: i64,
    refused: i64,
}

pub async fn reconcile(db: &PgPool, stripe: &Stripe, period: Period) -> Result<Vec<Line>, String> {
    // The current period is the subscription's; the previous one is the latest counted
    // period before it, ending where the current one starts.
    let rows: Vec<Row> = sqlx::query_as(
        "with periods as (
             select s.id, s.stripe_customer_id, p.meter_id,
                    case when $1 then s.current_period_start
                         else (select max(c.period_start) from usage_counters c
                               where c.subscription_id = s.id and c.period_start < s.current_period_start) end as from_,
                    case when $1 then s.current_period_end else s.current_period_start end as to_
             from subscriptions s join prices p on p.id = s.metered_price_id
             where p.meter_id is not null)
         select p.id as subscription, p.stripe_customer_id as customer, p.meter_id as meter,
                p.from_ as from, p.to_ as to,
                coalesce((select sum(quantity) from usage_events e where e.subscription_id = p.id and e.period_start = p.from_), 0)::bigint as counted,
                coalesce((select sum(e.quantity) from usage_events e join usage_reports r on r.identifier = e.reported_in
                          where e.subscription_id = p.id and e.period_start = p.from_ and r.sent_at is not null), 0)::bigint as sent,
                coalesce((select sum(e.quantity) from usage_events e join usage_reports r on r.identifier = e.reported_in
                          where e.subscription_id = p.id and e.period_start = p.from_ and r.refused is not null), 0)::bigint as refused
         from periods p where p.from_ is not null and p.to_ is not null
         order by p.id",
    )
    .bind(period == Period::Current)
    .fetch_all(db)
    .await
    .map_err(|e| e.to_string())?;
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        // Summaries take whole minutes: the period, widened to them.
        let start = row.from.unix_timestamp().div_euclid(60) * 60;
        let end = (row.to.unix_timestamp() + 59).div_euclid(60) * 60;
        let list = ListIdBillingMeterEventSummary::new(
            row.meter.as_str(),
            row.customer.as_str(),
            end,
            start,
        );
        let summaries = stripe.get(&list).await.map_err(|e| e.to_string())?;
        let aggregated: f64 = summaries.data.iter().map(|s| s.aggregated_value).sum();
        lines.push(Line {
            subscription: row.subscription,
            customer: row.customer,
            from: row.from,
            to: row.to,
            counted: row.counted,
            sent: row.sent,
            refused: row.refused,
            stripe: aggregated.round() as i64,
        });
    }
    Ok(lines)
}
