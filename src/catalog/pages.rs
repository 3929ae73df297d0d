use super::{load_pricing, money::format_price, Interval, LicensedProductView, PlanView};
use crate::{accounts::use_auth, ui::SubmitButton};
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
            <header class="page-header">
                <h1>"Plans and pricing"</h1>
                <Suspense fallback=|| ()>
                    {move || pricing.get().and_then(|r| r.ok()).map(|p| view! {
                        <p class="lead">{if p.trial_days > 0 {
                            format!("Every plan starts with a {}-day free trial. Cancel any time.", p.trial_days)
                        } else {
                            "Your free trial has been used: a plan starts with its first payment. Cancel any time.".to_owned()
                        }}</p>
                    })}
                </Suspense>
                <div class="interval-toggle" role="group" aria-label="Billing period">
                    {toggle(Interval::Month, "Monthly")}
                    {toggle(Interval::Year, "Yearly")}
                </div>
            </header>
            <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading plans…"</p> }>
                {move || pricing.get().map(|result| match result {
                    Ok(p) if p.plans.is_empty() => view! {
                        <p class="notice">"No plans are on sale right now. Please check back soon."</p>
                    }.into_any(),
                    Ok(p) => {
                        let trial_days = p.trial_days;
                        let current = p.current_price_id.clone();
                        view! {
                            <div class="plan-grid">
                                {p.plans.into_iter().map(|plan| {
                                    let is_current = current.as_ref().is_some_and(|c| plan.prices.iter().any(|pr| &pr.id == c));
                                    view! { <PlanCard plan interval trial_days is_current/> }
                                }).collect_view()}
                            </div>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="notice notice-error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Suspense>
            <Suspense fallback=|| ()>
                {move || pricing.get().and_then(|r| r.ok()).filter(|p| !p.one_time.is_empty()).map(|p| view! {
                    <section id="buy-once" class="buy-once" aria-labelledby="buy-once-heading">
                        <h2 id="buy-once-heading">"Buy once"</h2>
                        <p class="muted">"Pay once and keep it: a license key for the desktop app, no subscription."</p>
                        <div class="plan-grid">
                            {p.one_time.into_iter().map(|product| view! { <LicensedCard product/> }).collect_view()}
                        </div>
                    </section>
                })}
            </Suspense>
        </section>
    }
}

/// A product sold once: its price, what it includes, and Buy (a plain form: the answer is a
/// redirect to Stripe's hosted page).
#[component]
fn LicensedCard(product: LicensedProductView) -> impl IntoView {
    let auth = use_auth();
    let logged_in = move || {
        auth.session
            .get()
            .and_then(|r| r.ok())
            .is_some_and(|s| s.user.is_some())
    };
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
            <Transition fallback=|| ()>
                {
                    let (label, price_id, signup_href) = (label.clone(), price_id.clone(), signup_href.clone());
                    move || if logged_in() {
                        view! {
                            <form method="post" action="/api/checkout/purchase">
                                <input type="hidden" name="price_id" value=price_id.clone()/>
                                <SubmitButton label=label.clone() pending_label="Opening checkout…"/>
                            </form>
                        }.into_any()
                    } else {
                        view! { <a class="button button-block" href=signup_href.clone()>{label.clone()}</a> }.into_any()
                    }
                }
            </Transition>
        </article>
    }
}

#[component]
fn PlanCard(
    plan: PlanView,
    interval: Memo<Interval>,
    trial_days: u32,
    is_current: bool,
) -> impl IntoView {
    let auth = use_auth();
    let logged_in = move || {
        auth.session
            .get()
            .and_then(|r| r.ok())
            .is_some_and(|s| s.user.is_some())
    };
    let price_line = {
        let plan = plan.clone();
        move || match plan.price_for(interval.get()) {
            Some(p) => view! {
                <span class="amount">{format_price(p.unit_amount, &p.currency)}</span>
                <span class="per">{format!("/ {}", p.interval.as_str())}</span>
            }
            .into_any(),
            None => view! { <span class="per">"Not available for this period"</span> }.into_any(),
        }
    };
    let saving = {
        let plan = plan.clone();
        move || {
            let (m, y) = (
                plan.price_for(Interval::Month)?,
                plan.price_for(Interval::Year)?,
            );
            let full = m.unit_amount * 12;
            (interval.get() == Interval::Year && y.unit_amount < full && full > 0).then(|| {
                format!(
                    "Save {}% with yearly billing",
                    (full - y.unit_amount) * 100 / full
                )
            })
        }
    };
    let signup_href = format!("/signup?next={}", crate::ui::url_escape("/pricing"));
    let form_plan = plan.clone();
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
            <Transition fallback=|| ()>
                {
                    let signup_href = signup_href.clone();
                    let prices = form_plan.clone();
                    move || if is_current {
                        view! { <a class="button button-block button-secondary" href="/settings/billing">"Manage billing"</a> }.into_any()
                    } else if logged_in() {
                        // A plain form (not client-side): the answer is a redirect to Stripe's
                        // hosted page, which must be a full page load.
                        let price = prices.price_for(interval.get()).map(|p| p.id.clone()).unwrap_or_default();
                        view! {
                            <form method="post" action="/api/checkout">
                                <input type="hidden" name="price_id" value=price/>
                                <SubmitButton label=start_label(trial_days) pending_label="Opening checkout…"/>
                            </form>
                        }.into_any()
                    } else {
                        view! {
                            <a class="button button-block" href=signup_href.clone()>{start_label(trial_days)}</a>
                        }.into_any()
                    }
                }
            </Transition>
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
