//! `/sandbox`: a small dashboard like Stripe's: recent events with every delivery attempt and
//! a resend button, and the customers. Plain server-rendered HTML: the sandbox also runs
//! standalone, without the Leptos app.

use super::{delivery, http::Account, Sandbox};
use axum::{
    extract::{Path, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write;

#[derive(Deserialize)]
pub struct Which {
    /// `acct_…`; defaults to the account with the most recent activity.
    account: Option<String>,
    notice: Option<String>,
}

pub async fn page(State(s): State<Sandbox>, Query(q): Query<Which>) -> Response {
    match render(&s, q).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => super::http::StripeError::from(e).into_response(),
    }
}

type Row = (String, String, i64, Value, Option<Value>);

async fn render(s: &Sandbox, q: Which) -> sqlx::Result<String> {
    let accounts: Vec<String> =
        sqlx::query_scalar("select account from stripe_sandbox.events group by account order by max(seq) desc limit 20")
            .fetch_all(&s.db)
            .await?;
    let account = q
        .account
        .filter(|a| accounts.contains(a))
        .or_else(|| accounts.first().cloned());
    let mut html = String::from(HEAD);
    if let Some(notice) = q.notice {
        let _ = write!(
            html,
            r#"<p class="notice" role="status">{}</p>"#,
            escape(&notice)
        );
    }
    let Some(account) = account else {
        html.push_str("<p>No activity yet. Make an API call with any <code>sk_test_…</code> key.</p></main></body></html>");
        return Ok(html);
    };
    if accounts.len() > 1 {
        html.push_str(r#"<form class="accounts" method="get"><label>Account <select name="account" onchange="this.form.submit()">"#);
        for a in &accounts {
            let selected = if *a == account { " selected" } else { "" };
            let _ = write!(
                html,
                r#"<option value="{a}"{selected}>{a}</option>"#,
                a = escape(a)
            );
        }
        html.push_str("</select></label> <button>Show</button></form>");
    }

    let events: Vec<Row> = sqlx::query_as(
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
    .fetch_all(&s.db)
    .await?;
    html.push_str(r#"<h2>Events</h2><div class="scroll"><table><thead><tr><th>Event</th><th>Object</th><th>Created</th><th>Deliveries</th><th></th></tr></thead><tbody>"#);
    for (id, kind, created, data, deliveries) in &events {
        let object = data["data"]["object"]["id"].as_str().unwrap_or("");
        let mut cells = String::new();
        for d in deliveries
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let status = d["status"].as_str().unwrap_or("");
            let last = d["last"]
                .as_i64()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "–".into());
            let _ = write!(
                cells,
                r#"<div class="delivery {status}" data-testid="delivery">{status} · {attempts} attempt(s) · last {last}<br><small>{url}</small></div>"#,
                status = escape(status),
                attempts = d["attempts"],
                url = escape(d["endpoint"].as_str().unwrap_or("(deleted endpoint)")),
            );
        }
        if cells.is_empty() {
            cells.push_str("<small>no endpoint wanted it</small>");
        }
        let _ = write!(
            html,
            r#"<tr data-testid="event"><td><code>{kind}</code><br><small>{id}</small></td><td><small>{object}</small></td><td>{created}</td><td>{cells}</td>
               <td><form method="post" action="/sandbox/events/{id}/resend?account={account}"><button>Resend</button></form></td></tr>"#,
            kind = escape(kind),
            id = escape(id),
            object = escape(object),
            created = format_time(*created),
            account = escape(&account),
        );
    }
    html.push_str("</tbody></table></div>");

    let customers: Vec<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'customer' and not data ? 'deleted' order by seq desc limit 50",
    )
    .bind(&account)
    .fetch_all(&s.db)
    .await?;
    let clocks: Vec<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'test_helpers.test_clock'",
    )
    .bind(&account)
    .fetch_all(&s.db)
    .await?;
    html.push_str(r#"<h2>Customers</h2><div class="scroll"><table><thead><tr><th>Customer</th><th>Email</th><th>Created</th><th>Test clock</th></tr></thead><tbody>"#);
    for c in &customers {
        let clock = c["test_clock"]
            .as_str()
            .and_then(|id| clocks.iter().find(|k| k["id"] == id));
        let control = match clock {
            None => "–".to_owned(),
            Some(k) => format!(
                r#"<small>{time} · {status}</small><form class="advance" method="post" action="/sandbox/clocks/{id}/advance?account={account}">
                   <label>Advance <input name="days" type="number" min="1" max="730" value="1" required data-testid="advance-days"> days</label> <button data-testid="advance-clock">Advance</button></form>"#,
                time = format_time(k["frozen_time"].as_i64().unwrap_or(0)),
                status = escape(k["status"].as_str().unwrap_or("")),
                id = escape(k["id"].as_str().unwrap_or("")),
                account = escape(&account),
            ),
        };
        let _ = write!(
            html,
            r#"<tr data-testid="customer" data-email="{email}"><td><small>{}</small></td><td>{email}</td><td>{}</td><td>{control}</td></tr>"#,
            escape(c["id"].as_str().unwrap_or("")),
            format_time(c["created"].as_i64().unwrap_or(0)),
            email = escape(c["email"].as_str().unwrap_or("–")),
        );
    }
    html.push_str("</tbody></table></div>");

    let subscriptions: Vec<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'subscription' order by seq desc limit 50",
    )
    .bind(&account)
    .fetch_all(&s.db)
    .await?;
    html.push_str(r#"<h2>Subscriptions</h2><div class="scroll"><table><thead><tr><th>Subscription</th><th>Customer</th><th>Status</th><th>Price</th><th>Period ends</th></tr></thead><tbody>"#);
    for sub in &subscriptions {
        let item = &sub["items"]["data"][0];
        let cancels = if sub["cancel_at_period_end"] == true {
            " (cancels)"
        } else {
            ""
        };
        let _ = write!(
            html,
            r#"<tr data-testid="subscription"><td><small>{}</small></td><td><small>{}</small></td><td>{}{cancels}</td><td><small>{}</small></td><td>{}</td></tr>"#,
            escape(sub["id"].as_str().unwrap_or("")),
            escape(sub["customer"].as_str().unwrap_or("")),
            escape(sub["status"].as_str().unwrap_or("")),
            escape(item["price"]["id"].as_str().unwrap_or("")),
            format_time(item["current_period_end"].as_i64().unwrap_or(0)),
        );
    }
    html.push_str("</tbody></table></div></main></body></html>");
    Ok(html)
}

#[derive(Deserialize)]
pub struct ResendTo {
    account: String,
}

#[derive(Deserialize)]
pub struct Advance {
    days: String,
}

/// The clock control: advances a test clock by whole days and waits until it is ready, so
/// the page that comes back shows the result.
pub async fn advance_clock(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Query(to): Query<ResendTo>,
    axum::Form(form): axum::Form<Advance>,
) -> Response {
    let account = Account(to.account);
    let back = |notice: &str| {
        Redirect::to(&format!(
            "/sandbox?account={}&notice={}",
            urlencode(&account.0),
            urlencode(notice)
        ))
        .into_response()
    };
    let days = match form.days.trim().parse::<i64>() {
        Ok(d) if (1..=730).contains(&d) => d,
        _ => return back("Advance by a whole number of days between 1 and 730."),
    };
    let req = super::store::RequestInfo {
        id: Some(super::store::new_id("req")),
        idempotency_key: None,
    };
    let frozen: Option<i64> = sqlx::query_scalar(
        "select (data ->> 'frozen_time')::bigint from stripe_sandbox.objects where account = $1 and id = $2",
    )
    .bind(&account.0)
    .bind(&id)
    .fetch_optional(&s.db)
    .await
    .ok()
    .flatten();
    let Some(frozen) = frozen else {
        return back("No such test clock.");
    };
    let target = frozen + days * 86_400;
    if let Err(e) = super::clocks::begin_advance(&s, &account, &req, &id, target).await {
        return back(&e.message);
    }
    super::clocks::finish_or_fail(&s, &account, &id, target, &req).await;
    back(&format!("Advanced {id} by {days} day(s)"))
}

/// Queues every delivery of the event again, as Stripe's dashboard "Resend" does.
pub async fn resend(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Query(to): Query<ResendTo>,
) -> Response {
    let account = Account(to.account);
    match delivery::resend(&s.db, &account.0, &id).await {
        Ok(n) => {
            let notice = if n == 0 {
                format!("{id} has no deliveries to resend")
            } else {
                format!("Resending {id} to {n} endpoint(s)")
            };
            let target = format!(
                "/sandbox?account={}&notice={}",
                urlencode(&account.0),
                urlencode(&notice)
            );
            Redirect::to(&target).into_response()
        }
        Err(e) => super::http::StripeError::from(e).into_response(),
    }
}

fn format_time(unix: i64) -> String {
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

fn urlencode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

pub fn escape(raw: &str) -> String {
    raw.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const HEAD: &str = r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stripe sandbox</title><style>
body{margin:0;font-family:system-ui,sans-serif;color:#1a1a2e;background:#f6f8fa}
header{background:#635bff;color:#fff;padding:.8rem 1rem}header h1{font-size:1.1rem;margin:0}
main{max-width:1100px;margin:0 auto;padding:1rem}.scroll{overflow-x:auto}.advance input{width:4rem}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9rem}th,td{border-bottom:1px solid #e3e8ee;padding:.5rem;text-align:left;vertical-align:top}
.delivery{margin-bottom:.3rem}.succeeded{color:#067647}.failed{color:#b42318}.pending{color:#8a5a00}
.notice{background:#eef0ff;border:1px solid #c7cbff;padding:.6rem;border-radius:6px}
button{font:inherit;padding:.3rem .7rem;border-radius:6px;border:1px solid #635bff;background:#fff;color:#635bff;cursor:pointer}
button:focus-visible,select:focus-visible{outline:3px solid #a5a0ff}
</style></head><body><header><h1>Stripe sandbox · test mode</h1></header><main>"#;

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_html() {
        assert_eq!(
            super::escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
