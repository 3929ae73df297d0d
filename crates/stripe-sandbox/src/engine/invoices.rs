//! Invoices and what pays them: every period a subscription bills, every proration and every
//! one-time Checkout payment with an invoice becomes one, paid through a payment intent.
//!
//! The sequence follows Stripe: `invoice.created` → `invoice.finalized` → a payment attempt
//! (`payment_intent.*`, `charge.*`) → `invoice.paid` + `invoice.payment_succeeded`, or
//! `invoice.payment_failed` (or `invoice.payment_action_required` for 3-D Secure).

use super::{
    coupons::discount_amount,
    customers::customer_now,
    payments::{attempt_payment, charge_outcome, Outcome},
    tax,
};
use crate::{
    http::{Account, RequestInfo, StripeError},
    ids::new_id,
    kind::Kind,
    store,
};
use serde_json::{json, Value};
use sqlx::PgConnection;

/// One line of an invoice.
#[derive(Debug, Clone)]
pub struct Line {
    pub description: String,
    pub amount: i64,
    pub price: Option<Value>,
    pub quantity: i64,
    pub period: (i64, i64),
    pub proration: bool,
    pub subscription_item: Option<String>,
}

/// A metered price bills what its meter aggregated, after the period; a licensed one bills
/// its quantity, in advance.
pub fn is_metered(price: &Value) -> bool {
    price["recurring"]["usage_type"] == "metered"
}

impl Line {
    /// A full period of a licensed subscription item, billed in advance. A metered item bills
    /// nothing in advance (a zero line, as on Stripe): its usage comes with the next invoice.
    pub fn for_item(item: &Value, product_name: &str, period: (i64, i64)) -> Self {
        if is_metered(&item["price"]) {
            return Self::for_usage(item, product_name, period, 0);
        }
        let quantity = item["quantity"].as_i64().unwrap_or(1);
        let unit = item["price"]["unit_amount"].as_i64().unwrap_or(0);
        Self {
            description: format!("{quantity} × {product_name}"),
            amount: unit * quantity,
            price: Some(item["price"].clone()),
            quantity,
            period,
            proration: false,
            subscription_item: item["id"].as_str().map(str::to_owned),
        }
    }

    /// A metered item's usage over `period`: `quantity` units through the price's tiers or
    /// unit amount.
    pub fn for_usage(item: &Value, product_name: &str, period: (i64, i64), quantity: i64) -> Self {
        Self {
            description: format!("{quantity} × {product_name} (usage)"),
            amount: super::meters::amount_for(&item["price"], quantity),
            price: Some(item["price"].clone()),
            quantity,
            period,
            proration: false,
            subscription_item: item["id"].as_str().map(str::to_owned),
        }
    }

    fn to_json(&self, invoice: &str, currency: &Value, subscription: Option<&str>) -> Value {
        let parent = match (subscription, &self.subscription_item) {
            (Some(sub), Some(item)) => json!({
                "type": "subscription_item_details",
                "invoice_item_details": null,
                "subscription_item_details": { "invoice_item": null, "proration": self.proration,
                    "proration_details": { "credited_items": null }, "subscription": sub, "subscription_item": item },
            }),
            _ => Value::Null,
        };
        let pricing = self.price.as_ref().map(|p| {
            json!({ "type": "price_details", "price_details": { "price": p["id"], "product": p["product"] },
                    "unit_amount_decimal": p["unit_amount_decimal"] })
        });
        json!({
            "id": new_id("il"), "object": "line_item", "amount": self.amount, "currency": currency,
            "description": self.description, "discount_amounts": [], "discountable": true, "discounts": [],
            "invoice": invoice, "livemode": false, "metadata": {}, "parent": parent,
            "period": { "end": self.period.1, "start": self.period.0 }, "pretax_credit_amounts": [],
            "pricing": pricing, "quantity": self.quantity, "subscription": subscription,
            "subtotal": self.amount, "taxes": [],
        })
    }
}

/// Why an invoice was made (Stripe's `billing_reason`).
pub mod reason {
    pub const CREATE: &str = "subscription_create";
    pub const CYCLE: &str = "subscription_cycle";
    pub const UPDATE: &str = "subscription_update";
}

