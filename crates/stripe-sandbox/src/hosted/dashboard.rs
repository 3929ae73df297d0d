//! `/sandbox`: a small dashboard like Stripe's: recent events with every delivery attempt
//! and a Resend button, the customers with their test clocks (and a control to advance
//! them), the subscriptions, the payments (with a Refund button, as on Stripe's dashboard)
//! and the disputes (closed as won or lost here: the bank's decision, made by the tester).

use super::{html_page, layout};
use crate::{
    delivery,
    engine::{
        clocks,
        disputes::{self, Verdict},
        payments::{self, NewRefund},
    },
    http::{Account, RequestInfo, StripeError},
    Sandbox,
};
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Form,
};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
pub(super) struct Which {
    /// `acct_…`; defaults to the account with the most recent activity.
    account: Option<String>,
    notice: Option<String>,
}

struct EventRow {
    id: String,
    kind: String,
    object: String,
    created: String,
    deliveries: Vec<DeliveryView>,
}

struct DeliveryView {
    status: String,
    attempts: i64,
    last: String,
    endpoint: String,
}

struct CustomerRow {
    id: String,
    email: String,
    created: String,
    clock: Option<ClockView>,
    /// The sum of the customer's meter events (every meter).
    usage: i64,
}

struct ClockView {
    id: String,
    time: String,
    status: String,
}

struct SubscriptionRow {
    id: String,
    customer: String,
    status: String,
    cancels: bool,
    price: String,
    period_end: String,
}

struct PaymentRow {
    charge: String,
    customer: String,
    amount: String,
    refunded: String,
    refundable: bool,
    created: String,
}

struct DisputeRow {
    id: String,
    charge: String,
    amount: String,
    reason: String,
    status: String,
    open: bool,
}

struct DashboardView {
    notice: Option<String>,
    accounts: Vec<String>,
    account: Option<String>,
    events: Vec<EventRow>,
    customers: Vec<CustomerRow>,
    subscriptions: Vec<SubscriptionRow>,
    payments: Vec<PaymentRow>,
    disputes: Vec<DisputeRow>,
}

pub(super) async fn show_dashboard(
    State(sandbox): State<Sandbox>,
    Query(which): Query<Which>,
) -> Response {
    match load(&sandbox, which).await {
        Ok(view) => html_page(StatusCode::OK, render(&view)),
        Err(e) => StripeError::from(e).into_response(),
    }
}

type EventData = (String, String, i64, Value, Option<Value>);

