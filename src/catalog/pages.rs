use super::{load_pricing, money::format_price, Interval, LicensedProductView, PlanView, Pricing};
use crate::ui::SubmitButton;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The billing-period toggle is two links (`?interval=year`): the server renders the chosen
/// period's prices.
#[component]
pub fn PricingPage() -> impl IntoView {
    let pricing = Resource::new(|| (), |_| load_pricing());
    let query = use_query_map();
    let interval = Memo::new(move |_| {
        if query.with(|q| q.get_str("interval") == Some("year")) {
            Interval::Year
        } else {
            Interval::Month
        }
    });
    let toggle = move |which: Interval, label: &'static str| {
        view! {
            <a
                href=format!("/pricing?interval={}", which.as_str())
                class=move || if interval.get() == which { "toggle-option active" } else { "toggle-option" }
                aria-current=move || (interval.get() == which).then_some("true")
                data-testid=format!("interval-{}", which.as_str())
            >
                {label}
            </a>
        }
    };
    view! {
        <Title text="Pricing"/>
        <section class="pricing">
            // One boundary for the whole page: it is rendered once, on the server, when the
            // catalog is in.
            <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading plans…"</p> }>
                {move || pricing.get().map(|result| {
                    let (lead, body) = match result {
                        Ok(p) => (Some(lead(p.trial_days)), plans(p, interval.get_untracked())),
                        Err(e) => (None, view! { <p class="notice notice-error" role="alert">{e.to_string()}</p> }.into_any()),
                    };
                    view! {
                        <header class="page-header">
                            <h1>"Plans and pricing"</h1>
                            {lead.map(|l| view! { <p class="lead">{l}</p> })}
                            <div class="interval-toggle" role="group" aria-label="Billing period">
                                {toggle(Interval::Month, "Monthly")}
                                {toggle(Interval::Year, "Yearly")}
                            </div>
                        </header>
                        {body}
                    }
                })}
            </Suspense>
        </section>
    }
}

fn lead(trial_days: u32) -> String {
    if trial_days > 0 {
        format!("Every plan starts with a {trial_days}-day free trial. Cancel any time.")
    } else {
        "Your free trial has been used: a plan starts with its first payment. Cancel any time."
            .to_owned()
    }
}

/// The plans for the chosen period, then what is sold once.
fn plans(p: Pricing, interval: Interval) -> AnyView {
    if p.plans.is_empty() {
        return view! {
            <p class="notice">"No plans are on sale right now. Please check back soon."</p>
        }
        .into_any();
    }
    let (trial_days, logged_in) = (p.trial_days, p.logged_in);
    let current = p.current_price_id.clone();
    view! {
        <div class="plan-grid">
            {p.plans.into_iter().map(|plan| {
                let is_current = current.as_ref().is_some_and(|c| plan.prices.iter().any(|pr| &pr.id == c));
                view! { <PlanCard plan interval trial_days is_current logged_in/> }
            }).collect_view()}
        </div>
        {(!p.one_time.is_empty()).then(|| view! {
            <section id="buy-once" class="buy-once" aria-labelledby="buy-once-heading">
                <h2 id="buy-once-heading">"Buy once"</h2>
                <p class="muted">"Pay once and keep it: a license key for the desktop app, no subscription."</p>
                <div class="plan-grid">
                    {p.one_time.into_iter().map(|product| view! { <LicensedCard product logged_in/> }).collect_view()}
                </div>
            </section>
        })}
    }
    .into_any()
}

/// A product sold once: its price, what it includes, and Buy (a plain form: the answer is a
/// redirect to Stripe's hosted page).
#[component]
fn LicensedCard(product: LicensedProductView, logged_in: bool) -> impl IntoView {
    let price = format_price(product.unit_amount, &product.currency);
    let label = format!("Buy for {price}");
    let signup_href = format!(
        "/signup?next={}",
        crate::ui::url_escape("/pricing#buy-once")
    );
    let price_id = product.price_id.clone();
    view! {
        <article class="card plan" data-testid="licensed-product">
            <h3>{product.name.clone()}</h3>
            <p class="muted">{product.description.clone()}</p>
            <p class="price"><span class="amount">{price}</span><span class="per">" once"</span></p>
            <ul class="features">
                {product.features.iter().map(|f| view! { <li>{f.clone()}</li> }).collect_view()}
                <li>{format!("Activate on up to {} machines", product.max_activations)}</li>
            </ul>
            {if logged_in {
                view! {
                    <form method="post" action="/api/checkout/purchase">
                        <input type="hidden" name="price_id" value=price_id/>
                        <SubmitButton label=label pending_label="Opening checkout…"/>
                    </form>
                }.into_any()
            } else {
                view! { <a class="button button-block" href=signup_href>{label}</a> }.into_any()
            }}
        </article>
    }
}

#[component]
fn PlanCard(
    plan: PlanView,
    interval: Interval,
    trial_days: u32,
    is_current: bool,
    logged_in: bool,
) -> impl IntoView {
    let price_line = match plan.price_for(interval) {
        Some(p) => view! {
            <span class="amount">{format_price(p.unit_amount, &p.currency)}</span>
            <span class="per">{format!("/ {}", p.interval.as_str())}</span>
        }
        .into_any(),
        None => view! { <span class="per">"Not available for this period"</span> }.into_any(),
    };
    let saving = plan
        .price_for(Interval::Month)
        .zip(plan.price_for(Interval::Year))
        .and_then(|(m, y)| {
            let full = m.unit_amount * 12;
            (interval == Interval::Year && y.unit_amount < full && full > 0).then(|| {
                format!(
                    "Save {}% with yearly billing",
                    (full - y.unit_amount) * 100 / full
                )
            })
        });
    let signup_href = format!("/signup?next={}", crate::ui::url_escape("/pricing"));
    let button = if is_current {
        view! { <a class="button button-block button-secondary" href="/settings/billing">"Manage billing"</a> }.into_any()
    } else if logged_in {
        // A plain form: the answer is a redirect to Stripe's hosted page.
        let price = plan
            .price_for(interval)
            .map(|p| p.id.clone())
            .unwrap_or_default();
        view! {
            <form method="post" action="/api/checkout">
                <input type="hidden" name="price_id" value=price/>
                <SubmitButton label=start_label(trial_days) pending_label="Opening checkout…"/>
            </form>
        }
        .into_any()
    } else {
        view! { <a class="button button-block" href=signup_href>{start_label(trial_days)}</a> }
            .into_any()
    };
    view! {
        <article class=if plan.highlighted { "card plan plan-highlighted" } else { "card plan" } data-testid="plan">
            <h2>{plan.name.clone()}</h2>
            {is_current.then(|| view! { <p class="current-plan" data-testid="current-plan">"Your current plan"</p> })}
            <p class="muted">{plan.description.clone()}</p>
            <p class="price" data-testid="plan-price">{price_line}</p>
            <p class="saving">{saving}</p>
            <ul class="features">
                {plan.features.iter().map(|f| view! { <li>{f.clone()}</li> }).collect_view()}
            </ul>
            {button}
        </article>
    }
}

/// What starting a plan is called: a trial while the user has one left.
fn start_label(trial_days: u32) -> String {
    if trial_days > 0 {
        format!("Start {trial_days}-day trial")
    } else {
        "Subscribe".to_owned()
    }
}