/// The invoice, finalized (status `open`), before any payment attempt.
pub fn invoice_json(
    public_url: &str,
    customer: &Value,
    subscription: Option<&Value>,
    lines: &[Line],
    billing_reason: &str,
    tax: i64,
    now: i64,
) -> Value {
    let id = new_id("in");
    let currency = subscription
        .map(|s| s["currency"].clone())
        .or_else(|| {
            lines
                .first()
                .and_then(|l| l.price.as_ref())
                .map(|p| p["currency"].clone())
        })
        .unwrap_or(json!("usd"));
    let sub_id = subscription.and_then(|s| s["id"].as_str());
    let subtotal: i64 = lines.iter().map(|l| l.amount).sum();
    let total = subtotal + tax;
    let period = lines.first().map(|l| l.period).unwrap_or((now, now));
    let sequence = customer["next_invoice_sequence"].as_i64().unwrap_or(1);
    let number = format!(
        "{}-{sequence:04}",
        customer["invoice_prefix"].as_str().unwrap_or("SANDBOX")
    );
    let parent = sub_id.map(|s| {
        json!({ "type": "subscription_details", "quote_details": null,
                "subscription_details": { "metadata": subscription.map(|s| s["metadata"].clone()), "subscription": s } })
    });
    json!({
        "id": id, "object": "invoice", "account_country": "US", "account_name": "saas-billing sandbox",
        "account_tax_ids": null, "amount_due": total, "amount_overpaid": 0, "amount_paid": 0,
        "amount_remaining": total, "amount_shipping": 0, "application": null, "attempt_count": 0,
        "attempted": false, "auto_advance": true,
        "automatic_tax": { "disabled_reason": null, "enabled": tax > 0, "liability": null, "provider": null, "status": null },
        "automatically_finalizes_at": null, "billing_reason": billing_reason,
        "collection_method": "charge_automatically", "created": now, "currency": currency,
        "custom_fields": null, "customer": customer["id"], "customer_address": customer["address"],
        "customer_email": customer["email"], "customer_name": customer["name"], "customer_phone": null,
        "customer_shipping": null, "customer_tax_exempt": "none", "customer_tax_ids": [],
        "default_payment_method": null, "default_source": null, "default_tax_rates": [], "description": null,
        "discounts": [], "due_date": null, "effective_at": now, "ending_balance": 0, "footer": null,
        "from_invoice": null, "hosted_invoice_url": format!("{public_url}/sandbox/invoices/{id}"),
        "invoice_pdf": format!("{public_url}/sandbox/invoices/{id}?format=pdf"),
        "issuer": { "type": "self" }, "last_finalization_error": null, "latest_revision": null,
        "lines": { "object": "list", "data": lines.iter().map(|l| l.to_json(&id, &currency, sub_id)).collect::<Vec<_>>(),
                   "has_more": false, "url": format!("/v1/invoices/{id}/lines") },
        "livemode": false, "metadata": {}, "next_payment_attempt": null, "number": number,
        "on_behalf_of": null, "parent": parent,
        "payment_settings": { "default_mandate": null, "payment_method_options": null, "payment_method_types": null },
        "payments": { "object": "list", "data": [], "has_more": false, "url": "/v1/invoice_payments" },
        "period_end": period.1, "period_start": period.0, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "receipt_number": null, "rendering": null, "shipping_cost": null,
        "shipping_details": null, "starting_balance": 0, "statement_descriptor": null, "status": "open",
        "status_transitions": { "finalized_at": now, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null },
        "subtotal": subtotal, "subtotal_excluding_tax": subtotal, "test_clock": customer["test_clock"],
        "total": total, "total_discount_amounts": [], "total_excluding_tax": subtotal,
        "total_pretax_credit_amounts": [],
        "total_taxes": if tax > 0 { json!([{ "amount": tax, "tax_behavior": "exclusive", "tax_rate_details": null,
            "taxability_reason": "standard_rated", "taxable_amount": subtotal, "type": "tax_rate_details" }]) } else { json!([]) },
        "webhooks_delivered_at": now,
    })
}

/// The invoice `lines` make, with the subscription's coupon (a `once` coupon only on the
/// first invoice) and tax.
pub fn compose(
    public_url: &str,
    customer: &Value,
    subscription: Option<&Value>,
    lines: &[Line],
    billing_reason: &str,
    automatic_tax: bool,
    now: i64,
) -> Value {
    let subtotal: i64 = lines.iter().map(|l| l.amount).sum();
    // A coupon from Checkout: once applies to the first invoice, others to every invoice.
    let discount = subscription
        .map(|s| &s["sandbox"]["coupon"])
        .filter(|c| c.is_object() && (c["duration"] != "once" || billing_reason == reason::CREATE))
        .map(|c| discount_amount(c, subtotal))
        .unwrap_or(0);
    let tax = if automatic_tax {
        tax::amount(customer, subtotal - discount)
    } else {
        0
    };
    let mut invoice = invoice_json(
        public_url,
        customer,
        subscription,
        lines,
        billing_reason,
        tax,
        now,
    );
    apply_discount(&mut invoice, discount);
    invoice
}

