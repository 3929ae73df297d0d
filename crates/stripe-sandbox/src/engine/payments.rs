//! Payment intents and charges: one payment attempt with the events Stripe sends for each
//! step, how a test card answers it, and refunds of what was charged.

use super::cards::{behavior_of, Behavior};
use crate::{
    http::{Account, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store,
};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

/// How a payment attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Paid,
    Failed {
        decline_code: String,
        message: String,
    },
    /// The card wants 3-D Secure; the customer must act on the hosted invoice page.
    RequiresAction,
}

pub(super) fn payment_intent_json(
    amount: i64,
    currency: &Value,
    customer: &Value,
    pm: Option<&Value>,
    description: &str,
    now: i64,
) -> Value {
    let id = new_id("pi");
    json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_details": { "tip": {} }, "amount_received": 0, "application": null,
        "application_fee_amount": null, "automatic_payment_methods": null, "canceled_at": null,
        "cancellation_reason": null, "capture_method": "automatic",
        "client_secret": format!("{id}_secret_{}", &new_id("x")[2..]),
        "confirmation_method": "automatic", "created": now, "currency": currency, "customer": customer["id"],
        "description": description, "last_payment_error": null, "latest_charge": null, "livemode": false,
        "metadata": {}, "next_action": null, "on_behalf_of": null,
        "payment_method": pm.map(|p| p["id"].clone()), "payment_method_configuration_details": null,
        "payment_method_options": { "card": { "installments": null, "mandate_options": null, "network": null,
            "request_three_d_secure": "automatic" } },
        "payment_method_types": ["card"], "processing": null, "receipt_email": null, "review": null,
        "setup_future_usage": null, "shipping": null, "source": null, "statement_descriptor": null,
        "statement_descriptor_suffix": null, "status": "requires_payment_method", "transfer_data": null,
        "transfer_group": null,
    })
}

pub(super) fn charge_json(pi: &Value, pm: &Value, outcome: &Outcome, now: i64) -> Value {
    let paid = *outcome == Outcome::Paid;
    let (failure_code, failure_message, network_status, outcome_type, seller_message) =
        match outcome {
            Outcome::Failed { message, .. } => (
                json!("card_declined"),
                json!(message),
                "declined_by_network",
                "issuer_declined",
                "The bank did not return any further details with this decline.",
            ),
            _ => (
                Value::Null,
                Value::Null,
                "approved_by_network",
                "authorized",
                "Payment complete.",
            ),
        };
    let decline = match outcome {
        Outcome::Failed { decline_code, .. } => json!(decline_code),
        _ => Value::Null,
    };
    json!({
        "id": new_id("ch"), "object": "charge", "amount": pi["amount"],
        "amount_captured": if paid { pi["amount"].clone() } else { json!(0) }, "amount_refunded": 0,
        "application": null, "application_fee": null, "application_fee_amount": null,
        "balance_transaction": null, "billing_details": pm["billing_details"], "calculated_statement_descriptor": "SAAS-BILLING",
        "captured": paid, "created": now, "currency": pi["currency"], "customer": pi["customer"],
        "description": pi["description"], "disputed": false, "failure_balance_transaction": null,
        "failure_code": failure_code, "failure_message": failure_message, "fraud_details": {},
        "livemode": false, "metadata": {}, "on_behalf_of": null,
        "outcome": { "advice_code": null, "network_advice_code": null, "network_decline_code": null,
            "network_status": network_status, "reason": decline, "risk_level": "normal", "risk_score": 20,
            "seller_message": seller_message, "type": outcome_type },
        "paid": paid, "payment_intent": pi["id"], "payment_method": pm["id"],
        "payment_method_details": { "type": "card", "card": { "amount_authorized": if paid { pi["amount"].clone() } else { Value::Null },
            "authorization_code": null, "brand": pm["card"]["brand"], "checks": pm["card"]["checks"], "country": pm["card"]["country"],
            "exp_month": pm["card"]["exp_month"], "exp_year": pm["card"]["exp_year"], "fingerprint": pm["card"]["fingerprint"],
            "funding": pm["card"]["funding"], "installments": null, "last4": pm["card"]["last4"], "mandate": null,
            "network": pm["card"]["brand"], "network_token": null, "network_transaction_id": null,
            "regulated_status": null, "three_d_secure": null, "wallet": null } },
        "receipt_email": null, "receipt_number": null, "receipt_url": null, "refunded": false,
        "review": null, "shipping": null, "source_transfer": null, "statement_descriptor": null,
        "statement_descriptor_suffix": null, "status": if paid { "succeeded" } else { "failed" },
        "transfer_data": null, "transfer_group": null,
    })
}

