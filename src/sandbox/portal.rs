//! The Customer Portal: configurations and sessions through the API, and the hosted page at
//! `/sandbox/portal/{id}` doing what the configuration allows: switch plan with a proration
//! preview, cancel at period end with a reason, resume, update the card, invoice history.

use super::{
    cards::Behavior,
    checkout::{read_card, HEAD},
    dashboard::escape,
    http::{Account, ApiResult, Page, Params, StripeError},
    invoices::{self, reason, Line},
    lifecycle::product_name,
    payment_methods::{behavior_of, card_payment_method},
    resources::one_of,
    store::{self, now, RequestInfo},
    subscriptions::{add_interval, customer_now, plan_from_price},
    Sandbox,
};
use axum::{
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Redirect, Response},
    Form,
};
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::collections::HashMap;

pub const CONFIGURATION: &str = "billing_portal.configuration";
pub const SESSION: &str = "billing_portal.session";

const REASONS: [&str; 8] = [
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
];

fn flag(p: &Option<Params>, key: &str) -> Result<Option<bool>, StripeError> {
    p.as_ref()
        .map(|p| p.bool(key))
        .transpose()
        .map(Option::flatten)
}

/// Applies `business_profile`, `features`, `default_return_url` from the request.
fn apply_configuration(config: &mut Value, params: &Params) -> Result<(), StripeError> {
    if let Some(bp) = params.object("business_profile") {
        for key in ["headline", "privacy_policy_url", "terms_of_service_url"] {
            if let Some(v) = bp.str(key) {
                config["business_profile"][key] = if v.is_empty() { Value::Null } else { json!(v) };
            }
        }
    }
    if let Some(url) = params.str("default_return_url") {
        config["default_return_url"] = if url.is_empty() {
            Value::Null
        } else {
            json!(url)
        };
    }
    if let Some(active) = params.bool("active")? {
        config["active"] = json!(active);
    }
    let Some(features) = params.object("features") else {
        return Ok(());
    };
    let f = &mut config["features"];
    for simple in ["invoice_history", "payment_method_update"] {
        if let Some(on) = flag(&features.object(simple), "enabled")? {
            f[simple]["enabled"] = json!(on);
        }
    }
    let update = features.object("subscription_update");
    if let Some(on) = flag(&update, "enabled")? {
        f["subscription_update"]["enabled"] = json!(on);
    }
    if let Some(update) = &update {
        if let Some(p) = one_of(
            update,
            "proration_behavior",
            &["always_invoice", "create_prorations", "none"],
        )? {
            f["subscription_update"]["proration_behavior"] = json!(p);
        }
        let allowed = update.strings("default_allowed_updates");
        if update.get("default_allowed_updates").is_some() {
            f["subscription_update"]["default_allowed_updates"] = json!(allowed);
        }
        if let Some(Value::Array(products)) = update.get("products") {
            let mut list = Vec::new();
            for (i, p) in products.iter().enumerate() {
                let p = Params(p.as_object().cloned().unwrap_or_default());
                let product = p.required_str("product").map_err(|_| {
                    StripeError::missing(&format!(
                        "features[subscription_update][products][{i}][product]"
                    ))
                })?;
                list.push(json!({ "adjustable_quantity": { "enabled": false, "maximum": null, "minimum": 1 },
                                  "prices": p.strings("prices"), "product": product }));
            }
            f["subscription_update"]["products"] = json!(list);
        }
    }
    let cancel = features.object("subscription_cancel");
    if let Some(on) = flag(&cancel, "enabled")? {
        f["subscription_cancel"]["enabled"] = json!(on);
    }
    if let Some(cancel) = &cancel {
        if let Some(mode) = one_of(cancel, "mode", &["at_period_end", "immediately"])? {
            f["subscription_cancel"]["mode"] = json!(mode);
        }
        if let Some(reason) = cancel.object("cancellation_reason") {
            if let Some(on) = reason.bool("enabled")? {
                f["subscription_cancel"]["cancellation_reason"]["enabled"] = json!(on);
            }
            if reason.get("options").is_some() {
                let options = reason.strings("options");
                if let Some(bad) = options.iter().find(|o| !REASONS.contains(&o.as_str())) {
                    return Err(StripeError::invalid(
                        "features[subscription_cancel][cancellation_reason][options]",
                        format!("Invalid cancellation reason: {bad}"),
                    ));
                }
                f["subscription_cancel"]["cancellation_reason"]["options"] = json!(options);
            }
        }
    }
    Ok(())
}