/// Takes `discount` off an invoice made by [`invoice_json`] (whose tax is already on the
/// discounted amount): its totals and `total_discount_amounts`, as Stripe shows them.
pub fn apply_discount(invoice: &mut Value, discount: i64) {
    if discount <= 0 {
        return;
    }
    let subtotal = invoice["subtotal"].as_i64().unwrap_or(0);
    let tax: i64 = invoice["total_taxes"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["amount"].as_i64()).sum())
        .unwrap_or(0);
    let total = subtotal - discount + tax;
    invoice["total"] = json!(total);
    invoice["amount_due"] = json!(total);
    invoice["amount_remaining"] = json!(total);
    invoice["total_excluding_tax"] = json!(subtotal - discount);
    invoice["total_discount_amounts"] = json!([{ "amount": discount, "discount": new_id("di") }]);
}

/// The subscription's next invoice as it stands: this period's metered usage so far and
/// the next period's licensed items, with coupon and tax (`POST /v1/invoices/create_preview`).
/// Nothing is stored.
pub async fn preview(
    conn: &mut PgConnection,
    account: &Account,
    public_url: &str,
    subscription: &Value,
) -> Result<Value, StripeError> {
    if matches!(
        subscription["status"].as_str(),
        Some("canceled" | "incomplete_expired")
    ) || subscription["cancel_at_period_end"] == json!(true)
    {
        return Err(StripeError {
            code: Some("invoice_upcoming_none"),
            ..StripeError::invalid(
                "subscription",
                "No upcoming invoices for this subscription.",
            )
        });
    }
    let customer = super::customers::customer_of(conn, account, subscription).await?;
    let customer_id = customer["id"].as_str().unwrap_or_default().to_owned();
    let first = &subscription["items"]["data"][0];
    let (start, end) = (
        first["current_period_start"].as_i64().unwrap_or(0),
        first["current_period_end"].as_i64().unwrap_or(0),
    );
    let recurring = &first["price"]["recurring"];
    let next_end = super::subscriptions::add_interval(
        end,
        recurring["interval"].as_str().unwrap_or("month"),
        recurring["interval_count"].as_i64().unwrap_or(1),
    );
    let mut lines = Vec::new();
    for item in subscription["items"]["data"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = super::catalog::product_name(conn, account, &item["price"]).await?;
        if is_metered(&item["price"]) {
            let used =
                super::meters::item_usage(conn, account, item, &customer_id, start, end).await?;
            lines.push(Line::for_usage(item, &name, (start, end), used));
        } else {
            lines.push(Line::for_item(item, &name, (end, next_end)));
        }
    }
    let automatic_tax = subscription["automatic_tax"]["enabled"] == json!(true);
    let mut invoice = compose(
        public_url,
        &customer,
        Some(subscription),
        &lines,
        reason::CYCLE,
        automatic_tax,
        end,
    );
    invoice["id"] = json!(format!("upcoming_{}", new_id("in")));
    invoice["status"] = json!("draft");
    invoice["number"] = Value::Null;
    invoice["hosted_invoice_url"] = Value::Null;
    invoice["invoice_pdf"] = Value::Null;
    invoice["status_transitions"]["finalized_at"] = Value::Null;
    invoice["next_payment_attempt"] = json!(end);
    invoice["webhooks_delivered_at"] = Value::Null;
    Ok(invoice)
}

/// Stores a finalized invoice (`invoice.created`, `invoice.finalized`) and tries to pay it.
/// A zero invoice (a trial's first) is paid at once.
#[allow(clippy::too_many_arguments)]
pub async fn bill(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    public_url: &str,
    customer: &mut Value,
    subscription: Option<&Value>,
    lines: &[Line],
    billing_reason: &str,
    automatic_tax: bool,
    pm: Option<&Value>,
    authenticated: bool,
    retry_at: Option<i64>,
    now: i64,
) -> Result<(Value, Outcome), StripeError> {
    let mut invoice = compose(
        public_url,
        customer,
        subscription,
        lines,
        billing_reason,
        automatic_tax,
        now,
    );
    // The number is taken: the customer's next invoice gets the next one.
    customer["next_invoice_sequence"] =
        json!(customer["next_invoice_sequence"].as_i64().unwrap_or(1) + 1);
    store::save(conn, account, customer).await?;
    let mut draft = invoice.clone();
    draft["status"] = json!("draft");
    draft["status_transitions"]["finalized_at"] = Value::Null;
    draft["number"] = Value::Null;
    draft["hosted_invoice_url"] = Value::Null;
    draft["invoice_pdf"] = Value::Null;
    store::insert(conn, account, &invoice).await?;
    store::emit(conn, account, "invoice.created", &draft, None, req).await?;
    store::emit(conn, account, "invoice.finalized", &invoice, None, req).await?;
    let outcome = pay(
        conn,
        account,
        req,
        &mut invoice,
        customer,
        pm,
        authenticated,
        retry_at,
        now,
    )
    .await?;
    Ok((invoice, outcome))
}

