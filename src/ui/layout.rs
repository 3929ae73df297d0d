use crate::{accounts::use_auth, stripe::StripeMode};
use leptos::prelude::*;
use leptos_router::components::A;

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
        <Transition fallback=|| ()>
            {move || text().map(|t| view! { <div class="mode-banner" role="status" data-testid="mode-banner">{t}</div> })}
        </Transition>
    }
}

#[component]
fn Nav() -> impl IntoView {
    let auth = use_auth();
    let logout = auth.logout;
    view! {
        <header class="site-header">
            <nav class="container nav" aria-label="Main">
                <A href="/" attr:class="brand">"saas-billing"</A>
                <div class="nav-links">
                    <A href="/pricing">"Pricing"</A>
                    <Transition fallback=|| ()>
                        {move || {
                            let user = auth.session.get().and_then(|r| r.ok()).and_then(|s| s.user);
                            match user {
                                Some(user) => view! {
                                    <A href="/dashboard">"Dashboard"</A>
                                    <A href="/settings/billing">"Billing"</A>
                                    <A href="/licenses">"Licenses"</A>
                                    {user.is_admin.then(|| view! { <A href="/admin">"Admin"</A> })}
                                    <span class="nav-user" data-testid="nav-user">{user.email}</span>
                                    <ActionForm action=logout attr:class="inline-form">
                                        <button type="submit" class="link-button" disabled=move || logout.pending().get()>
                                            "Log out"
                                        </button>
                                    </ActionForm>
                                }.into_any(),
                                None => view! {
                                    <A href="/login">"Log in"</A>
                                    <A href="/signup" attr:class="button button-small">"Sign up"</A>
                                }.into_any(),
                            }
                        }}
                    </Transition>
                </div>
            </nav>
        </header>
    }
}
