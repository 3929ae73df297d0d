//! `/v1/billing_portal/configurations` and `/v1/billing_portal/sessions`: what the Customer
//! Portal offers, and the sessions that open it (`hosted::portal` is the page).

use super::{create_object, list_objects, respond, retrieve, update_object};
use crate::{
    engine::portal::{self, REASONS},
    http::{accepts, lists, Account, ApiResult, Params, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store::Filter,
    Sandbox,
};
use axum::{
    extract::{Path, State},
    routing::{get, post},
    Router,
};
use serde_json::{json, Value};

/// What a configuration's create and update implement.
const CONFIGURATION: &[&str] = &[
    "business_profile.headline",
    "business_profile.privacy_policy_url",
    "business_profile.terms_of_service_url",
    "default_return_url",
    "active",
    "features.invoice_history.enabled",
    "features.payment_method_update.enabled",
    "features.subscription_update.enabled",
    "features.subscription_update.proration_behavior",
    "features.subscription_update.default_allowed_updates.#",
    "features.subscription_update.products.#.product",
    "features.subscription_update.products.#.prices.#",
    "features.subscription_cancel.enabled",
    "features.subscription_cancel.mode",
    "features.subscription_cancel.cancellation_reason.enabled",
    "features.subscription_cancel.cancellation_reason.options.#",
    "metadata.*",
];

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/billing_portal/configurations",
            post(create_configuration)
                .layer(accepts(CONFIGURATION))
                .merge(get(list_configurations).layer(lists(&["active", "is_default"]))),
        )
        .route(
            "/billing_portal/configurations/{id}",
            retrieve(Kind::PortalConfiguration)
                .merge(post(update_configuration).layer(accepts(CONFIGURATION))),
        )
        .route(
            "/billing_portal/sessions",
            post(create_session).layer(accepts(&["customer", "configuration", "return_url"])),
        )
}

fn flag(p: &Option<Params>, key: &str) -> Result<Option<bool>, StripeError> {
    p.as_ref()
        .map(|p| p.bool(key))
        .transpose()
        .map(Option::flatten)
}

/// Applies `business_profile`, `features`, `default_return_url` from the request. Links
/// must be http(s) URLs; the return URL also on `back_to`, when the sandbox has one.
fn apply_configuration(
    config: &mut Value,
    params: &Params,
    back_to: Option<&str>,
) -> Result<(), StripeError> {
    // An empty value clears a field, as on Stripe.
    let given = |p: &Params, key: &str, origin: Option<&str>, is_url: bool| match p.str(key) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(Some(Value::Null)),
        Some(v) if !is_url => Ok(Some(json!(v))),
        Some(_) => p.url(key, origin).map(|u| u.map(|u| json!(u))),
    };
    if let Some(bp) = params.object("business_profile") {
        for key in ["headline", "privacy_policy_url", "terms_of_service_url"] {
            if let Some(v) = given(&bp, key, None, key != "headline")? {
                config["business_profile"][key] = v;
            }
        }
    }
    if let Some(v) = given(params, "default_return_url", back_to, true)? {
        config["default_return_url"] = v;
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
        if let Some(p) = update.one_of(
            "proration_behavior",
            &["always_invoice", "create_prorations", "none"],
        )? {
            f["subscription_update"]["proration_behavior"] = json!(p);
        }
        let allowed = update.strings("default_allowed_updates");
        if update.get("default_allowed_updates").is_some() {
            f["subscription_update"]["default_allowed_updates"] = json!(allowed);
        }
        if update.get("products").is_some() {
            let mut list = Vec::new();
            for (i, p) in update.objects("products").iter().enumerate() {
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
        if let Some(mode) = cancel.one_of("mode", &["at_period_end", "immediately"])? {
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
        "id": new_id("bpc"), "object": Kind::PortalConfiguration.object(), "active": true, "application": null,
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

async fn create_configuration(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let mut config = configuration_json(now());
    apply_configuration(
        &mut config,
        &params,
        sandbox.settings.redirect_origin.as_deref(),
    )?;
    // The first configuration becomes the default, as in the Dashboard.
    config["is_default"] = json!(!portal::has_configuration(&sandbox.db, &account).await?);
    create_object(&sandbox, &account, &req, config, &params).await
}

async fn update_configuration(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    update_object(
        &sandbox,
        &account,
        &req,
        Kind::PortalConfiguration,
        &id,
        &params,
        |c| apply_configuration(c, &params, sandbox.settings.redirect_origin.as_deref()),
    )
    .await
}

async fn list_configurations(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    list_objects(
        &sandbox,
        &account,
        Kind::PortalConfiguration,
        "/v1/billing_portal/configurations",
        &params,
        Filter::default(),
    )
    .await
}

/// `customer`, `return_url`, `configuration` (default: the account's default configuration).
async fn create_session(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let customer = params.required_str("customer")?;
    let session = portal::create_session(
        &sandbox.db,
        &account,
        &req,
        &sandbox.public_url,
        &customer,
        params.str("configuration").as_deref(),
        params.url("return_url", sandbox.settings.redirect_origin.as_deref())?,
    )
    .await?;
    respond(&sandbox, &account, session, &params).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_shape_decodes_in_async_stripe() {
        let mut config = configuration_json(1);
        let params = Params::parse("features[subscription_update][enabled]=true&features[subscription_update][products][0][product]=prod_1&features[subscription_update][products][0][prices][0]=price_1&features[subscription_cancel][enabled]=true&features[subscription_cancel][cancellation_reason][enabled]=true&features[subscription_cancel][cancellation_reason][options][0]=too_expensive&business_profile[headline]=Acme").unwrap();
        apply_configuration(&mut config, &params, None).unwrap();
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