/// A payment attempt on an open invoice, with the invoice's events. The caller sets
/// `next_payment_attempt` for a failed renewal (the retry schedule is the subscription's).
#[allow(clippy::too_many_arguments)]
pub async fn pay(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    invoice: &mut Value,
    customer: &Value,
    pm: Option<&Value>,
    authenticated: bool,
    retry_at: Option<i64>,
    now: i64,
) -> Result<Outcome, StripeError> {
    let amount = invoice["amount_remaining"].as_i64().unwrap_or(0);
    let before = invoice.clone();
    let outcome = if amount == 0 {
        Outcome::Paid
    } else {
        let outcome = charge_outcome(pm, authenticated);
        let description = format!("Invoice {}", invoice["number"].as_str().unwrap_or_default());
        let pi = attempt_payment(
            conn,
            account,
            req,
            customer,
            pm,
            amount,
            &invoice["currency"],
            &description,
            &outcome,
            now,
        )
        .await?;
        invoice["attempt_count"] = json!(invoice["attempt_count"].as_i64().unwrap_or(0) + 1);
        invoice["attempted"] = json!(true);
        let payment = json!({
            "id": new_id("inpay"), "object": "invoice_payment", "amount_paid": if outcome == Outcome::Paid { json!(amount) } else { Value::Null },
            "amount_requested": amount, "created": now, "currency": invoice["currency"], "invoice": invoice["id"],
            "is_default": true, "livemode": false, "payment": { "type": "payment_intent", "payment_intent": pi["id"], "charge": null, "payment_record": null },
            "status": if outcome == Outcome::Paid { "paid" } else { "open" },
            "status_transitions": { "canceled_at": null, "paid_at": if outcome == Outcome::Paid { json!(now) } else { Value::Null } },
        });
        if let Some(list) = invoice["payments"]["data"].as_array_mut() {
            list.insert(0, payment);
        }
        outcome
    };
    match &outcome {
        Outcome::Paid => {
            invoice["status"] = json!("paid");
            invoice["amount_paid"] = json!(invoice["amount_paid"].as_i64().unwrap_or(0) + amount);
            invoice["amount_remaining"] = json!(0);
            invoice["next_payment_attempt"] = Value::Null;
            invoice["status_transitions"]["paid_at"] = json!(now);
            invoice["attempted"] = json!(true);
            store::save(conn, account, invoice).await?;
            let prev = store::previous_attributes(&before, invoice);
            store::emit(conn, account, "invoice.updated", invoice, Some(prev), req).await?;
            store::emit(conn, account, "invoice.paid", invoice, None, req).await?;
            store::emit(
                conn,
                account,
                "invoice.payment_succeeded",
                invoice,
                None,
                req,
            )
            .await?;
        }
        Outcome::Failed { .. } => {
            invoice["next_payment_attempt"] = json!(retry_at);
            store::save(conn, account, invoice).await?;
            store::emit(conn, account, "invoice.payment_failed", invoice, None, req).await?;
        }
        Outcome::RequiresAction => {
            invoice["next_payment_attempt"] = json!(retry_at);
            store::save(conn, account, invoice).await?;
            store::emit(
                conn,
                account,
                "invoice.payment_action_required",
                invoice,
                None,
                req,
            )
            .await?;
        }
    }
    Ok(outcome)
}

