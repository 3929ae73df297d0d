//! Forms are plain HTML forms that post to their server function's URL: they work before
//! (and without) the wasm, and the server answers with a redirect, to the next page or back
//! with the error in the query. The few interactive pieces (the password toggle, the busy
//! submit button) are islands: only they ship to the browser.

use crate::error::ApiError;
use leptos::{prelude::*, server_fn::error::ServerFnUrlError, server_fn::ServerFn};
use leptos_router::hooks::use_query_map;

/// The error a post to the server function `S` redirected back with (`__path`, `__err`).
pub fn use_form_error<S>() -> Signal<Option<ApiError>>
where
    S: ServerFn<Error = ApiError>,
{
    let query = use_query_map();
    Signal::derive(move || {
        query.with(|q| {
            (q.get_str("__path") == Some(S::PATH))
                .then(|| {
                    q.get_str("__err")
                        .map(ServerFnUrlError::<ApiError>::decode_err)
                })
                .flatten()
        })
    })
}

/// A labelled input whose error, if any, sits right under it.
#[component]
pub fn Field(
    #[prop(into)] label: String,
    #[prop(into)] name: String,
    #[prop(into, default = "text".into())] kind: String,
    #[prop(into, optional)] autocomplete: Option<String>,
    #[prop(into, optional)] hint: Option<String>,
    /// What the field shows filled in (what the user typed before a refusal).
    #[prop(default = None)]
    value: Option<String>,
    error: Signal<Option<ApiError>>,
) -> impl IntoView {
    let id = format!("field-{name}");
    let message = error.get_untracked().and_then(|e| e.message_for(&name));
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id.clone()
                name=name
                type=kind
                value=value
                autocomplete=autocomplete
                required
                aria-invalid=message.is_some().to_string()
                aria-describedby=format!("{id}-help")
            />
            <FieldHelp id=format!("{id}-help") hint message/>
        </div>
    }
}

/// The password input with its show/hide toggle (an island: the toggle needs the browser).
#[component]
pub fn PasswordField(
    #[prop(into)] label: String,
    #[prop(into)] autocomplete: String,
    #[prop(into, optional)] hint: Option<String>,
    error: Signal<Option<ApiError>>,
) -> impl IntoView {
    let message = error
        .get_untracked()
        .and_then(|e| e.message_for("password"));
    view! {
        <div class="field">
            <label for=PASSWORD_ID>{label}</label>
            <PasswordInput autocomplete invalid=message.is_some()/>
            <FieldHelp id=format!("{PASSWORD_ID}-help") hint message/>
        </div>
    }
}

const PASSWORD_ID: &str = "field-password";

#[island]
fn PasswordInput(autocomplete: String, invalid: bool) -> impl IntoView {
    let shown = RwSignal::new(false);
    view! {
        <div class="password-input">
            <input
                id=PASSWORD_ID
                name="password"
                type=move || if shown.get() { "text" } else { "password" }
                autocomplete=autocomplete
                required
                aria-invalid=invalid.to_string()
                aria-describedby=format!("{PASSWORD_ID}-help")
            />
            <button
                type="button"
                class="toggle-visibility"
                aria-controls=PASSWORD_ID
                aria-pressed=move || shown.get().to_string()
                on:click=move |_| shown.update(|s| *s = !*s)
            >
                {move || if shown.get() { "Hide" } else { "Show" }}
            </button>
        </div>
    }
}

#[component]
fn FieldHelp(id: String, hint: Option<String>, message: Option<String>) -> impl IntoView {
    let class = if message.is_some() {
        "field-error"
    } else {
        "field-hint"
    };
    view! {
        <p id=id class=class aria-live="polite">{message.or(hint)}</p>
    }
}

/// A form-wide error (one not tied to a field), above the fields.
#[component]
pub fn FormBanner(error: Signal<Option<ApiError>>) -> impl IntoView {
    error
        .get_untracked()
        .and_then(|e| e.general_message())
        .map(|m| {
            view! {
                <p class="notice notice-error" role="alert" data-testid="form-error">{m}</p>
            }
        })
}

/// A submit button that, once clicked, says the form is on its way and refuses a second
/// submit. Without the wasm it is a plain submit button.
#[island]
pub fn SubmitButton(
    #[prop(into)] label: String,
    #[prop(into)] pending_label: String,
    /// Its classes; a full-width button unless given.
    #[prop(optional, into)]
    class: Option<String>,
    /// Its accessible name when the label alone is ambiguous (a row's "Revoke").
    #[prop(optional, into)]
    aria_label: Option<String>,
    /// For tests, where nothing visible names the button for good (its label changes).
    #[prop(optional, into)]
    testid: Option<String>,
) -> impl IntoView {
    let pending = RwSignal::new(false);
    let button = NodeRef::<leptos::html::Button>::new();
    #[cfg(feature = "hydrate")]
    {
        // Back from Stripe's page with the browser's back button, the page may come from
        // the back/forward cache as it was left: busy. It is not busy any more.
        let handle = window_event_listener_untyped("pageshow", move |_| pending.set(false));
        std::mem::forget(handle);
        // Esc stops the page's navigation: the form is no longer on its way, and the person
        // who stopped it must be able to send it again.
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() == "Escape" {
                pending.set(false);
            }
        });
        std::mem::forget(handle);
    }
    let on_click = move |ev: leptos::ev::MouseEvent| {
        if pending.get_untracked() {
            ev.prevent_default();
            return;
        }
        // Only a click that submits makes the button busy: a form the browser holds back
        // as invalid stays editable. Busy after this event, so the browser still submits.
        let submits = button
            .get_untracked()
            .and_then(|b| b.form())
            .is_some_and(|form| form.no_validate() || form.check_validity());
        if submits {
            set_timeout(move || pending.set(true), std::time::Duration::ZERO);
        }
    };
    view! {
        <button
            type="submit"
            node_ref=button
            class=class.unwrap_or_else(|| "button button-block".into())
            aria-label=aria_label
            data-testid=testid
            aria-disabled=move || pending.get().then_some("true")
            aria-busy=move || pending.get().to_string()
            on:click=on_click
        >
            {move || if pending.get() {
                view! { <span class="spinner" aria-hidden="true"></span>{pending_label.clone()} }.into_any()
            } else {
                label.clone().into_any()
            }}
        </button>
    }
}
