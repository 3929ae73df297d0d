//! Attaching card payment methods to customers and detaching them, with Stripe's events.

use super::cards::{self, behavior_of, Behavior};
use crate::{
    http::{Account, RequestInfo, StripeError},
    kind::Kind,
    store,
};
use serde_json::{json, Value};
use sqlx::PgPool;

/// Attaches to a customer. A test id makes a new payment method from its card, as Stripe
/// does. Cards that decline are refused here, like Stripe's check when saving a card.
pub async fn attach(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    id: &str,
    customer: &str,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    store::get(&mut tx, account, Kind::Customer, customer)
        .await
        .map_err(|e| e.in_param("customer"))?;
    let mut pm = match cards::test_id(id) {
        Some(card) => {
            let pm = cards::fresh_from_test_card(card);
            store::insert(&mut tx, account, &pm).await?;
            pm
        }
        None => store::get(&mut tx, account, Kind::PaymentMethod, id).await?,
    };
    if let Behavior::Declined(code) = behavior_of(&pm) {
        return Err(StripeError::card_declined(code));
    }
    match pm["customer"].as_str() {
        Some(owner) if owner != customer => {
            return Err(StripeError::invalid(
                "customer",
                "This PaymentMethod is already attached to another customer.",
            ))
        }
        Some(_) => {}
        None => {
            pm["customer"] = json!(customer);
            store::save(&mut tx, account, &pm).await?;
            store::emit(&mut tx, account, "payment_method.attached", &pm, None, req).await?;
        }
    }
    tx.commit().await?;
    Ok(pm)
}

/// Detaches from its customer; a detached card can no longer be the customer's default.
pub async fn detach(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    id: &str,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    let mut pm = store::get(&mut tx, account, Kind::PaymentMethod, id).await?;
    let Some(customer) = pm["customer"].as_str().map(str::to_owned) else {
        return Err(StripeError::invalid(
            "payment_method",
            "The payment method is not attached to a customer.",
        ));
    };
    pm["customer"] = Value::Null;
    store::save(&mut tx, account, &pm).await?;
    let before = store::get(&mut tx, account, Kind::Customer, &customer).await?;
    if before["invoice_settings"]["default_payment_method"] == json!(id) {
        let mut after = before.clone();
        after["invoice_settings"]["default_payment_method"] = Value::Null;
        store::record_change(&mut tx, account, "customer.updated", &before, &after, req).await?;
    }
    store::emit(
        &mut tx,
        account,
        "payment_method.detached",
        &pm,
        Some(json!({ "customer": customer })),
        req,
    )
    .await?;
    tx.commit().await?;
    Ok(pm)
}

/// Saves a card a customer typed on a hosted page (Checkout, the portal, an invoice) and
/// attaches it to `customer`: `payment_method.attached`, in the caller's transaction.
pub async fn save_typed_card(
    conn: &mut sqlx::PgConnection,
    account: &Account,
    req: &RequestInfo,
    pm: &mut Value,
    customer: &Value,
) -> Result<(), StripeError> {
    pm["customer"] = customer.clone();
    store::insert(conn, account, pm).await?;
    store::emit(conn, account, "payment_method.attached", pm, None, req).await?;
    Ok(())
}
