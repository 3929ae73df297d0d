use crate::{
    accounts::{use_auth, Logout},
    stripe::StripeMode,
};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// The frame around every page: mode banner, navigation, content, footer.
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <ModeBanner/>
        <Nav/>
        <main id="main" class="container">{children()}</main>
        <footer class="site-footer">
            <div class="container">
                <p>"saas-billing · a reference for taking money correctly in Rust"</p>
                <p class="muted">"Card data never touches our servers: payment details are entered on Stripe-hosted pages."</p>
            </div>
        </footer>
    }
}

#[component]
fn ModeBanner() -> impl IntoView {
    let auth = use_auth();
    let text = move || {
        auth.session.get().and_then(|r| r.ok()).and_then(|s| match s.mode {
            StripeMode::Sandbox => Some("Test mode: payments run against the offline Stripe sandbox. No real money moves."),
            StripeMode::Test => Some("Test mode: Stripe test keys. Use test cards; no real money moves."),
            StripeMode::Live => None,
        })
    };
    view! {
        <Suspense fallback=|| ()>
            {move || text().map(|t| view! { <div class="mode-banner" role="status" data-testid="mode-banner">{t}</div> })}
        </Suspense>
    }
}

#[component]
fn Nav() -> impl IntoView {
    let auth = use_auth();
    view! {
        <header class="site-header">
            <nav class="container nav" aria-label="Main">
                <a href="/" class="brand">"saas-billing"</a>
                <div class="nav-links">
                    <NavLink href="/pricing" label="Pricing"/>
                    <Suspense fallback=|| ()>
                        {move || {
                            let user = auth.session.get().and_then(|r| r.ok()).and_then(|s| s.user);
                            match user {
                                Some(user) => view! {
                                    <NavLink href="/dashboard" label="Dashboard"/>
                                    <NavLink href="/settings/billing" label="Billing"/>
                                    <NavLink href="/licenses" label="Licenses"/>
                                    {user.is_admin.then(|| view! { <NavLink href="/admin" label="Admin"/> })}
                                    <span class="nav-user" data-testid="nav-user">{user.email}</span>
                                    <form method="post" action=Logout::url() class="inline-form">
                                        <button type="submit" class="link-button">"Log out"</button>
                                    </form>
                                }.into_any(),
                                None => view! {
                                    <NavLink href="/login" label="Log in"/>
                                    <a href="/signup" class="button button-small">"Sign up"</a>
                                }.into_any(),
                            }
                        }}
                    </Suspense>
                </div>
            </nav>
        </header>
    }
}

/// A navigation link, marked as the current page where it is one.
#[component]
fn NavLink(href: &'static str, label: &'static str) -> impl IntoView {
    let here = leptos_router::hooks::use_location()
        .pathname
        .get_untracked()
        == href;
    view! { <a href=href aria-current=here.then_some("page")>{label}</a> }
}
