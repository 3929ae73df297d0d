use super::{use_auth, ConfirmEmail, Login, Signup};
use crate::ui::{use_form_error, Field, FormBanner, PasswordField, SubmitButton};
use leptos::{prelude::*, server_fn::ServerFn};
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The `next` query value, carried through the form so the user comes back to where the
/// login wall stopped them. The server decides whether it is safe to follow.
fn next_param() -> Memo<String> {
    let query = use_query_map();
    Memo::new(move |_| query.with(|q| q.get("next").unwrap_or_default()))
}

/// The address the server last refused in this session's form, to fill in again.
fn typed_email() -> Option<String> {
    use_auth()
        .session
        .get()
        .and_then(|s| s.ok())
        .and_then(|s| s.typed_email)
}

fn with_next(path: &str, next: &str) -> String {
    if next.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?next={}", crate::ui::url_escape(next))
    }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    let error = use_form_error::<Signup>();
    let next = next_param();
    view! {
        <Title text="Create your account"/>
        <section class="auth-card card">
            <h1>"Create your account"</h1>
            <p class="muted">"Start with a free trial on any plan."</p>
            <Suspense fallback=|| ()>{move || view! {
                <form method="post" action=Signup::url() class="form" novalidate>
                    <FormBanner error/>
                    <input type="hidden" name="next" value=next/>
                    <Field label="Email" name="email" kind="email" autocomplete="email" value=typed_email() error/>
                    <PasswordField label="Password" autocomplete="new-password" hint="At least 8 characters." error/>
                    <SubmitButton label="Create account" pending_label="Creating account…"/>
                </form>
            }}</Suspense>
            <p class="auth-switch">
                "Already have an account? "
                <a href=move || with_next("/login", &next.get())>"Log in"</a>
            </p>
        </section>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let error = use_form_error::<Login>();
    let next = next_param();
    view! {
        <Title text="Log in"/>
        <section class="auth-card card">
            <h1>"Log in"</h1>
            <Suspense fallback=|| ()>{move || view! {
                <form method="post" action=Login::url() class="form" novalidate>
                    <FormBanner error/>
                    <input type="hidden" name="next" value=next/>
                    <Field label="Email" name="email" kind="email" autocomplete="email" value=typed_email() error/>
                    <PasswordField label="Password" autocomplete="current-password" error/>
                    <SubmitButton label="Log in" pending_label="Logging in…"/>
                </form>
            }}</Suspense>
            <p class="auth-switch">
                "New here? "
                <a href=move || with_next("/signup", &next.get())>"Create an account"</a>
            </p>
        </section>
    }
}

/// Where a sign-up lands when the address must be confirmed first.
#[component]
pub fn CheckEmailPage() -> impl IntoView {
    view! {
        <Title text="Check your email"/>
        <section class="auth-card card">
            <h1>"Check your email"</h1>
            <p>"We sent a link to the address you gave. Open it to confirm the address and start using your account."</p>
            <p class="muted">"If that address already has an account, we sent its owner a note instead: log in as usual."</p>
            <p><a href="/login">"Log in"</a></p>
        </section>
    }
}

/// The page the confirmation link opens. Confirming takes a click: mail scanners that open
/// links on their own must not use the token up.
#[component]
pub fn ConfirmEmailPage() -> impl IntoView {
    let error = use_form_error::<ConfirmEmail>();
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token").unwrap_or_default());
    view! {
        <Title text="Confirm your email"/>
        <section class="auth-card card">
            <h1>"Confirm your email"</h1>
            <p>"One click and your address is confirmed; you are then logged in."</p>
            <form method="post" action=ConfirmEmail::url() class="form">
                <FormBanner error/>
                <input type="hidden" name="token" value=token/>
                <SubmitButton label="Confirm my email" pending_label="Confirming…"/>
            </form>
        </section>
    }
}
