//! `/sandbox/portal/{id}`: the Customer Portal page. It shows the current plan, and what the
//! configuration allows: switching plan with a proration preview, cancelling at period end
//! with a reason, renewing, updating the card, and the invoice history.

use super::{card_fields, html_page, layout, long_date, read_card, unavailable, CardValues, Form};
use crate::{
    engine::{
        catalog::product_name,
        customers::customer_now,
        portal::{self, PortalAction},
    },
    http::{Account, StripeError},
    kind::Kind,
    money, store, Sandbox,
};
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Form as PostedForm,
};
use maud::{html, Markup};
use serde_json::{json, Value};

const TITLE: &str = "Billing";

#[derive(serde::Deserialize)]
pub(super) struct Shown {
    /// A price to preview a switch to.
    preview: Option<String>,
    notice: Option<String>,
}

pub(super) async fn show_portal(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    Query(shown): Query<Shown>,
) -> Response {
    let (account, session, config) = match portal::find_session(&sandbox.db, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired_link(),
        Err(e) => return e.into_response(),
    };
    // Only notices the portal itself writes are shown: the query string is anyone's to set.
    let notice = shown.notice.as_deref().filter(|n| NOTICES.contains(n));
    let messages = Messages {
        notice,
        error: None,
    };
    match load(
        &sandbox,
        &account,
        &session,
        &config,
        shown.preview.as_deref(),
        messages,
    )
    .await
    {
        Ok(view) => html_page(StatusCode::OK, render(&view)),
        Err(e) => e.into_response(),
    }
}

/// What the portal says after an action, the only notices its page will show.
const NOTICES: [&str; 4] = [
    "Your payment method was updated.",
    "Your subscription will be canceled at the end of the period.",
    "Your subscription was renewed.",
    "Your plan was changed.",
];

