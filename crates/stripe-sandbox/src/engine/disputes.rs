//! Disputes (chargebacks): a charge made with `4000 0000 0000 0259` is disputed as
//! fraudulent right after it succeeds (`charge.dispute.created`), as Stripe's test card is;
//! a dispute is closed as won or lost from the dashboard (the bank's decision, which in test
//! mode the tester makes) or lost through `POST /v1/disputes/{id}/close` (the merchant
//! accepting it). Each close sends `charge.dispute.closed`.

use crate::{
    http::{Account, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store,
};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

/// How a dispute ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Won,
    Lost,
}

impl Verdict {
    fn status(self) -> &'static str {
        match self {
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }
}

/// A new fraudulent dispute of the whole of `charge`, awaiting the merchant's response.
pub fn dispute_json(charge: &Value, now: i64) -> Value {
    let card = &charge["payment_method_details"]["card"];
    json!({
        "id": new_id("dp"), "object": "dispute", "amount": charge["amount"], "balance_transactions": [],
        "charge": charge["id"], "created": now, "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {
            "access_activity_log": null, "billing_address": null, "cancellation_policy": null,
            "cancellation_policy_disclosure": null, "cancellation_rebuttal": null,
            "customer_communication": null, "customer_email_address": null, "customer_name": null,
            "customer_purchase_ip": null, "customer_signature": null,
            "duplicate_charge_documentation": null, "duplicate_charge_explanation": null,
            "duplicate_charge_id": null, "enhanced_evidence": {}, "product_description": null,
            "receipt": null, "refund_policy": null, "refund_policy_disclosure": null,
            "refund_refusal_explanation": null, "service_date": null, "service_documentation": null,
            "shipping_address": null, "shipping_carrier": null, "shipping_date": null,
            "shipping_documentation": null, "shipping_tracking_number": null,
            "uncategorized_file": null, "uncategorized_text": null,
        },
        "evidence_details": {
            "due_by": now + 7 * 86_400, "enhanced_eligibility": {}, "has_evidence": false,
            "past_due": false, "submission_count": 0,
        },
        "is_charge_refundable": false, "livemode": false, "metadata": {},
        "network_reason_code": "10.4", "payment_intent": charge["payment_intent"],
        "payment_method_details": {
            "type": "card",
            "card": { "brand": card["brand"], "case_type": "chargeback", "network": card["brand"],
                      "network_reason_code": "10.4" },
        },
        "reason": "fraudulent", "status": "needs_response",
    })
}

/// Disputes `charge` (just succeeded, in the caller's transaction): the charge is marked
/// `disputed` and `charge.dispute.created` is sent.
pub async fn open(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    charge: &mut Value,
) -> Result<Value, StripeError> {
    let dispute = dispute_json(charge, now());
    store::insert(conn, account, &dispute).await?;
    charge["disputed"] = json!(true);
    store::save(conn, account, charge).await?;
    store::emit(conn, account, "charge.dispute.created", &dispute, None, req).await?;
    Ok(dispute)
}

/// Closes an open dispute with `verdict`: `charge.dispute.closed`. A closed dispute cannot
/// be closed again.
pub async fn close(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    id: &str,
    verdict: Verdict,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    let before = store::get(&mut tx, account, Kind::Dispute, id).await?;
    if matches!(before["status"].as_str(), Some("won" | "lost")) {
        return Err(StripeError::invalid(
            "dispute",
            format!("Dispute {id} is already closed."),
        ));
    }
    let mut dispute = before.clone();
    dispute["status"] = json!(verdict.status());
    dispute["is_charge_refundable"] = json!(false);
    store::save(&mut tx, account, &dispute).await?;
    let prev = store::previous_attributes(&before, &dispute);
    store::emit(
        &mut tx,
        account,
        "charge.dispute.closed",
        &dispute,
        Some(prev),
        req,
    )
    .await?;
    tx.commit().await?;
    Ok(dispute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dispute_shape_decodes_in_async_stripe() {
        let charge = json!({ "id": "ch_1", "amount": 4900, "currency": "usd", "payment_intent": "pi_1",
                             "payment_method_details": { "card": { "brand": "visa" } } });
        let dispute = dispute_json(&charge, 1_700_000_000);
        let typed: stripe_shared::Dispute =
            miniserde::json::from_str(&dispute.to_string()).expect("dispute");
        assert_eq!(typed.amount, 4900);
        assert_eq!(typed.status, stripe_shared::DisputeStatus::NeedsResponse);
        assert_eq!(typed.reason, "fraudulent");
    }
}