async fn load(sandbox: &Sandbox, which: Which) -> sqlx::Result<DashboardView> {
    let db = &sandbox.db;
    let accounts: Vec<String> = sqlx::query_scalar(
        "select account from stripe_sandbox.events group by account order by max(seq) desc limit 20",
    )
    .fetch_all(db)
    .await?;
    let account = which
        .account
        .filter(|a| accounts.contains(a))
        .or_else(|| accounts.first().cloned());
    let mut view = DashboardView {
        notice: which.notice,
        accounts,
        account: account.clone(),
        events: Vec::new(),
        customers: Vec::new(),
        subscriptions: Vec::new(),
        payments: Vec::new(),
        disputes: Vec::new(),
    };
    let Some(account) = account else {
        return Ok(view);
    };
    let events: Vec<EventData> = sqlx::query_as(
        "select e.id, e.type, e.created, e.data,
                (select jsonb_agg(jsonb_build_object('endpoint', o.data ->> 'url', 'status', d.status, 'attempts', d.attempts,
                        'last', (select a.response_status from stripe_sandbox.delivery_attempts a where a.delivery_id = d.id order by a.id desc limit 1))
                        order by d.id)
                 from stripe_sandbox.deliveries d
                 left join stripe_sandbox.objects o on o.account = d.account and o.id = d.endpoint_id
                 where d.account = e.account and d.event_id = e.id)
         from stripe_sandbox.events e where e.account = $1 order by e.seq desc limit 50",
    )
    .bind(&account)
    .fetch_all(db)
    .await?;
    let text = |v: &Value, default: &str| v.as_str().unwrap_or(default).to_owned();
    view.events = events
        .into_iter()
        .map(|(id, kind, created, data, deliveries)| EventRow {
            object: text(&data["data"]["object"]["id"], ""),
            created: timestamp(created),
            deliveries: deliveries
                .as_ref()
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|d| DeliveryView {
                    status: text(&d["status"], ""),
                    attempts: d["attempts"].as_i64().unwrap_or(0),
                    last: d["last"]
                        .as_i64()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "–".into()),
                    endpoint: text(&d["endpoint"], "(deleted endpoint)"),
                })
                .collect(),
            id,
            kind,
        })
        .collect();

    let customers: Vec<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'customer' and not data ? 'deleted' order by seq desc limit 50",
    )
    .bind(&account)
    .fetch_all(db)
    .await?;
    let clocks: Vec<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'test_helpers.test_clock'",
    )
    .bind(&account)
    .fetch_all(db)
    .await?;
    let usage: Vec<(String, i64)> = sqlx::query_as(
        "select customer, sum(value)::bigint from stripe_sandbox.meter_events where account = $1 group by customer",
    )
    .bind(&account)
    .fetch_all(db)
    .await?;
    view.customers = customers
        .iter()
        .map(|c| CustomerRow {
            usage: usage
                .iter()
                .find(|(id, _)| c["id"] == id.as_str())
                .map_or(0, |(_, n)| *n),
            id: text(&c["id"], ""),
            email: text(&c["email"], "–"),
            created: timestamp(c["created"].as_i64().unwrap_or(0)),
            clock: c["test_clock"]
                .as_str()
                .and_then(|id| clocks.iter().find(|k| k["id"] == id))
                .map(|k| ClockView {
                    id: text(&k["id"], ""),
                    time: timestamp(k["frozen_time"].as_i64().unwrap_or(0)),
                    status: text(&k["status"], ""),
                }),
        })
        .collect();

    let subscriptions: Vec<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'subscription' order by seq desc limit 50",
    )
    .bind(&account)
    .fetch_all(db)
    .await?;
    view.subscriptions = subscriptions
        .iter()
        .map(|sub| {
            let item = &sub["items"]["data"][0];
            SubscriptionRow {
                id: text(&sub["id"], ""),
                customer: text(&sub["customer"], ""),
                status: text(&sub["status"], ""),
                cancels: sub["cancel_at_period_end"] == true,
                price: text(&item["price"]["id"], ""),
                period_end: timestamp(item["current_period_end"].as_i64().unwrap_or(0)),
            }
        })
        .collect();

    let of_kind = |kind: &'static str| {
        sqlx::query_scalar::<_, Value>(
            "select data from stripe_sandbox.objects where account = $1 and object = $2 order by seq desc limit 50",
        )
        .bind(account.clone())
        .bind(kind)
        .fetch_all(db)
    };
    let money = |v: &Value, currency: &Value| {
        crate::money::display(v.as_i64().unwrap_or(0), currency.as_str().unwrap_or("usd"))
    };
    view.payments = of_kind("charge")
        .await?
        .iter()
        .filter(|c| c["paid"] == true)
        .map(|c| PaymentRow {
            charge: text(&c["id"], ""),
            customer: text(&c["customer"], "–"),
            amount: money(&c["amount"], &c["currency"]),
            refunded: money(&c["amount_refunded"], &c["currency"]),
            refundable: c["amount_refunded"].as_i64() < c["amount_captured"].as_i64(),
            created: timestamp(c["created"].as_i64().unwrap_or(0)),
        })
        .collect();
    view.disputes = of_kind("dispute")
        .await?
        .iter()
        .map(|d| DisputeRow {
            id: text(&d["id"], ""),
            charge: text(&d["charge"], ""),
            amount: money(&d["amount"], &d["currency"]),
            reason: text(&d["reason"], ""),
            status: text(&d["status"], ""),
            open: !matches!(d["status"].as_str(), Some("won" | "lost")),
        })
        .collect();
    Ok(view)
}

fn render(view: &DashboardView) -> Markup {
    let body = html! {
        header.bar { h1 { "Stripe sandbox · test mode" } }
        main.dashboard {
            @if let Some(notice) = &view.notice {
                p.notice role="status" { (notice) }
            }
            @match &view.account {
                None => p { "No activity yet. Make an API call with any " code { "sk_test_…" } " key." },
                Some(account) => {
                    @if view.accounts.len() > 1 {
                        form.accounts method="get" {
                            label { "Account "
                                select name="account" {
                                    @for a in &view.accounts {
                                        option value=(a) selected[a == account] { (a) }
                                    }
                                }
                            }
                            " "
                            button { "Show" }
                        }
                    }
                    (events_table(account, &view.events))
                    (customers_table(account, &view.customers))
                    (subscriptions_table(&view.subscriptions))
                    (payments_table(account, &view.payments))
                    (disputes_table(account, &view.disputes))
                }
            }
        }
    };
    layout("Dashboard", Some("dashboard"), body)
}