fn configuration_json(now: i64) -> Value {
    json!({
        "id": store::new_id("bpc"), "object": CONFIGURATION, "active": true, "application": null,
        "business_profile": { "headline": null, "privacy_policy_url": null, "terms_of_service_url": null },
        "created": now, "default_return_url": null,
        "features": {
            "customer_update": { "allowed_updates": ["email", "address"], "enabled": false },
            "invoice_history": { "enabled": false },
            "payment_method_update": { "enabled": false, "payment_method_configuration": null },
            "subscription_cancel": { "cancellation_reason": { "enabled": false, "feedback_options": [], "options": [] },
                "enabled": false, "mode": "at_period_end", "proration_behavior": "none" },
            "subscription_update": { "billing_cycle_anchor": null, "default_allowed_updates": [], "enabled": false,
                "products": [], "proration_behavior": "create_prorations",
                "schedule_at_period_end": { "conditions": [] }, "trial_update_behavior": "end_trial" },
        },
        "is_default": false, "livemode": false, "login_page": { "enabled": false, "url": null },
        "metadata": {}, "name": null, "updated": now,
    })
}

pub async fn create_configuration(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let mut config = configuration_json(now());
    apply_configuration(&mut config, &params)?;
    params.metadata_into(&mut config)?;
    // The first configuration becomes the default, as in the Dashboard.
    let mut conn = s.db.acquire().await?;
    let existing: Option<String> = sqlx::query_scalar(
        "select id from stripe_sandbox.objects where account = $1 and object = $2 limit 1",
    )
    .bind(&account.0)
    .bind(CONFIGURATION)
    .fetch_optional(&mut *conn)
    .await?;
    drop(conn);
    config["is_default"] = json!(existing.is_none());
    s.create(&account, &req, config, &params).await
}

pub async fn update_configuration(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    s.update(&account, &req, CONFIGURATION, &id, &params, |c| {
        apply_configuration(c, &params)
    })
    .await
}

pub async fn list_configurations(
    State(s): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let list = store::list(
        &s.db,
        &account,
        CONFIGURATION,
        "/v1/billing_portal/configurations",
        &Page::from(&params)?,
        json!({}),
        None,
    )
    .await?;
    s.respond(&account, list, &params).await
}

/// `POST /v1/billing_portal/sessions`: `customer`, `return_url`, `configuration` (default: the
/// account's default configuration).
pub async fn create_session(
    State(s): State<Sandbox>,
    account: Account,
    headers: HeaderMap,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let customer = params.required_str("customer")?;
    let mut conn = s.db.acquire().await?;
    store::get(&mut conn, &account, "customer", &customer).await?;
    let config = match params.str("configuration") {
        Some(id) => store::get(&mut conn, &account, CONFIGURATION, &id).await?,
        None => sqlx::query_scalar(
            "select data from stripe_sandbox.objects where account = $1 and object = $2 and data @> '{\"is_default\": true}'",
        )
        .bind(&account.0)
        .bind(CONFIGURATION)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StripeError::invalid(
            "configuration",
            "No configuration provided and your test mode default configuration has not been created.",
        ))?,
    };
    drop(conn);
    let return_url = params
        .str("return_url")
        .or_else(|| config["default_return_url"].as_str().map(str::to_owned));
    let id = store::new_id("bps");
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let session = json!({
        "id": id, "object": SESSION, "configuration": config["id"], "created": now(), "customer": customer,
        "customer_account": null, "flow": null, "livemode": false, "locale": null, "on_behalf_of": null,
        "return_url": return_url, "url": format!("http://{host}/sandbox/portal/{id}"),
    });
    s.create(&account, &req, session, &params).await
}

