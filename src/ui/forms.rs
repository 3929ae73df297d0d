use crate::error::ApiError;
use leptos::{prelude::*, server_fn::error::ServerFnUrlError, server_fn::ServerFn};
use leptos_router::hooks::use_query_map;

/// The current error of a form's server action. After a plain form post (no JS yet) the
/// server redirects back with the error in the URL (`__path`, `__err`); read it from
/// there too so the message shows during server rendering as well.
pub fn use_form_error<S>(action: ServerAction<S>) -> Signal<Option<ApiError>>
where
    S: ServerFn<Error = ApiError> + Send + Sync + Clone + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    let query = use_query_map();
    Signal::derive(move || match action.value().get() {
        Some(Ok(_)) => None,
        Some(Err(e)) => Some(e),
        None => query.with(|q| {
            (q.get_str("__path") == Some(S::PATH))
                .then(|| {
                    q.get_str("__err")
                        .map(ServerFnUrlError::<ApiError>::decode_err)
                })
                .flatten()
        }),
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
    error: Signal<Option<ApiError>>,
) -> impl IntoView {
    let id = format!("field-{name}");
    let message = field_message(error, name.clone());
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id.clone()
                name=name
                type=kind
                autocomplete=autocomplete
                required
                aria-invalid=move || message.get().is_some().to_string()
                aria-describedby=format!("{id}-help")
            />
            <FieldHelp id=format!("{id}-help") hint message/>
        </div>
    }
}

/// A password input with a show/hide toggle (which only works once the page is hydrated).
#[component]
pub fn PasswordField(
    #[prop(into)] label: String,
    #[prop(into)] autocomplete: String,
    #[prop(into, optional)] hint: Option<String>,
    error: Signal<Option<ApiError>>,
) -> impl IntoView {
    let id = "field-password";
    let shown = RwSignal::new(false);
    let message = field_message(error, "password".into());
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <div class="password-input">
                <input
                    id=id
                    name="password"
                    type=move || if shown.get() { "text" } else { "password" }
                    autocomplete=autocomplete
                    required
                    aria-invalid=move || message.get().is_some().to_string()
                    aria-describedby="field-password-help"
                />
                <button
                    type="button"
                    class="toggle-visibility"
                    aria-controls=id
                    aria-pressed=move || shown.get().to_string()
                    on:click=move |_| shown.update(|s| *s = !*s)
                >
                    {move || if shown.get() { "Hide" } else { "Show" }}
                </button>
            </div>
            <FieldHelp id="field-password-help".into() hint message/>
        </div>
    }
}

fn field_message(error: Signal<Option<ApiError>>, name: String) -> Memo<Option<String>> {
    Memo::new(move |_| error.get().and_then(|e| e.message_for(&name)))
}

#[component]
fn FieldHelp(id: String, hint: Option<String>, message: Memo<Option<String>>) -> impl IntoView {
    view! {
        <p id=id class=move || if message.get().is_some() { "field-error" } else { "field-hint" } aria-live="polite">
            {move || message.get().or_else(|| hint.clone())}
        </p>
    }
}

/// A form-wide error (one not tied to a field), above the fields.
#[component]
pub fn FormBanner(error: Signal<Option<ApiError>>) -> impl IntoView {
    view! {
        {move || error.get().and_then(|e| e.general_message()).map(|m| view! {
            <p class="notice notice-error" role="alert" data-testid="form-error">{m}</p>
        })}
    }
}

/// A submit button that shows progress and refuses double submits while pending.
#[component]
pub fn SubmitButton(
    #[prop(into)] label: String,
    #[prop(into)] pending_label: String,
    #[prop(into)] pending: Signal<bool>,
) -> impl IntoView {
    view! {
        <button type="submit" class="button button-block" disabled=move || pending.get() aria-busy=move || pending.get().to_string()>
            {move || if pending.get() {
                view! { <span class="spinner" aria-hidden="true"></span>{pending_label.clone()} }.into_any()
            } else {
                label.clone().into_any()
            }}
        </button>
    }
}
