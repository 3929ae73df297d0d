//! Checkout Sessions: created through the API, completed by the customer on the hosted page,
//! expired on request or at `expires_at`. Completion does what Stripe does: the customer,
//! the saved card, the subscription with the session's trial and metadata (or, in payment
//! mode, one charge and an invoice when asked for), and `checkout.session.completed`.

use super::{
    cards::{behavior_of, Behavior},
    catalog::{load_prices, product_name},
    coupons::{self, discount_amount, redeemable, used_up, CodeRefused},
    customers::{customer_json, customer_now},
    invoices::{self, Line},
    payment_methods::save_typed_card,
    payments::{attempt_payment, charge_outcome, Outcome},
    subscriptions::{self, subscription_json, NewSubscription},
    tax,
};
use crate::{
    http::{Account, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store,
};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

/// What `POST /v1/checkout/sessions` asks for, parsed.
pub struct NewSession {
    /// `subscription` or `payment`.
    pub mode: String,
    pub line_items: Vec<(String, i64)>,
    pub success_url: String,
    pub cancel_url: Option<String>,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub client_reference_id: Option<String>,
    pub expires_at: Option<i64>,
    pub allow_promotion_codes: Option<bool>,
    pub automatic_tax: bool,
    pub billing_address_collection: Option<String>,
    pub invoice_creation: bool,
    pub trial_period_days: Option<i64>,
    pub subscription_metadata: Value,
    pub customer_update: Option<Value>,
    pub payment_intent_metadata: Option<Value>,
    pub metadata: Value,
    /// `discounts[0][coupon]` or `discounts[0][promotion_code]`: applied from the start.
    pub discount: Option<PresetDiscount>,
}

/// A discount the merchant put on the session: a coupon, or a promotion code (and its
/// coupon).
pub enum PresetDiscount {
    Coupon(String),
    PromotionCode(String),
}

/// The session's preset discount as (promotion code or null, coupon), if it has one.
pub fn preset_discount(session: &Value) -> Option<(Value, Value)> {
    let preset = &session["sandbox"]["discount"];
    preset["coupon"]
        .is_object()
        .then(|| (preset["promotion_code"].clone(), preset["coupon"].clone()))
}

pub async fn create(
    db: &PgPool,
    account: &Account,
    public_url: &str,
    new: NewSession,
) -> Result<Value, StripeError> {
    let subscription_mode = new.mode == "subscription";
    let mut tx = db.begin().await?;
    let line_items = load_prices(
        &mut tx,
        account,
        "line_items",
        &new.line_items,
        subscription_mode,
    )
    .await?;
    let customer = match &new.customer {
        Some(id) => Some(
            store::get(&mut tx, account, Kind::Customer, id)
                .await
                .map_err(|e| e.in_param("customer"))?,
        ),
        None => None,
    };
    let created = now();
    let expires_at = new.expires_at.unwrap_or(created + 24 * 3600);
    if !(created + 30 * 60..=created + 24 * 3600).contains(&expires_at) {
        return Err(StripeError::invalid(
            "expires_at",
            "expires_at must be between 30 minutes and 24 hours from now.",
        ));
    }
    let subtotal: i64 = line_items
        .iter()
        .map(|(p, q)| p["unit_amount"].as_i64().unwrap_or(0) * q)
        .sum();
    let discount = match &new.discount {
        None => json!(null),
        Some(PresetDiscount::Coupon(id)) => {
            let coupon = store::get(&mut tx, account, Kind::Coupon, id)
                .await
                .map_err(|e| e.in_param("discounts[0][coupon]"))?;
            json!({ "coupon": coupon, "promotion_code": null })
        }
        Some(PresetDiscount::PromotionCode(id)) => {
            let promo = store::get(&mut tx, account, Kind::PromotionCode, id)
                .await
                .map_err(|e| e.in_param("discounts[0][promotion_code]"))?;
            let coupon = store::get(
                &mut tx,
                account,
                Kind::Coupon,
                promo["promotion"]["coupon"].as_str().unwrap_or_default(),
            )
            .await?;
            json!({ "coupon": coupon, "promotion_code": promo })
        }
    };
    // The same rules as a code the customer types (`coupons::redeemable`).
    let promo = &discount["promotion_code"];
    if discount["coupon"]["valid"] == json!(false)
        || promo["active"] == json!(false)
        || used_up(promo)
        || used_up(&discount["coupon"])
        || promo["expires_at"].as_i64().is_some_and(|t| t <= now())
        || promo["restrictions"]["minimum_amount"]
            .as_i64()
            .is_some_and(|m| subtotal < m)
    {
        return Err(StripeError::invalid(
            "discounts",
            "This coupon or promotion code cannot be redeemed.",
        ));
    }
    let id = new_id("cs_test");
    let preset_off = if discount["coupon"].is_object() {
        discount_amount(&discount["coupon"], subtotal)
    } else {
        0
    };
    let mut items = Vec::new();
    for (price, quantity) in &line_items {
        let product = store::get(
            &mut tx,
            account,
            Kind::Product,
            price["product"].as_str().unwrap_or_default(),
        )
        .await
        .ok();
        let amount = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
        items.push(json!({
            "id": new_id("li"), "object": "item", "adjustable_quantity": null,
            "amount_discount": 0, "amount_subtotal": amount, "amount_tax": 0, "amount_total": amount,
            "currency": price["currency"], "description": product.map(|p| p["name"].clone()),
            "metadata": {}, "price": price, "quantity": quantity,
        }));
    }
    apportion(&mut items, preset_off, 0);
    let mut session = json!({
        "id": id,
        "object": Kind::CheckoutSession.object(),
        "after_expiration": null,
        "allow_promotion_codes": new.allow_promotion_codes,
        "amount_subtotal": subtotal,
        "amount_total": subtotal - preset_off,
        "automatic_tax": { "enabled": new.automatic_tax, "liability": null, "provider": null, "status": null },
        "billing_address_collection": new.billing_address_collection,
        "cancel_url": new.cancel_url,
        "client_reference_id": new.client_reference_id,
        "created": created,
        "currency": line_items[0].0["currency"],
        "custom_fields": [],
        "custom_text": { "after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null },
        "customer": customer.as_ref().map(|c| c["id"].clone()),
        "customer_details": null,
        "customer_email": new.customer_email,
        "expires_at": expires_at,
        "invoice": null,
        "line_items": {
            "object": "list", "data": items, "has_more": false,
            "url": format!("/v1/checkout/sessions/{id}/line_items"),
        },
        "livemode": false,
        "locale": null,
        "metadata": new.metadata,
        "mode": new.mode,
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": "always",
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "shipping_options": [],
        "status": "open",
        "subscription": null,
        "success_url": new.success_url,
        "total_details": { "amount_discount": preset_off, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted_page",
        "url": format!("{public_url}/sandbox/checkout/{id}"),
        // Not Stripe fields: what the page and the completion need to remember.
        "sandbox": {
            "line_items": line_items.iter().map(|(p, q)| json!({ "price": p["id"], "quantity": q })).collect::<Vec<_>>(),
            "trial_period_days": new.trial_period_days,
            "subscription_metadata": new.subscription_metadata,
            "customer_update": new.customer_update,
            "invoice_creation": new.invoice_creation,
            "payment_intent_metadata": new.payment_intent_metadata,
            "discount": discount,
        },
    });
    if let Some(applied) = applied_discounts(&discount["promotion_code"], &discount["coupon"]) {
        session["discounts"] = applied;
    }
    store::insert(&mut tx, account, &session).await?;
    tx.commit().await?;
    Ok(session)
}

/// A session's `discounts`: the promotion code when there is one, else the coupon.
fn applied_discounts(promo: &Value, coupon: &Value) -> Option<Value> {
    if promo.is_object() {
        Some(json!([{ "coupon": null, "promotion_code": promo["id"] }]))
    } else if coupon.is_object() {
        Some(json!([{ "coupon": coupon["id"], "promotion_code": null }]))
    } else {
        None
    }
}

/// Shares the session's discount and tax among its line items in proportion to their
/// subtotals (the last line takes the rounding), as Stripe's line items show them.
fn apportion(items: &mut [Value], discount: i64, tax: i64) {
    let subtotal: i64 = items
        .iter()
        .map(|i| i["amount_subtotal"].as_i64().unwrap_or(0))
        .sum();
    let (mut discount_left, mut tax_left) = (discount, tax);
    let count = items.len();
    for (n, item) in items.iter_mut().enumerate() {
        let amount = item["amount_subtotal"].as_i64().unwrap_or(0);
        let (off, taxed) = if n + 1 == count || subtotal == 0 {
            (discount_left, tax_left)
        } else {
            (discount * amount / subtotal, tax * amount / subtotal)
        };
        discount_left -= off;
        tax_left -= taxed;
        item["amount_discount"] = json!(off);
        item["amount_tax"] = json!(taxed);
        item["amount_total"] = json!(amount - off + taxed);
    }
}

pub async fn expire(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    id: &str,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    let mut session = store::get(&mut tx, account, Kind::CheckoutSession, id).await?;
    if session["status"] != "open" {
        return Err(StripeError::invalid(
            "session",
            "Only an open Checkout Session can be expired.",
        ));
    }
    mark_expired(&mut tx, account, &mut session, req).await?;
    tx.commit().await?;
    Ok(session)
}

/// Expired sessions lose their `url` (Stripe shows it only while the session is open).
async fn mark_expired(
    conn: &mut PgConnection,
    account: &Account,
    session: &mut Value,
    req: &RequestInfo,
) -> Result<(), StripeError> {
    session["status"] = json!("expired");
    session["url"] = Value::Null;
    store::save(conn, account, session).await?;
    store::emit(
        conn,
        account,
        "checkout.session.expired",
        session,
        None,
        req,
    )
    .await?;
    Ok(())
}

/// Stripe expires an open session at its `expires_at` by itself, with
/// `checkout.session.expired`; a worker calls this every few seconds. `SKIP LOCKED` lets
/// several instances share the sweep without expiring a session twice.
pub async fn expire_overdue(db: &PgPool) -> Result<usize, StripeError> {
    let mut tx = db.begin().await?;
    let due: Vec<(String, Value)> = sqlx::query_as(
        // Literal predicates, so that the partial index always applies.
        "select account, data from stripe_sandbox.objects
         where object = 'checkout.session' and data ->> 'status' = 'open'
           and (data ->> 'expires_at')::bigint < extract(epoch from now())::bigint
         limit 100 for update skip locked",
    )
    .fetch_all(&mut *tx)
    .await?;
    // Nobody asked for it: the event's `request` is empty, as on Stripe.
    let req = RequestInfo::automatic();
    for (account, mut session) in due.iter().cloned() {
        mark_expired(&mut tx, &Account(account), &mut session, &req).await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

/// Whether a customer can still pay this session.
pub fn is_open(session: &Value) -> bool {
    session["status"] == "open" && session["expires_at"].as_i64().unwrap_or(0) >= now()
}

/// The session's items with their prices, from the sandbox's notes.
pub async fn session_items(
    conn: &mut PgConnection,
    account: &Account,
    session: &Value,
) -> Result<Vec<(Value, i64)>, StripeError> {
    let mut items = Vec::new();
    for item in session["sandbox"]["line_items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let price = store::get(
            conn,
            account,
            Kind::Price,
            item["price"].as_str().unwrap_or_default(),
        )
        .await?;
        items.push((price, item["quantity"].as_i64().unwrap_or(1)));
    }
    Ok(items)
}

/// A card as a customer typed it on a hosted page, already checked for shape.
#[derive(Debug, Clone)]
pub struct TypedCard {
    pub number: String,
    pub exp_month: i64,
    pub exp_year: i64,
}

/// The customer's answer on the bank's 3-D Secure page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    NotAsked,
    Completed,
    Failed,
}

/// What the customer entered on the Checkout page.
pub struct Payer {
    pub card: TypedCard,
    pub email: String,
    pub name: String,
    pub country: String,
    pub postal_code: String,
    pub promotion_code: String,
    pub authentication: Authentication,
}

/// Why a Checkout attempt did not complete.
pub enum Failure {
    /// Something the customer can fix on the page, in Stripe's words.
    Card(String),
    /// The card asks for 3-D Secure: show the bank's challenge before anything is stored.
    Challenge,
    /// The session was completed or expired meanwhile.
    Gone,
    Internal(StripeError),
}

impl From<StripeError> for Failure {
    fn from(e: StripeError) -> Self {
        if e.is_callers() {
            Failure::Card(e.message)
        } else {
            Failure::Internal(e)
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Internal(e.into())
    }
}

impl From<CodeRefused> for Failure {
    fn from(e: CodeRefused) -> Self {
        match e {
            CodeRefused::Invalid => Failure::Card("This code is invalid.".into()),
            CodeRefused::Store(e) => e.into(),
        }
    }
}

/// Completes the session for `payer`. Returns where Stripe sends the customer next
/// (`success_url`, with `{CHECKOUT_SESSION_ID}` filled in).
pub async fn complete(
    db: &PgPool,
    public_url: &str,
    account: &Account,
    session: &Value,
    payer: Payer,
) -> Result<String, Failure> {
    if session["customer"].is_null() && !payer.email.contains('@') {
        return Err(Failure::Card("Enter a valid email address.".into()));
    }
    let country = payer.country.to_ascii_uppercase();
    if session["billing_address_collection"] == "required"
        && (payer.name.is_empty() || country.len() != 2 || payer.postal_code.is_empty())
    {
        return Err(Failure::Card("Enter your name and billing address.".into()));
    }
    let promo = if let Some(preset) = preset_discount(session) {
        Some(preset)
    } else if session["allow_promotion_codes"] == json!(true) {
        redeemable(
            db,
            account,
            &payer.promotion_code,
            session["amount_subtotal"].as_i64().unwrap_or(0),
        )
        .await?
    } else {
        None
    };
    let address = json!({ "city": null, "country": (!country.is_empty()).then_some(&country), "line1": null, "line2": null,
                          "postal_code": (!payer.postal_code.is_empty()).then_some(&payer.postal_code), "state": null });
    let name = (!payer.name.is_empty()).then_some(payer.name.clone());
    let billing = json!({ "address": address, "email": if payer.email.is_empty() { Value::Null } else { json!(payer.email) },
                          "name": name, "phone": null, "tax_id": null });
    let mut pm = super::cards::card_payment_method(
        &payer.card.number,
        payer.card.exp_month,
        payer.card.exp_year,
        billing,
    );
    let authenticated = match (behavior_of(&pm), payer.authentication) {
        (Behavior::Declined(code), _) => {
            return Err(Failure::Card(StripeError::card_declined(code).message))
        }
        (Behavior::RequiresAuthentication, Authentication::Completed) => true,
        (Behavior::RequiresAuthentication, Authentication::Failed) => {
            return Err(Failure::Card(
                "We are unable to authenticate your payment method. Please choose a different payment method and try again.".into(),
            ))
        }
        (Behavior::RequiresAuthentication, Authentication::NotAsked) => {
            return Err(Failure::Challenge)
        }
        _ => false,
    };

    let req = RequestInfo::from_page();
    let mut tx = db.begin().await?;
    let mut session = store::get(
        &mut tx,
        account,
        Kind::CheckoutSession,
        session["id"].as_str().unwrap_or_default(),
    )
    .await?;
    if !is_open(&session) {
        return Err(Failure::Gone);
    }
    let subscription_mode = session["mode"] == "subscription";
    let trial_days = session["sandbox"]["trial_period_days"].as_i64();
    // A card that cannot be charged fails now, unless a trial means no charge today.
    if !(subscription_mode && trial_days.is_some()) {
        if let Outcome::Failed { message, .. } = charge_outcome(Some(&pm), authenticated) {
            return Err(Failure::Card(message));
        }
    }

    // The customer: the session's, or a new one from what was typed.
    let mut customer = match session["customer"].as_str() {
        Some(id) => store::get(&mut tx, account, Kind::Customer, id).await?,
        None => {
            let mut c = customer_json();
            c["email"] = json!(payer.email);
            c["name"] = json!(name);
            store::insert(&mut tx, account, &c).await?;
            store::emit(&mut tx, account, "customer.created", &c, None, &req).await?;
            c
        }
    };
    save_typed_card(&mut tx, account, &req, &mut pm, &customer["id"]).await?;
    let before = customer.clone();
    if subscription_mode {
        customer["invoice_settings"]["default_payment_method"] = pm["id"].clone();
    }
    let update = &session["sandbox"]["customer_update"];
    if update["address"] == "auto" || session["customer"].is_null() {
        customer["address"] = address.clone();
    }
    if (update["name"] == "auto" || session["customer"].is_null()) && name.is_some() {
        customer["name"] = json!(name);
    }
    store::record_change(
        &mut tx,
        account,
        "customer.updated",
        &before,
        &customer,
        &req,
    )
    .await?;

    let items = session_items(&mut tx, account, &session).await?;
    let subtotal = session["amount_subtotal"].as_i64().unwrap_or(0);
    let discount = promo
        .as_ref()
        .map(|(_, c)| discount_amount(c, subtotal))
        .unwrap_or(0);
    let automatic_tax = session["automatic_tax"]["enabled"] == json!(true);
    let tax = if automatic_tax {
        tax::amount(&customer, subtotal - discount)
    } else {
        0
    };
    let start = customer_now(&mut tx, account, &customer).await?;
    if subscription_mode {
        let trial_end = trial_days.map(|d| start + d * 86_400);
        let mut subscription = subscription_json(NewSubscription {
            customer: &customer,
            items,
            now: start,
            trial_end,
            status: if trial_end.is_some() {
                "trialing"
            } else {
                "active"
            },
            default_payment_method: None,
            metadata: session["sandbox"]["subscription_metadata"].clone(),
            // Checkout always collects a card here (`payment_method_collection=always`).
            missing_payment_method: "create_invoice",
        });
        subscription["automatic_tax"]["enabled"] = json!(automatic_tax);
        if let Some((promo, coupon)) = &promo {
            subscription["sandbox"]["coupon"] = coupon.clone();
            subscription["sandbox"]["promotion_code"] = promo["id"].clone();
        }
        let subscription = subscriptions::start(
            &mut tx,
            account,
            &req,
            public_url,
            &mut customer,
            subscription,
            Some(&pm),
            authenticated,
        )
        .await?;
        session["subscription"] = subscription["id"].clone();
        session["invoice"] = subscription["latest_invoice"].clone();
        let paid_now = trial_end.is_none();
        session["payment_status"] = json!(if paid_now {
            "paid"
        } else {
            "no_payment_required"
        });
        if !paid_now {
            session["amount_total"] = json!(0);
        }
    } else {
        let mut lines = Vec::with_capacity(items.len());
        for (price, q) in &items {
            // A line is described by the price's nickname, else its product's name.
            let description = match price["nickname"].as_str() {
                Some(nickname) => nickname.to_owned(),
                None => product_name(&mut tx, account, price).await?,
            };
            lines.push(Line {
                description,
                amount: price["unit_amount"].as_i64().unwrap_or(0) * q,
                price: Some(price.clone()),
                quantity: *q,
                period: (start, start),
                proration: false,
                subscription_item: None,
            });
        }
        let currency = session["currency"].clone();
        let outcome = charge_outcome(Some(&pm), authenticated);
        let mut pi = attempt_payment(
            &mut tx,
            account,
            &req,
            &customer,
            Some(&pm),
            subtotal - discount + tax,
            &currency,
            "Checkout payment",
            &outcome,
            start,
        )
        .await?;
        if let Some(meta) = session["sandbox"]["payment_intent_metadata"].as_object() {
            pi["metadata"] = Value::Object(meta.clone());
            store::save(&mut tx, account, &pi).await?;
        }
        session["payment_intent"] = pi["id"].clone();
        session["payment_status"] = json!("paid");
        if session["sandbox"]["invoice_creation"] == json!(true) {
            // A post-payment invoice, paid already: a receipt the customer can keep.
            let mut invoice =
                invoices::invoice_json(public_url, &customer, None, &lines, "manual", tax, start);
            invoices::apply_discount(&mut invoice, discount);
            invoice["status"] = json!("paid");
            invoice["amount_paid"] = invoice["amount_due"].clone();
            invoice["amount_remaining"] = json!(0);
            invoice["attempted"] = json!(true);
            invoice["status_transitions"]["paid_at"] = json!(start);
            store::insert(&mut tx, account, &invoice).await?;
            for event in ["invoice.created", "invoice.finalized", "invoice.paid"] {
                store::emit(&mut tx, account, event, &invoice, None, &req).await?;
            }
            session["invoice"] = invoice["id"].clone();
        }
    }
    if session["payment_status"] == "paid" {
        session["amount_total"] = json!(subtotal - discount + tax);
        session["total_details"] =
            json!({ "amount_discount": discount, "amount_shipping": 0, "amount_tax": tax });
        if let Some(items) = session["line_items"]["data"].as_array_mut() {
            apportion(items, discount, tax);
        }
    }
    if let Some((promo, coupon)) = &promo {
        if let Some(applied) = applied_discounts(promo, coupon) {
            session["discounts"] = applied;
        }
        coupons::redeem(&mut tx, account, promo, coupon).await?;
    }
    session["status"] = json!("complete");
    session["customer"] = customer["id"].clone();
    session["customer_details"] = json!({ "address": address, "email": customer["email"], "name": customer["name"],
                                          "phone": null, "tax_exempt": "none", "tax_ids": [] });
    store::save(&mut tx, account, &session).await?;
    store::emit(
        &mut tx,
        account,
        "checkout.session.completed",
        &session,
        None,
        &req,
    )
    .await?;
    tx.commit().await?;
    let success = session["success_url"].as_str().unwrap_or("/");
    Ok(success.replace(
        "{CHECKOUT_SESSION_ID}",
        session["id"].as_str().unwrap_or_default(),
    ))
}