/// What `pm` does when charged off-session (renewals, retries) or on-session (a customer at
/// the hosted invoice page or Checkout, who can pass a 3-D Secure challenge there).
pub fn charge_outcome(pm: Option<&Value>, authenticated: bool) -> Outcome {
    let Some(pm) = pm else {
        return Outcome::Failed {
            decline_code: "no_payment_method".into(),
            message: "The customer has no payment method on file.".into(),
        };
    };
    match behavior_of(pm) {
        Behavior::Succeeds | Behavior::Disputed => Outcome::Paid,
        Behavior::RequiresAuthentication if authenticated => Outcome::Paid,
        Behavior::RequiresAuthentication => Outcome::RequiresAction,
        Behavior::ChargesFail => Outcome::Failed {
            decline_code: "generic_decline".into(),
            message: "Your card was declined.".into(),
        },
        Behavior::Declined(code) => Outcome::Failed {
            decline_code: code.into(),
            message: StripeError::card_declined(code).message,
        },
    }
}

#[allow(clippy::too_many_arguments)]
/// One payment attempt for `amount`: a payment intent and (unless 3-D Secure stops it) a
/// charge, stored with their events. Returns the payment intent.
pub async fn attempt_payment(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    customer: &Value,
    pm: Option<&Value>,
    amount: i64,
    currency: &Value,
    description: &str,
    outcome: &Outcome,
    now: i64,
) -> Result<Value, StripeError> {
    let mut pi = payment_intent_json(amount, currency, customer, pm, description, now);
    store::emit(conn, account, "payment_intent.created", &pi, None, req).await?;
    match (outcome, pm) {
        (Outcome::RequiresAction, _) => {
            pi["status"] = json!("requires_action");
            pi["next_action"] = json!({ "type": "use_stripe_sdk", "use_stripe_sdk": {} });
            store::insert(conn, account, &pi).await?;
            store::emit(
                conn,
                account,
                "payment_intent.requires_action",
                &pi,
                None,
                req,
            )
            .await?;
        }
        (_, Some(pm)) => {
            let charge = charge_json(&pi, pm, outcome, now);
            pi["latest_charge"] = charge["id"].clone();
            store::insert(conn, account, &charge).await?;
            if *outcome == Outcome::Paid {
                pi["status"] = json!("succeeded");
                pi["amount_received"] = json!(amount);
                store::insert(conn, account, &pi).await?;
                store::emit(conn, account, "charge.succeeded", &charge, None, req).await?;
                store::emit(conn, account, "payment_intent.succeeded", &pi, None, req).await?;
                if behavior_of(pm) == Behavior::Disputed {
                    let mut charge = charge;
                    super::disputes::open(conn, account, req, &mut charge).await?;
                }
            } else {
                pi["last_payment_error"] = last_payment_error(outcome, pm);
                store::insert(conn, account, &pi).await?;
                store::emit(conn, account, "charge.failed", &charge, None, req).await?;
                store::emit(
                    conn,
                    account,
                    "payment_intent.payment_failed",
                    &pi,
                    None,
                    req,
                )
                .await?;
            }
        }
        (_, None) => {
            pi["last_payment_error"] = last_payment_error(outcome, &Value::Null);
            store::insert(conn, account, &pi).await?;
            store::emit(
                conn,
                account,
                "payment_intent.payment_failed",
                &pi,
                None,
                req,
            )
            .await?;
        }
    }
    Ok(pi)
}

fn last_payment_error(outcome: &Outcome, pm: &Value) -> Value {
    let Outcome::Failed {
        decline_code,
        message,
    } = outcome
    else {
        return Value::Null;
    };
    json!({ "type": "card_error", "code": "card_declined", "decline_code": decline_code,
            "message": message, "payment_method": if pm.is_null() { Value::Null } else { pm.clone() } })
}

/// What a refund asks for: the charge (or the payment intent whose charge it is), an
/// amount (default: what is left) and Stripe's `reason`.
pub struct NewRefund {
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    pub amount: Option<i64>,
    pub reason: Option<String>,
    pub metadata: Value,
}

