//! The page Stripe sends the customer back to: it grants nothing, and waits for the webhook.

use super::{poll_checkout, CheckoutProgress};
use crate::ui::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_query_map;

#[component]
pub fn CheckoutSuccessPage() -> impl IntoView {
    let query = use_query_map();
    let session_id = move || query.with(|q| q.get("session_id").unwrap_or_default());
    let status = Resource::new(session_id, poll_checkout);
    view! {
        <Title text="Checkout complete"/>
        <section class="narrow">
            <Transition fallback=|| view! { <p class="loading" aria-busy="true">"Checking your checkout…"</p> }>
                {move || status.get().map(|r| match r {
                    Ok(CheckoutProgress::Finishing { subscription: true }) => view! {
                        <h1>"Finishing your subscription…"</h1>
                        <Waiting/>
                    }.into_any(),
                    Ok(CheckoutProgress::Finishing { subscription: false }) => view! {
                        <h1>"Finishing your purchase…"</h1>
                        <Waiting/>
                    }.into_any(),
                    Ok(CheckoutProgress::Purchased { product, key }) => view! {
                        <h1>"Thank you for your purchase"</h1>
                        <p data-testid="checkout-done">{format!("{product} is yours. A receipt and your key are on their way by email.")}</p>
                        {key.map(|key| view! {
                            <p>"Your license key:"</p>
                            <p><code class="key" aria-label="Your license key">{key}</code></p>
                        })}
                        <p><a class="button" href="/licenses">"Go to your licenses"</a></p>
                    }.into_any(),
                    Ok(CheckoutProgress::Done { product, trial_ends: Some(ends) }) => view! {
                        <h1>"Your free trial has started"</h1>
                        <p data-testid="checkout-done">{format!("Welcome to {product}. Your trial runs until {ends}; nothing is charged before then, and you can cancel any time in billing settings.")}</p>
                        <p><a class="button" href="/dashboard">"Go to your dashboard"</a></p>
                    }.into_any(),
                    Ok(CheckoutProgress::Done { product, trial_ends: None }) => view! {
                        <h1>"You're subscribed"</h1>
                        <p data-testid="checkout-done">{format!("Welcome to {product}. Your payment went through, and your plan is on your dashboard.")}</p>
                        <p><a class="button" href="/dashboard">"Go to your dashboard"</a></p>
                    }.into_any(),
                    Ok(CheckoutProgress::NotFound) => view! {
                        <h1>"Nothing to show here"</h1>
                        <p data-testid="checkout-unknown">"We could not find a completed checkout for your account."</p>
                        <p><a class="button" href="/pricing">"See plans"</a></p>
                    }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e back_to="/checkout/success"/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// What the page says while the webhook is on its way; the page asks again every second
/// (a refresh, so it needs no JavaScript).
#[component]
fn Waiting() -> impl IntoView {
    view! {
        <Meta http_equiv="refresh" content="1"/>
        <p class="loading" aria-busy="true" data-testid="checkout-finishing">
            "Stripe has your payment details. We are waiting for its confirmation; this takes a few seconds."
        </p>
    }
}
