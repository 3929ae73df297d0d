//! The document shell and the route table.

use crate::{
    accounts::{provide_auth, CheckEmailPage, ConfirmEmailPage, LoginPage, SignupPage},
    admin::AdminPage,
    billing::BillingSettingsPage,
    catalog::PricingPage,
    checkout::CheckoutSuccessPage,
    licenses::LicensesPage,
    subscriptions::DashboardPage,
    ui::{HomePage, Layout, NotFound},
    usage::ApiTokensPage,
};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Each page may run only the scripts this response's nonce allows (the hydration script,
/// and what it loads), load styles, images and data from this origin, and submit forms to
/// this origin or to Stripe's hosted pages. No page may be framed.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    let Some(nonce) = leptos::nonce::use_nonce() else {
        return;
    };
    let Some(response) = use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    // Where a form may lead: here, Stripe's Checkout and Portal, or the Stripe-compatible
    // server the app was pointed at.
    let mut form_targets =
        "'self' https://checkout.stripe.com https://billing.stripe.com".to_owned();
    if let Some(base) = crate::state::AppState::get()
        .ok()
        .and_then(|s| s.config.stripe_api_base.clone())
    {
        form_targets.push(' ');
        form_targets.push_str(&base.origin().ascii_serialization());
    }
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
         frame-ancestors 'none'; form-action {form_targets}"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_auth();

    // Effects run only in the browser, so this marks the moment the page is interactive;
    // end-to-end tests wait for it instead of racing hydration.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/saas-billing.css"/>
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml"/>
        <Meta name="description" content="A full-stack Rust SaaS that takes payments with Stripe correctly."/>
        <Title formatter=|text: String| format!("{text} · saas-billing")/>
        // Async rendering sends each page whole once its data is in: pages and their form
        // errors then work without JavaScript, and redirects can still set real headers.
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    <Route path=path!("") view=HomePage ssr=SsrMode::Async/>
                    <Route path=path!("pricing") view=PricingPage ssr=SsrMode::Async/>
                    <Route path=path!("signup") view=SignupPage ssr=SsrMode::Async/>
                    <Route path=path!("login") view=LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("signup/check-email") view=CheckEmailPage ssr=SsrMode::Async/>
                    <Route path=path!("verify-email") view=ConfirmEmailPage ssr=SsrMode::Async/>
                    <Route path=path!("dashboard") view=DashboardPage ssr=SsrMode::Async/>
                    <Route path=path!("settings/billing") view=BillingSettingsPage ssr=SsrMode::Async/>
                    <Route path=path!("checkout/success") view=CheckoutSuccessPage ssr=SsrMode::Async/>
                    <Route path=path!("licenses") view=LicensesPage ssr=SsrMode::Async/>
                    <Route path=path!("admin") view=AdminPage ssr=SsrMode::Async/>
                    <Route path=path!("settings/api") view=ApiTokensPage ssr=SsrMode::Async/>
                </Routes>
            </Layout>
        </Router>
    }
}