/// Refunds all or part of a charge: `refund.created` and `charge.refunded`, with
/// `amount_refunded` accumulating over partial refunds.
pub async fn refund(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    new: NewRefund,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    let charge_id = match (new.charge, new.payment_intent) {
        (Some(charge), _) => charge,
        (None, Some(pi)) => {
            let pi = store::get(&mut tx, account, Kind::PaymentIntent, &pi).await?;
            pi["latest_charge"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| {
                    StripeError::invalid(
                        "payment_intent",
                        "This PaymentIntent has no successful charge to refund.",
                    )
                })?
        }
        (None, None) => return Err(StripeError::missing("charge")),
    };
    let before = store::get(&mut tx, account, Kind::Charge, &charge_id).await?;
    if before["paid"] != json!(true) {
        return Err(StripeError::invalid(
            "charge",
            "This charge did not succeed and cannot be refunded.",
        ));
    }
    let captured = before["amount_captured"].as_i64().unwrap_or(0);
    let refunded = before["amount_refunded"].as_i64().unwrap_or(0);
    let left = captured - refunded;
    if left == 0 {
        return Err(StripeError {
            code: Some("charge_already_refunded"),
            ..StripeError::invalid(
                "charge",
                format!("Charge {charge_id} has already been refunded."),
            )
        });
    }
    let amount = new.amount.unwrap_or(left);
    if amount < 1 || amount > left {
        return Err(StripeError::invalid(
            "amount",
            format!("Refund amount must be between 1 and {left}, what is left of the charge."),
        ));
    }
    let refund = json!({
        "id": new_id("re"), "object": "refund", "amount": amount, "balance_transaction": null,
        "charge": charge_id, "created": now(), "currency": before["currency"], "customer": before["customer"],
        "description": null, "destination_details": null, "failure_balance_transaction": null,
        "failure_reason": null, "instructions_email": null, "metadata": new.metadata, "next_action": null,
        "payment_intent": before["payment_intent"], "pending_reason": null, "reason": new.reason,
        "receipt_number": null, "source_transfer_reversal": null, "status": "succeeded",
        "transfer_reversal": null,
    });
    let mut charge = before.clone();
    charge["amount_refunded"] = json!(refunded + amount);
    charge["refunded"] = json!(refunded + amount == captured);
    store::insert(&mut tx, account, &refund).await?;
    store::save(&mut tx, account, &charge).await?;
    store::emit(&mut tx, account, "refund.created", &refund, None, req).await?;
    let prev = store::previous_attributes(&before, &charge);
    store::emit(
        &mut tx,
        account,
        "charge.refunded",
        &charge,
        Some(prev),
        req,
    )
    .await?;
    tx.commit().await?;
    Ok(refund)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_intent_and_charge_shapes_decode_in_async_stripe() {
        let customer = json!({ "id": "cus_1" });
        let pm = crate::engine::cards::card_payment_method(
            "4000000000000341",
            12,
            2040,
            json!({
            "address": null, "email": null, "name": null, "phone": null, "tax_id": null }),
        );
        let outcome = charge_outcome(Some(&pm), false);
        assert!(matches!(outcome, Outcome::Failed { .. }));
        let pi = payment_intent_json(2900, &json!("usd"), &customer, Some(&pm), "Invoice X", 1);
        let charge = charge_json(&pi, &pm, &outcome, 1);
        let pi: stripe_shared::PaymentIntent =
            miniserde::json::from_str(&pi.to_string()).expect("payment intent");
        let charge: stripe_shared::Charge =
            miniserde::json::from_str(&charge.to_string()).expect("charge");
        assert_eq!(pi.amount, 2900);
        assert!(!charge.paid);
        assert_eq!(charge.failure_code.as_deref(), Some("card_declined"));
    }

    #[test]
    fn card_3155_needs_authentication_off_session_only() {
        let pm =
            crate::engine::cards::card_payment_method("4000002500003155", 12, 2040, Value::Null);
        assert_eq!(charge_outcome(Some(&pm), false), Outcome::RequiresAction);
        assert_eq!(charge_outcome(Some(&pm), true), Outcome::Paid);
        assert!(matches!(charge_outcome(None, true), Outcome::Failed { .. }));
    }
}
