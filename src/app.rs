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
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Title};
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
                // The bundle's versioned folder (`assets`): the stylesheet is cached for good.
                <link rel="stylesheet" href=format!("/{}/saas-billing.css", options.site_pkg_dir)/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Hands this response's nonce (the one on the hydration scripts) to the middleware that
/// writes the page's Content-Security-Policy (`middleware::page_policy`). Through the
/// request rather than `ResponseOptions`: headers set there were, now and then, missing
/// from the response under concurrent load, and a page without its policy header got the
/// no-script one and never hydrated.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    let Some(nonce) = leptos::nonce::use_nonce() else {
        return;
    };
    if let Some(slot) = use_context::<http::request::Parts>().and_then(|parts| {
        parts
            .extensions
            .get::<crate::middleware::PageScripts>()
            .cloned()
    }) {
        slot.set_nonce(&nonce);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_auth();

    view! {
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml"/>
        <Meta name="description" content="A full-stack Rust SaaS that takes payments with Stripe correctly."/>
        <Title formatter=|text: String| format!("{text} · saas-billing")/>
        // Async rendering sends each page whole once its data is in: pages and their form
        // errors then work without JavaScript, and redirects can still set real headers.
        // Islands mode: the pages are server-only HTML; only `#[island]` components (the
        // password toggle, busy submit buttons, the copy button) ship as wasm and hydrate.
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