/// Each form on the page posts here with an `action`.
pub(super) async fn submit_portal(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    PostedForm(form): PostedForm<Form>,
) -> Response {
    let (account, session, config) = match portal::find_session(&sandbox.db, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired_link(),
        Err(e) => return e.into_response(),
    };
    let result = match action_from(&form) {
        Ok(action) => {
            portal::apply_action(
                &sandbox.db,
                &sandbox.public_url,
                &account,
                &session,
                &config,
                action,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(notice) => {
            let notice: String = url::form_urlencoded::byte_serialize(notice.as_bytes()).collect();
            Redirect::to(&format!("/sandbox/portal/{id}?notice={notice}")).into_response()
        }
        Err(e) if e.is_callers() => {
            let messages = Messages {
                notice: None,
                error: Some(&e.message),
            };
            let preview = form.get("price").map(String::as_str);
            match load(&sandbox, &account, &session, &config, preview, messages).await {
                Ok(view) => html_page(StatusCode::BAD_REQUEST, render(&view)),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => e.into_response(),
    }
}

fn action_from(form: &Form) -> Result<PortalAction, StripeError> {
    let field = |k: &str| form.get(k).cloned();
    match form.get("action").map(String::as_str).unwrap_or_default() {
        "card" => read_card(form)
            .map(PortalAction::UpdateCard)
            .map_err(|m| StripeError::card("card", "incorrect_number", m)),
        "cancel" => Ok(PortalAction::Cancel {
            reason: field("reason"),
            comment: field("comment"),
        }),
        "resume" => Ok(PortalAction::Resume),
        "switch" => Ok(PortalAction::Switch {
            price: field("price").unwrap_or_default(),
        }),
        _ => Err(StripeError::invalid(
            "action",
            "The portal does not allow this.",
        )),
    }
}

fn expired_link() -> Response {
    unavailable(
        TITLE,
        "Link expired",
        "This billing portal link is not valid. Go back to the app and open billing again.",
    )
}

struct Messages<'a> {
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

struct PlanView {
    name: String,
    price: String,
    per: String,
    status: &'static str,
    when: When,
}

enum When {
    Cancels(String),
    TrialEnds(String),
    Renews(String),
}

struct PlanChoice {
    price_id: String,
    name: String,
    price: String,
    per: String,
}

struct Preview {
    price_id: String,
    name: String,
    lines: Vec<(String, String)>,
    due: String,
}

struct InvoiceRow {
    url: String,
    date: String,
    total: String,
    status: String,
}

struct PortalView<'a> {
    id: String,
    return_url: Option<String>,
    headline: String,
    messages: Messages<'a>,
    plan: Option<PlanView>,
    /// Other plans, when the configuration allows switching and no cancellation is pending.
    choices: Option<Vec<PlanChoice>>,
    preview: Option<Preview>,
    can_resume: bool,
    /// The cancellation form, with the reasons to choose from when asked for.
    cancel: Option<Option<Vec<String>>>,
    /// The card on file, when the configuration allows updating it.
    card: Option<String>,
    invoices: Option<Vec<InvoiceRow>>,
}

fn status_in_words(status: &str) -> &'static str {
    match status {
        "trialing" => "Trial",
        "active" => "Active",
        "past_due" => "Past due",
        "unpaid" => "Unpaid",
        "incomplete" => "Incomplete",
        "paused" => "Paused",
        _ => "Inactive",
    }
}

async fn load<'a>(
    sandbox: &Sandbox,
    account: &Account,
    session: &Value,
    config: &Value,
    preview: Option<&str>,
    messages: Messages<'a>,
) -> Result<PortalView<'a>, StripeError> {
    let features = &config["features"];
    let on = |feature: &str| features[feature]["enabled"] == json!(true);
    let customer_id = session["customer"].as_str().unwrap_or_default();
    // Reads only: on a plain connection the store's `FOR UPDATE` lasts one statement, so a
    // page view never holds the subscription row while a portal action or a clock waits.
    let mut conn = sandbox.db.acquire().await?;
    let customer = store::get(&mut conn, account, Kind::Customer, customer_id).await?;
    let sub = portal::current_subscription(&mut conn, account, customer_id).await?;
    let mut view = PortalView {
        id: session["id"].as_str().unwrap_or_default().to_owned(),
        return_url: session["return_url"].as_str().map(str::to_owned),
        headline: config["business_profile"]["headline"]
            .as_str()
            .unwrap_or("Manage your billing")
            .to_owned(),
        messages,
        plan: None,
        choices: None,
        preview: None,
        can_resume: false,
        cancel: None,
        card: None,
        invoices: None,
    };
    if let Some(sub) = &sub {
        let item = &sub["items"]["data"][0];
        let price = &item["price"];
        let name = product_name(&mut conn, account, price).await?;
        let end = item["current_period_end"].as_i64().unwrap_or(0);
        let cancelling = sub["cancel_at_period_end"] == json!(true);
        view.plan = Some(PlanView {
            name: name.clone(),
            price: money::display(
                price["unit_amount"].as_i64().unwrap_or(0),
                price["currency"].as_str().unwrap_or("usd"),
            ),
            per: price["recurring"]["interval"]
                .as_str()
                .unwrap_or("month")
                .to_owned(),
            status: status_in_words(sub["status"].as_str().unwrap_or_default()),
            when: if cancelling {
                When::Cancels(long_date(end))
            } else if sub["status"] == "trialing" {
                When::TrialEnds(long_date(sub["trial_end"].as_i64().unwrap_or(end)))
            } else {
                When::Renews(long_date(end))
            },
        });
        if on("subscription_update") && !cancelling {
            let mut choices = Vec::new();
            for price_id in features["subscription_update"]["products"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|p| p["prices"].as_array().cloned().unwrap_or_default())
                .filter_map(|p| p.as_str().map(str::to_owned))
            {
                if price["id"] == price_id.as_str() {
                    continue;
                }
                let Ok(other) = store::get(&mut conn, account, Kind::Price, &price_id).await else {
                    continue;
                };
                if other["active"] != json!(true) {
                    continue;
                }
                choices.push(PlanChoice {
                    name: product_name(&mut conn, account, &other).await?,
                    price: money::display(
                        other["unit_amount"].as_i64().unwrap_or(0),
                        other["currency"].as_str().unwrap_or("usd"),
                    ),
                    per: other["recurring"]["interval"]
                        .as_str()
                        .unwrap_or("month")
                        .to_owned(),
                    price_id,
                });
            }
            view.choices = Some(choices);
            if let Some(wanted) = preview {
                if let Ok(new_price) =
                    portal::allowed_price(&mut conn, account, config, wanted).await
                {
                    let at = customer_now(&mut conn, account, &customer).await?;
                    let new_name = product_name(&mut conn, account, &new_price).await?;
                    let (lines, _) = portal::proration_lines(sub, &new_price, &name, &new_name, at);
                    let currency = new_price["currency"].as_str().unwrap_or("usd");
                    let net: i64 = lines.iter().map(|l| l.amount).sum::<i64>().max(0);
                    view.preview = Some(Preview {
                        price_id: wanted.to_owned(),
                        name: new_name,
                        lines: lines
                            .iter()
                            .map(|l| (l.description.clone(), money::display(l.amount, currency)))
                            .collect(),
                        due: money::display(net, currency),
                    });
                }
            }
        }
        view.can_resume = cancelling;
        if !cancelling && on("subscription_cancel") {
            let reason = &features["subscription_cancel"]["cancellation_reason"];
            view.cancel = Some((reason["enabled"] == json!(true)).then(|| {
                reason["options"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o.as_str().map(str::to_owned))
                    .collect()
            }));
        }
    }
    if on("payment_method_update") {
        let card = match customer["invoice_settings"]["default_payment_method"].as_str() {
            Some(pm) => store::get(&mut conn, account, Kind::PaymentMethod, pm)
                .await
                .ok(),
            None => None,
        };
        view.card = Some(
            card.map(|pm| {
                format!(
                    "{} •••• {} (expires {}/{})",
                    pm["card"]["brand"].as_str().unwrap_or("card"),
                    pm["card"]["last4"].as_str().unwrap_or(""),
                    pm["card"]["exp_month"],
                    pm["card"]["exp_year"]
                )
            })
            .unwrap_or_else(|| "No card on file".into()),
        );
    }
    if on("invoice_history") {
        let invoices: Vec<Value> = sqlx::query_scalar(
            "select data from stripe_sandbox.objects where account = $1 and object = 'invoice' and data ->> 'customer' = $2 order by seq desc limit 24",
        )
        .bind(&account.0)
        .bind(customer_id)
        .fetch_all(&mut *conn)
        .await?;
        view.invoices = Some(
            invoices
                .iter()
                .map(|inv| InvoiceRow {
                    url: inv["hosted_invoice_url"].as_str().unwrap_or("#").to_owned(),
                    date: long_date(inv["created"].as_i64().unwrap_or(0)),
                    total: money::display(
                        inv["total"].as_i64().unwrap_or(0),
                        inv["currency"].as_str().unwrap_or("usd"),
                    ),
                    status: inv["status"].as_str().unwrap_or_default().to_owned(),
                })
                .collect(),
        );
    }
    Ok(view)
}