/// The session, its account and its configuration, by session id (the page has no key).
async fn find(s: &Sandbox, id: &str) -> Result<Option<(Account, Value, Value)>, StripeError> {
    let row: Option<(String, Value)> = sqlx::query_as(
        "select account, data from stripe_sandbox.objects where object = $1 and id = $2",
    )
    .bind(SESSION)
    .bind(id)
    .fetch_optional(&s.db)
    .await?;
    let Some((account, session)) = row else {
        return Ok(None);
    };
    let account = Account(account);
    let mut conn = s.db.acquire().await?;
    let config = store::get(
        &mut conn,
        &account,
        CONFIGURATION,
        session["configuration"].as_str().unwrap_or_default(),
    )
    .await?;
    Ok(Some((account, session, config)))
}

#[derive(serde::Deserialize)]
pub struct View {
    /// A price to preview a switch to.
    preview: Option<String>,
    notice: Option<String>,
}

pub async fn page(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Query(v): Query<View>,
) -> Response {
    match find(&s, &id).await {
        Ok(Some((account, session, config))) => {
            match render(
                &s,
                &account,
                &session,
                &config,
                v.preview.as_deref(),
                v.notice.as_deref(),
                None,
            )
            .await
            {
                Ok(html) => Html(html).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Ok(None) => not_found(),
        Err(e) => e.into_response(),
    }
}

fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        Html(format!("{HEAD}<main class=\"narrow\"><h1>Link expired</h1><p>This billing portal link is not valid. Go back to the app and open billing again.</p></main></body></html>")),
    )
        .into_response()
}

/// The customer's live subscription (the portal manages one, like most SaaS).
async fn current_subscription(
    conn: &mut PgConnection,
    account: &Account,
    customer: &str,
) -> Result<Option<Value>, StripeError> {
    Ok(sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'subscription'
           and data ->> 'customer' = $2 and data ->> 'status' not in ('canceled', 'incomplete_expired')
         order by seq desc limit 1 for update",
    )
    .bind(&account.0)
    .bind(customer)
    .fetch_optional(conn)
    .await?)
}

/// What switching `sub` to `price` at `now` costs, as Stripe prorates by the second: credit
/// for the unused part of the current price, a charge for the new one (the rest of this
/// period, or a whole new period when the interval changes). Nothing during a trial.
pub fn proration_lines(
    sub: &Value,
    price: &Value,
    old_name: &str,
    new_name: &str,
    now: i64,
) -> (Vec<Line>, (i64, i64)) {
    let item = &sub["items"]["data"][0];
    let (start, end) = (
        item["current_period_start"].as_i64().unwrap_or(now),
        item["current_period_end"].as_i64().unwrap_or(now),
    );
    if sub["status"] == "trialing" {
        return (Vec::new(), (start, end));
    }
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let old = item["price"]["unit_amount"].as_i64().unwrap_or(0) * quantity;
    let new = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
    let length = (end - start).max(1);
    let left = (end - now).clamp(0, length);
    let prorate = |amount: i64| {
        ((amount as i128 * left as i128 + length as i128 / 2) / length as i128) as i64
    };
    let same_interval = item["price"]["recurring"]["interval"] == price["recurring"]["interval"]
        && item["price"]["recurring"]["interval_count"] == price["recurring"]["interval_count"];
    let period = if same_interval {
        (start, end)
    } else {
        (
            now,
            add_interval(
                now,
                price["recurring"]["interval"].as_str().unwrap_or("month"),
                price["recurring"]["interval_count"].as_i64().unwrap_or(1),
            ),
        )
    };
    let line = |description: String, amount: i64, price: &Value, period: (i64, i64)| Line {
        description,
        amount,
        price: Some(price.clone()),
        quantity,
        period,
        proration: true,
        subscription_item: item["id"].as_str().map(str::to_owned),
    };
    let lines = vec![
        line(
            format!("Unused time on {old_name}"),
            -prorate(old),
            &item["price"],
            (now, end),
        ),
        if same_interval {
            line(
                format!("Remaining time on {new_name}"),
                prorate(new),
                price,
                (now, end),
            )
        } else {
            line(format!("{new_name} from now"), new, price, period)
        },
    ];
    (lines, period)
}