fn events_table(account: &str, events: &[EventRow]) -> Markup {
    html! {
        h2 { "Events" }
        div.scroll {
            table {
                thead { tr { th { "Event" } th { "Object" } th { "Created" } th { "Deliveries" } th { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for event in events {
                        tr data-testid="event" {
                            td { code { (event.kind) } br; small { (event.id) } }
                            td { small { (event.object) } }
                            td { (event.created) }
                            td {
                                @for d in &event.deliveries {
                                    div class=(format!("delivery {}", d.status)) data-testid="delivery" {
                                        (d.status) " · " (d.attempts) " attempt(s) · last " (d.last)
                                        br; small { (d.endpoint) }
                                    }
                                }
                                @if event.deliveries.is_empty() { small { "no endpoint wanted it" } }
                            }
                            td {
                                form method="post" action=(format!("/sandbox/events/{}/resend?account={account}", event.id)) {
                                    button aria-label=(format!("Resend {}", event.id)) { "Resend" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn customers_table(account: &str, customers: &[CustomerRow]) -> Markup {
    html! {
        h2 { "Customers" }
        div.scroll {
            table {
                thead { tr { th { "Customer" } th { "Email" } th { "Created" } th { "Usage reported" } th { "Test clock" } } }
                tbody {
                    @for c in customers {
                        tr data-testid="customer" data-email=(c.email) {
                            td { small { (c.id) } }
                            td { (c.email) }
                            td { (c.created) }
                            td data-testid="customer-usage" { (c.usage) }
                            td {
                                @match &c.clock {
                                    None => "–",
                                    Some(clock) => {
                                        small { (clock.time) " · " (clock.status) }
                                        form.advance method="post" action=(format!("/sandbox/clocks/{}/advance?account={account}", clock.id)) {
                                            label { "Advance "
                                                input name="days" type="number" min="1" max="730" value="1" required
                                                    data-testid="advance-days"
                                                    aria-label=(format!("Days to advance the clock of {}", c.email));
                                                " days"
                                            }
                                            " "
                                            button data-testid="advance-clock" { "Advance" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn subscriptions_table(subscriptions: &[SubscriptionRow]) -> Markup {
    html! {
        h2 { "Subscriptions" }
        div.scroll {
            table {
                thead { tr { th { "Subscription" } th { "Customer" } th { "Status" } th { "Price" } th { "Period ends" } } }
                tbody {
                    @for sub in subscriptions {
                        tr data-testid="subscription" {
                            td { small { (sub.id) } }
                            td { small { (sub.customer) } }
                            td { (sub.status) @if sub.cancels { " (cancels)" } }
                            td { small { (sub.price) } }
                            td { (sub.period_end) }
                        }
                    }
                }
            }
        }
    }
}

fn payments_table(account: &str, payments: &[PaymentRow]) -> Markup {
    html! {
        h2 { "Payments" }
        div.scroll {
            table {
                thead { tr { th { "Charge" } th { "Customer" } th { "Amount" } th { "Refunded" } th { "Created" } th { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for p in payments {
                        tr {
                            td { small { (p.charge) } }
                            td { small { (p.customer) } }
                            td { (p.amount) }
                            td { (p.refunded) }
                            td { (p.created) }
                            td {
                                @if p.refundable {
                                    form method="post" action=(format!("/sandbox/charges/{}/refund?account={account}", p.charge)) {
                                        button aria-label=(format!("Refund {}", p.charge)) { "Refund" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn disputes_table(account: &str, disputes: &[DisputeRow]) -> Markup {
    html! {
        h2 { "Disputes" }
        @if disputes.is_empty() {
            p { small { "None. A charge made with " code { "4000 0000 0000 0259" } " is disputed as fraudulent right after it succeeds." } }
        } @else {
            div.scroll {
                table {
                    thead { tr { th { "Dispute" } th { "Charge" } th { "Amount" } th { "Reason" } th { "Status" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for d in disputes {
                            tr {
                                td { small { (d.id) } }
                                td { small { (d.charge) } }
                                td { (d.amount) }
                                td { (d.reason) }
                                td { (d.status) }
                                td {
                                    @if d.open {
                                        form method="post" action=(format!("/sandbox/disputes/{}/close?account={account}", d.id)) {
                                            button name="verdict" value="won" aria-label=(format!("Close {} as won", d.id)) { "Won" }
                                            " "
                                            button name="verdict" value="lost" aria-label=(format!("Close {} as lost", d.id)) { "Lost" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct InAccount {
    account: String,
}

#[derive(Deserialize)]
pub(super) struct Advance {
    days: String,
}

fn back_to_dashboard(account: &str, notice: &str) -> Response {
    let encode =
        |raw: &str| -> String { url::form_urlencoded::byte_serialize(raw.as_bytes()).collect() };
    Redirect::to(&format!(
        "/sandbox?account={}&notice={}",
        encode(account),
        encode(notice)
    ))
    .into_response()
}

/// The clock control: advances a test clock by whole days and waits until it is ready, so
/// the page that comes back shows the result.
pub(super) async fn advance_clock(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    Query(to): Query<InAccount>,
    Form(form): Form<Advance>,
) -> Response {
    let account = Account(to.account);
    let back = |notice: &str| back_to_dashboard(&account.0, notice);
    let days = match form.days.trim().parse::<i64>() {
        Ok(d) if (1..=730).contains(&d) => d,
        _ => return back("Advance by a whole number of days between 1 and 730."),
    };
    let req = RequestInfo::from_page();
    let frozen = match clocks::frozen_time(&sandbox.db, &account, &id).await {
        Ok(Some(frozen)) => frozen,
        Ok(None) => return back("No such test clock."),
        Err(e) => return e.into_response(),
    };
    let target = frozen + days * 86_400;
    if let Err(e) = clocks::begin_advance(&sandbox.db, &account, &req, &id, target).await {
        return back(&e.message);
    }
    clocks::finish_or_fail(
        &sandbox.db,
        &sandbox.public_url,
        &account,
        &id,
        target,
        &req,
        sandbox.settings.after_failed_retries,
    )
    .await;
    back(&format!("Advanced {id} by {days} day(s)"))
}

#[derive(Deserialize)]
pub(super) struct Close {
    verdict: String,
}

/// The bank's decision on a dispute: `charge.dispute.closed`, won or lost.
pub(super) async fn close_dispute(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    Query(to): Query<InAccount>,
    Form(form): Form<Close>,
) -> Response {
    let verdict = match form.verdict.as_str() {
        "won" => Verdict::Won,
        "lost" => Verdict::Lost,
        _ => return back_to_dashboard(&to.account, "Close a dispute as won or lost."),
    };
    let account = Account(to.account);
    let req = RequestInfo::from_page();
    match disputes::close(&sandbox.db, &account, &req, &id, verdict).await {
        Ok(_) => back_to_dashboard(&account.0, &format!("{id} closed as {}", form.verdict)),
        Err(e) => back_to_dashboard(&account.0, &e.message),
    }
}

/// Refunds what is left of a charge, as the Refund button on Stripe's dashboard does.
pub(super) async fn refund_charge(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    Query(to): Query<InAccount>,
) -> Response {
    let account = Account(to.account);
    let req = RequestInfo::from_page();
    let new = NewRefund {
        charge: Some(id.clone()),
        payment_intent: None,
        amount: None,
        reason: Some("requested_by_customer".into()),
        metadata: serde_json::json!({}),
    };
    match payments::refund(&sandbox.db, &account, &req, new).await {
        Ok(_) => back_to_dashboard(&account.0, &format!("Refunded {id}")),
        Err(e) => back_to_dashboard(&account.0, &e.message),
    }
}

/// Queues every delivery of the event again, as Stripe's dashboard "Resend" does.
pub(super) async fn resend_event(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    Query(to): Query<InAccount>,
) -> Response {
    match delivery::resend(&sandbox.db, &to.account, &id).await {
        Ok(0) => back_to_dashboard(&to.account, &format!("{id} has no deliveries to resend")),
        Ok(n) => back_to_dashboard(&to.account, &format!("Resending {id} to {n} endpoint(s)")),
        Err(e) => StripeError::from(e).into_response(),
    }
}

fn timestamp(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_default()
}