/// The payment method a customer's invoices are charged to: the subscription's, else the
/// customer's default.
pub async fn paying_method(
    conn: &mut PgConnection,
    account: &Account,
    customer: &Value,
    subscription: Option<&Value>,
) -> Result<Option<Value>, StripeError> {
    // A default that was deleted or detached since it was set is no card at all: Stripe
    // then fails the invoice for want of a payment method, it does not error the request.
    let candidates = [
        subscription.and_then(|s| s["default_payment_method"].as_str()),
        customer["invoice_settings"]["default_payment_method"].as_str(),
    ];
    for id in candidates.into_iter().flatten() {
        match store::get(conn, account, Kind::PaymentMethod, id).await {
            Ok(pm) if pm["customer"] == customer["id"] => return Ok(Some(pm)),
            Ok(_) => {}
            Err(e) if e.is_missing() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Pays an open invoice now (the API, the hosted invoice page, a clock's retry) and moves
/// its subscription: paid → active; failed → stays as it is.
pub async fn settle(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    invoice_id: &str,
    pm_id: Option<&str>,
    authenticated: bool,
) -> Result<(Value, Outcome), StripeError> {
    let mut invoice = store::get(conn, account, Kind::Invoice, invoice_id).await?;
    if invoice["status"] != "open" {
        return Err(StripeError::invalid(
            "invoice",
            "Invoice is already paid or voided.",
        ));
    }
    let customer = store::get(
        conn,
        account,
        Kind::Customer,
        invoice["customer"].as_str().unwrap_or_default(),
    )
    .await?;
    let sub_id = invoice["parent"]["subscription_details"]["subscription"]
        .as_str()
        .map(str::to_owned);
    let sub = match &sub_id {
        Some(id) => Some(store::get(conn, account, Kind::Subscription, id).await?),
        None => None,
    };
    let pm = match pm_id {
        Some(id) => Some(
            store::get(conn, account, Kind::PaymentMethod, id)
                .await
                .map_err(|e| e.in_param("payment_method"))?,
        ),
        None => paying_method(conn, account, &customer, sub.as_ref()).await?,
    };
    let now = customer_now(conn, account, &customer).await?;
    // A customer paying by hand does not move the automatic retry schedule.
    let retry_at = invoice["next_payment_attempt"].as_i64();
    let outcome = pay(
        conn,
        account,
        req,
        &mut invoice,
        &customer,
        pm.as_ref(),
        authenticated,
        retry_at,
        now,
    )
    .await?;
    if outcome == Outcome::Paid {
        if let Some(before) = sub {
            if matches!(
                before["status"].as_str(),
                Some("past_due" | "unpaid" | "incomplete")
            ) {
                let mut after = before.clone();
                after["status"] = json!("active");
                store::record_change(
                    conn,
                    account,
                    "customer.subscription.updated",
                    &before,
                    &after,
                    req,
                )
                .await?;
            }
        }
    }
    Ok((invoice, outcome))
}

/// Invoice payments (`/v1/invoice_payments`), newest first: every attempt to pay an invoice,
/// held on the invoice's `payments` list. `invoice` narrows to one invoice, `id` to one
/// payment.
pub async fn payments(
    conn: &mut PgConnection,
    account: &Account,
    invoice: Option<&str>,
    id: Option<&str>,
) -> Result<Vec<Value>, StripeError> {
    Ok(sqlx::query_scalar(
        "select p.data from stripe_sandbox.objects o
           cross join lateral jsonb_array_elements(o.data -> 'payments' -> 'data')
             with ordinality as p(data, n)
          where o.account = $1 and o.object = 'invoice'
            and ($2::text is null or o.id = $2) and ($3::text is null or p.data ->> 'id' = $3)
          order by (p.data ->> 'created')::bigint desc, o.id desc, p.n",
    )
    .bind(&account.0)
    .bind(invoice)
    .bind(id)
    .fetch_all(&mut *conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price() -> Value {
        json!({ "id": "price_1", "product": "prod_1", "unit_amount": 2900, "unit_amount_decimal": "2900", "currency": "usd" })
    }

    #[test]
    fn the_invoice_shape_decodes_in_async_stripe() {
        let customer = json!({ "id": "cus_1", "invoice_prefix": "ABCD", "next_invoice_sequence": 3, "address": null,
                               "email": "a@example.com", "name": null, "test_clock": null });
        let sub = json!({ "id": "sub_1", "currency": "usd", "metadata": { "user_id": "u" } });
        let line = Line {
            description: "1 × Pro".into(),
            amount: 2900,
            price: Some(price()),
            quantity: 1,
            period: (100, 200),
            proration: false,
            subscription_item: Some("si_1".into()),
        };
        let invoice = invoice_json(
            "http://x",
            &customer,
            Some(&sub),
            &[line],
            reason::CYCLE,
            290,
            150,
        );
        let decoded: stripe_shared::Invoice = miniserde::json::from_str(&invoice.to_string())
            .expect("every required field is present");
        assert_eq!(decoded.total, 3190);
        assert_eq!(decoded.number.as_deref(), Some("ABCD-0003"));
        assert_eq!(decoded.lines.data[0].period.end, 200);
        let parent = decoded.parent.expect("parent");
        assert_eq!(
            parent
                .subscription_details
                .expect("details")
                .subscription
                .id()
                .as_str(),
            "sub_1"
        );
    }
}