async fn allowed_price(
    conn: &mut PgConnection,
    account: &Account,
    config: &Value,
    price_id: &str,
) -> Result<Value, StripeError> {
    let listed = config["features"]["subscription_update"]["products"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| {
            p["prices"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x == price_id)
        });
    if config["features"]["subscription_update"]["enabled"] != json!(true) || !listed {
        return Err(StripeError::invalid(
            "price",
            "This plan is not available in the portal.",
        ));
    }
    let price = store::get(conn, account, "price", price_id).await?;
    if price["active"] != json!(true) {
        return Err(StripeError::invalid(
            "price",
            "This plan is no longer available.",
        ));
    }
    Ok(price)
}

/// Each form on the page posts here with an `action`.
pub async fn act(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (account, session, config) = match find(&s, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => return e.into_response(),
    };
    let req = RequestInfo {
        id: Some(store::new_id("req")),
        idempotency_key: None,
    };
    let result = perform(&s, &account, &session, &config, &form, &req).await;
    match result {
        Ok(notice) => Redirect::to(&format!(
            "/sandbox/portal/{}?notice={}",
            escape(&id),
            url_encode(notice)
        ))
        .into_response(),
        Err(e) if e.status.is_client_error() || e.kind == "card_error" => {
            match render(
                &s,
                &account,
                &session,
                &config,
                form.get("price").map(String::as_str),
                None,
                Some(&e.message),
            )
            .await
            {
                Ok(html) => (axum::http::StatusCode::BAD_REQUEST, Html(html)).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => e.into_response(),
    }
}

fn url_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn perform(
    s: &Sandbox,
    account: &Account,
    session: &Value,
    config: &Value,
    form: &HashMap<String, String>,
    req: &RequestInfo,
) -> Result<&'static str, StripeError> {
    let features = &config["features"];
    let customer_id = session["customer"].as_str().unwrap_or_default();
    let mut tx = s.db.begin().await?;
    let mut customer = store::get(&mut tx, account, "customer", customer_id).await?;
    let action = form.get("action").map(String::as_str).unwrap_or_default();
    let notice = match action {
        "card" if features["payment_method_update"]["enabled"] == json!(true) => {
            let (number, month, year) = read_card(form).map_err(|m| StripeError {
                kind: "card_error",
                ..StripeError::invalid("card", m)
            })?;
            let mut pm = card_payment_method(
                &number,
                month,
                year,
                json!({ "address": customer["address"], "email": customer["email"], "name": customer["name"], "phone": null, "tax_id": null }),
            );
            if let Behavior::Declined(code) = behavior_of(&pm) {
                return Err(super::payment_methods::declined(code));
            }
            pm["customer"] = json!(customer_id);
            store::insert(&mut tx, account, &pm).await?;
            store::emit(&mut tx, account, "payment_method.attached", &pm, None, req).await?;
            let before = customer.clone();
            customer["invoice_settings"]["default_payment_method"] = pm["id"].clone();
            store::record_change(
                &mut tx,
                account,
                "customer.updated",
                &before,
                &customer,
                req,
            )
            .await?;
            "Your payment method was updated."
        }
        "cancel" | "resume" | "switch" => {
            let Some(before) = current_subscription(&mut tx, account, customer_id).await? else {
                return Err(StripeError::invalid(
                    "subscription",
                    "You have no active subscription.",
                ));
            };
            let mut after = before.clone();
            let at = customer_now(&mut tx, account, &customer).await?;
            let notice = match action {
                "cancel" if features["subscription_cancel"]["enabled"] == json!(true) => {
                    let reason = form.get("reason").filter(|r| REASONS.contains(&r.as_str()));
                    if features["subscription_cancel"]["cancellation_reason"]["enabled"]
                        == json!(true)
                        && reason.is_none()
                    {
                        return Err(StripeError::invalid(
                            "reason",
                            "Tell us why you are canceling.",
                        ));
                    }
                    after["cancel_at_period_end"] = json!(true);
                    after["cancel_at"] = before["items"]["data"][0]["current_period_end"].clone();
                    after["canceled_at"] = json!(at);
                    after["cancellation_details"] = json!({ "comment": form.get("comment").filter(|c| !c.trim().is_empty()),
                                                            "feedback": reason, "reason": "cancellation_requested" });
                    "Your subscription will be canceled at the end of the period."
                }
                "resume" if before["cancel_at_period_end"] == json!(true) => {
                    after["cancel_at_period_end"] = json!(false);
                    after["cancel_at"] = Value::Null;
                    after["canceled_at"] = Value::Null;
                    after["cancellation_details"] =
                        json!({ "comment": null, "feedback": null, "reason": null });
                    "Your subscription was renewed."
                }
                "switch" => {
                    let price_id = form.get("price").cloned().unwrap_or_default();
                    let price = allowed_price(&mut tx, account, config, &price_id).await?;
                    if before["items"]["data"][0]["price"]["id"] == price["id"] {
                        return Err(StripeError::invalid(
                            "price",
                            "You are already on this plan.",
                        ));
                    }
                    let old_name =
                        product_name(&mut tx, account, &before["items"]["data"][0]["price"])
                            .await?;
                    let new_name = product_name(&mut tx, account, &price).await?;
                    let (lines, period) =
                        proration_lines(&before, &price, &old_name, &new_name, at);
                    let item = &mut after["items"]["data"][0];
                    item["price"] = price.clone();
                    item["plan"] = plan_from_price(&price);
                    item["current_period_start"] = json!(period.0);
                    item["current_period_end"] = json!(period.1);
                    let net: i64 = lines.iter().map(|l| l.amount).sum();
                    // Stripe would keep a negative balance as credit; the sandbox does not model
                    // customer balances, so a downgrade invoices nothing.
                    if !lines.is_empty() && net > 0 {
                        let pm = invoices::paying_method(&mut tx, account, &customer, Some(&after))
                            .await?;
                        let automatic_tax = after["automatic_tax"]["enabled"] == json!(true);
                        let (invoice, outcome) = invoices::bill(
                            &mut tx,
                            account,
                            req,
                            &s.public_url,
                            &mut customer,
                            Some(&after),
                            &lines,
                            reason::UPDATE,
                            automatic_tax,
                            pm.as_ref(),
                            true,
                            None,
                            at,
                        )
                        .await?;
                        if let invoices::Outcome::Failed { message, .. } = outcome {
                            // Like the portal's default (`error_if_incomplete`): nothing changes.
                            return Err(StripeError {
                                kind: "card_error",
                                ..StripeError::invalid("card", message)
                            });
                        }
                        after["latest_invoice"] = invoice["id"].clone();
                    }
                    "Your plan was changed."
                }
                _ => {
                    return Err(StripeError::invalid(
                        "action",
                        "The portal does not allow this.",
                    ))
                }
            };
            store::record_change(
                &mut tx,
                account,
                "customer.subscription.updated",
                &before,
                &after,
                req,
            )
            .await?;
            notice
        }
        _ => {
            return Err(StripeError::invalid(
                "action",
                "The portal does not allow this.",
            ))
        }
    };
    tx.commit().await?;
    Ok(notice)
}

fn date(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[month repr:long] [day padding:none], [year]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

async fn render(
    s: &Sandbox,
    account: &Account,
    session: &Value,
    config: &Value,
    preview: Option<&str>,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<String, StripeError> {
    let features = &config["features"];
    let customer_id = session["customer"].as_str().unwrap_or_default();
    // Reads only: on a plain connection the store's `FOR UPDATE` lasts one statement, so a
    // page view never holds the subscription row while a portal action or a clock waits.
    let mut conn = s.db.acquire().await?;
    let customer = store::get(&mut conn, account, "customer", customer_id).await?;
    let sub = current_subscription(&mut conn, account, customer_id).await?;
    let mut html = String::from(HEAD);
    html.push_str(r#"<main class="narrow portal">"#);
    if let Some(url) = session["return_url"].as_str() {
        html.push_str(&format!(
            r#"<a class="cancel" data-testid="portal-return" href="{}">← Return to the app</a>"#,
            escape(url)
        ));
    }
    let headline = config["business_profile"]["headline"]
        .as_str()
        .unwrap_or("Manage your billing");
    html.push_str(&format!("<h1>{}</h1>", escape(headline)));
    if let Some(n) = notice {
        html.push_str(&format!(
            r#"<p class="promo-ok" role="status" data-testid="portal-notice">{}</p>"#,
            escape(n)
        ));
    }
    if let Some(e) = error {
        html.push_str(&format!(
            r#"<p class="error" role="alert" data-testid="portal-error">{}</p>"#,
            escape(e)
        ));
    }
    let money = |amount: i64, currency: &Value| {
        crate::catalog::money::format_money(amount, currency.as_str().unwrap_or("usd"))
    };
    html.push_str("<h2>Current plan</h2>");
    match &sub {
        None => html.push_str("<p>No active subscription.</p>"),
        Some(sub) => {
            let item = &sub["items"]["data"][0];
            let name = product_name(&mut conn, account, &item["price"]).await?;
            let per = item["price"]["recurring"]["interval"]
                .as_str()
                .unwrap_or("month");
            let end = item["current_period_end"].as_i64().unwrap_or(0);
            let when = if sub["cancel_at_period_end"] == json!(true) {
                format!(
                    r#"<span data-testid="portal-cancels">Cancels {}</span>"#,
                    date(end)
                )
            } else if sub["status"] == "trialing" {
                format!(
                    "Trial ends {}",
                    date(sub["trial_end"].as_i64().unwrap_or(end))
                )
            } else {
                format!("Renews {}", date(end))
            };
            html.push_str(&format!(
                r#"<div class="line" data-testid="portal-plan"><span><strong>{}</strong> · {} / {per} · {}</span><span>{when}</span></div>"#,
                escape(&name),
                money(item["price"]["unit_amount"].as_i64().unwrap_or(0), &item["price"]["currency"]),
                match sub["status"].as_str().unwrap_or_default() {
                    "trialing" => "Trial",
                    "active" => "Active",
                    "past_due" => "Past due",
                    "unpaid" => "Unpaid",
                    "incomplete" => "Incomplete",
                    "paused" => "Paused",
                    _ => "Inactive",
                },
            ));
            let id = escape(session["id"].as_str().unwrap_or_default());
            if features["subscription_update"]["enabled"] == json!(true)
                && sub["cancel_at_period_end"] != json!(true)
            {
                html.push_str("<h2>Change plan</h2><ul class=\"plans\">");
                for product in features["subscription_update"]["products"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    for price_id in product["prices"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        if item["price"]["id"] == price_id {
                            continue;
                        }
                        let Ok(price) = store::get(&mut conn, account, "price", price_id).await
                        else {
                            continue;
                        };
                        if price["active"] != json!(true) {
                            continue;
                        }
                        let pname = product_name(&mut conn, account, &price).await?;
                        let pper = price["recurring"]["interval"].as_str().unwrap_or("month");
                        html.push_str(&format!(
                            r#"<li><span>{} · {} / {pper}</span> <a data-testid="preview-{price_id}" href="/sandbox/portal/{id}?preview={price_id}">Select</a></li>"#,
                            escape(&pname),
                            money(price["unit_amount"].as_i64().unwrap_or(0), &price["currency"]),
                        ));
                    }
                }
                html.push_str("</ul>");
                if let Some(preview) = preview {
                    if let Ok(price) = allowed_price(&mut conn, account, config, preview).await {
                        let at = customer_now(&mut conn, account, &customer).await?;
                        let new_name = product_name(&mut conn, account, &price).await?;
                        let (lines, _) = proration_lines(sub, &price, &name, &new_name, at);
                        let net: i64 = lines.iter().map(|l| l.amount).sum::<i64>().max(0);
                        let detail: String = lines
                            .iter()
                            .map(|l| {
                                format!(
                                    r#"<div class="line"><span>{}</span><span>{}</span></div>"#,
                                    escape(&l.description),
                                    money(l.amount, &price["currency"])
                                )
                            })
                            .collect();
                        html.push_str(&format!(
                            r#"<section class="preview" data-testid="proration-preview"><h3>Switch to {}</h3>{detail}<div class="line total"><span>Amount due today</span><span data-testid="amount-due-now">{}</span></div>
<form method="post" action="/sandbox/portal/{id}"><input type="hidden" name="action" value="switch"><input type="hidden" name="price" value="{}"><button type="submit" data-testid="confirm-switch">Confirm</button></form></section>"#,
                            escape(&new_name),
                            money(net, &price["currency"]),
                            escape(preview),
                        ));
                    }
                }
            }
            if sub["cancel_at_period_end"] == json!(true) {
                html.push_str(&format!(r#"<form method="post" action="/sandbox/portal/{id}"><input type="hidden" name="action" value="resume"><button type="submit" data-testid="resume">Renew subscription</button></form>"#));
            } else if features["subscription_cancel"]["enabled"] == json!(true) {
                let options: String = features["subscription_cancel"]["cancellation_reason"]
                    ["options"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|o| format!(r#"<option value="{o}">{}</option>"#, o.replace('_', " ")))
                    .collect();
                let reasons = if features["subscription_cancel"]["cancellation_reason"]["enabled"]
                    == json!(true)
                {
                    format!(
                        r#"<label>Why are you canceling?<select name="reason" required><option value="">Choose a reason</option>{options}</select></label><label>Anything else? (optional)<input name="comment"></label>"#
                    )
                } else {
                    String::new()
                };
                html.push_str(&format!(r#"<h2>Cancel</h2><form method="post" action="/sandbox/portal/{id}"><input type="hidden" name="action" value="cancel">{reasons}<button type="submit" class="secondary" data-testid="cancel-plan">Cancel at period end</button></form>"#));
            }
        }
    }
    if features["payment_method_update"]["enabled"] == json!(true) {
        let card = match customer["invoice_settings"]["default_payment_method"].as_str() {
            Some(pm) => store::get(&mut conn, account, "payment_method", pm)
                .await
                .ok(),
            None => None,
        };
        let shown = card
            .map(|pm| {
                format!(
                    "{} •••• {} (expires {}/{})",
                    escape(pm["card"]["brand"].as_str().unwrap_or("card")),
                    escape(pm["card"]["last4"].as_str().unwrap_or("")),
                    pm["card"]["exp_month"],
                    pm["card"]["exp_year"]
                )
            })
            .unwrap_or_else(|| "No card on file".into());
        let id = escape(session["id"].as_str().unwrap_or_default());
        html.push_str(&format!(
            r#"<h2>Payment method</h2><p data-testid="portal-card">{shown}</p><details><summary>Update card</summary><form method="post" action="/sandbox/portal/{id}"><input type="hidden" name="action" value="card">
<label>Card number<input name="card_number" inputmode="numeric" autocomplete="cc-number" required></label>
<div class="row"><label>Expiry<input name="card_expiry" placeholder="MM / YY" required></label><label>CVC<input name="card_cvc" required></label></div>
<button type="submit" data-testid="save-card">Save card</button></form></details>"#
        ));
    }
    if features["invoice_history"]["enabled"] == json!(true) {
        let invoices: Vec<Value> = sqlx::query_scalar(
            "select data from stripe_sandbox.objects where account = $1 and object = 'invoice' and data ->> 'customer' = $2 order by seq desc limit 24",
        )
        .bind(&account.0)
        .bind(customer_id)
        .fetch_all(&mut *conn)
        .await?;
        html.push_str("<h2>Invoice history</h2><ul class=\"invoices\">");
        for inv in &invoices {
            html.push_str(&format!(
                r#"<li><a href="{}">{}</a> · {} · {}</li>"#,
                escape(inv["hosted_invoice_url"].as_str().unwrap_or("#")),
                date(inv["created"].as_i64().unwrap_or(0)),
                money(inv["total"].as_i64().unwrap_or(0), &inv["currency"]),
                escape(inv["status"].as_str().unwrap_or_default()),
            ));
        }
        if invoices.is_empty() {
            html.push_str("<li>No invoices yet.</li>");
        }
        html.push_str("</ul>");
    }
    html.push_str("</main></body></html>");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(id: &str, amount: i64, interval: &str) -> Value {
        json!({ "id": id, "unit_amount": amount, "currency": "usd", "recurring": { "interval": interval, "interval_count": 1 } })
    }

    #[test]
    fn switching_halfway_through_charges_half_the_difference() {
        let sub = json!({ "status": "active", "items": { "data": [{ "id": "si_1", "quantity": 1,
            "current_period_start": 0, "current_period_end": 1000, "price": price("p_pro", 2900, "month") }] } });
        let (lines, period) =
            proration_lines(&sub, &price("p_team", 7900, "month"), "Pro", "Team", 500);
        assert_eq!(period, (0, 1000));
        assert_eq!(
            lines.iter().map(|l| l.amount).collect::<Vec<_>>(),
            vec![-1450, 3950]
        );
        let yearly = proration_lines(
            &sub,
            &price("p_year", 29000, "year"),
            "Pro",
            "Pro yearly",
            500,
        );
        assert_eq!(yearly.0[1].amount, 29000);
        assert_eq!(yearly.1 .0, 500);
        let mut trial = sub.clone();
        trial["status"] = json!("trialing");
        assert!(
            proration_lines(&trial, &price("p_team", 7900, "month"), "Pro", "Team", 500)
                .0
                .is_empty()
        );
    }

    #[test]
    fn the_configuration_shape_decodes_in_async_stripe() {
        let mut config = configuration_json(1);
        let params = Params::parse("features[subscription_update][enabled]=true&features[subscription_update][products][0][product]=prod_1&features[subscription_update][products][0][prices][0]=price_1&features[subscription_cancel][enabled]=true&features[subscription_cancel][cancellation_reason][enabled]=true&features[subscription_cancel][cancellation_reason][options][0]=too_expensive&business_profile[headline]=Acme").unwrap();
        apply_configuration(&mut config, &params).unwrap();
        let decoded: stripe_billing::BillingPortalConfiguration =
            miniserde::json::from_str(&config.to_string()).expect("decodes");
        assert!(decoded.features.subscription_update.enabled);
        assert_eq!(
            decoded.features.subscription_update.products.unwrap()[0].prices,
            vec!["price_1"]
        );
        assert_eq!(decoded.business_profile.headline.as_deref(), Some("Acme"));
    }
}
