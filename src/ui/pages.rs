use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="Take money correctly"/>
        <section class="hero">
            <h1>"Subscriptions that stay correct."</h1>
            <p class="lead">
                "saas-billing is a full-stack Rust SaaS that takes payments with Stripe the careful way: "
                "webhooks as the source of truth, an idempotent event ledger, entitlements you can trust, "
                "and an offline Stripe sandbox so every journey runs on your laptop."
            </p>
            <div class="hero-actions">
                <a class="button" href="/pricing">"See plans"</a>
                <a class="button button-secondary" href="/signup">"Create an account"</a>
            </div>
        </section>
        <section class="feature-grid" aria-label="What is inside">
            <article class="card">
                <h2>"Checkout and Portal"</h2>
                <p>"Stripe-hosted payment pages: trials, tax, promo codes and plan changes without card data on our servers."</p>
            </article>
            <article class="card">
                <h2>"Webhooks you can trust"</h2>
                <p>"Signed, recorded once in a ledger, safe against duplicates and events that arrive out of order."</p>
            </article>
            <article class="card">
                <h2>"Runs offline"</h2>
                <p>"A stateful Stripe-compatible sandbox with test cards, signed webhooks and test clocks."</p>
            </article>
        </section>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found"/>
        <section class="narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. It may have moved, or the link may be mistyped."</p>
            <p><a class="button" href="/">"Go to the home page"</a></p>
        </section>
    }
}