fn render(view: &PortalView) -> Markup {
    let action = format!("/sandbox/portal/{}", view.id);
    let body = html! {
        main.narrow.portal {
            @if let Some(url) = &view.return_url {
                a.back data-testid="portal-return" href=(url) { "← Return to the app" }
            }
            h1 { (view.headline) }
            @if let Some(notice) = view.messages.notice {
                p.ok role="status" data-testid="portal-notice" { (notice) }
            }
            @if let Some(error) = view.messages.error {
                p.error role="alert" data-testid="portal-error" { (error) }
            }
            h2 { "Current plan" }
            @match &view.plan {
                None => p { "No active subscription." },
                Some(plan) => {
                    div.line data-testid="portal-plan" {
                        span { strong { (plan.name) } " · " (plan.price) " / " (plan.per) " · " (plan.status) }
                        span {
                            @match &plan.when {
                                When::Cancels(date) => span data-testid="portal-cancels" { "Cancels " (date) },
                                When::TrialEnds(date) => { "Trial ends " (date) },
                                When::Renews(date) => { "Renews " (date) },
                            }
                        }
                    }
                }
            }
            @if let Some(choices) = &view.choices {
                h2 { "Change plan" }
                ul.plans {
                    @for choice in choices {
                        li {
                            span { (choice.name) " · " (choice.price) " / " (choice.per) }
                            " "
                            a data-testid=(format!("preview-{}", choice.price_id))
                                href=(format!("{action}?preview={}", choice.price_id))
                                aria-label=(format!("Select {} ({} / {})", choice.name, choice.price, choice.per)) { "Select" }
                        }
                    }
                }
                @if let Some(preview) = &view.preview {
                    section.preview data-testid="proration-preview" {
                        h3 { "Switch to " (preview.name) }
                        @for (description, amount) in &preview.lines {
                            div.line { span { (description) } span { (amount) } }
                        }
                        div.line.total {
                            span { "Amount due today" }
                            span data-testid="amount-due-now" { (preview.due) }
                        }
                        form.stack method="post" action=(action) {
                            input type="hidden" name="action" value="switch";
                            input type="hidden" name="price" value=(preview.price_id);
                            button type="submit" data-testid="confirm-switch" { "Confirm" }
                        }
                    }
                }
            }
            @if view.can_resume {
                form.stack method="post" action=(action) {
                    input type="hidden" name="action" value="resume";
                    button type="submit" data-testid="resume" { "Renew subscription" }
                }
            }
            @if let Some(reasons) = &view.cancel {
                h2 { "Cancel" }
                form.stack method="post" action=(action) {
                    input type="hidden" name="action" value="cancel";
                    @if let Some(reasons) = reasons {
                        label { "Why are you canceling?"
                            select name="reason" required {
                                option value="" { "Choose a reason" }
                                @for reason in reasons {
                                    option value=(reason) { (reason.replace('_', " ")) }
                                }
                            }
                        }
                        label { "Anything else? (optional)" input name="comment"; }
                    }
                    button.secondary type="submit" data-testid="cancel-plan" { "Cancel at period end" }
                }
            }
            @if let Some(card) = &view.card {
                h2 { "Payment method" }
                p data-testid="portal-card" { (card) }
                details {
                    summary { "Update card" }
                    form.stack method="post" action=(action) {
                        input type="hidden" name="action" value="card";
                        (card_fields(&CardValues::default()))
                        button type="submit" data-testid="save-card" { "Save card" }
                    }
                }
            }
            @if let Some(invoices) = &view.invoices {
                h2 { "Invoice history" }
                ul.invoices {
                    @for invoice in invoices {
                        li { a href=(invoice.url) { (invoice.date) } " · " (invoice.total) " · " (invoice.status) }
                    }
                    @if invoices.is_empty() { li { "No invoices yet." } }
                }
            }
        }
    };
    layout(TITLE, None, body)
}
