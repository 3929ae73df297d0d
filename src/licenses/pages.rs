//! `/licenses`: every license the user owns, its key (hidden until asked for), its status in
//! words, the machines it is active on (each can be freed), the receipt, and its history.

use super::{my_licenses, LicenseView};
use crate::ui::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn LicensesPage() -> impl IntoView {
    let licenses = Resource::new(|| (), |_| my_licenses());
    view! {
        <Title text="Licenses"/>
        <section class="licenses">
            <header class="page-header">
                <h1>"Licenses"</h1>
                <p class="muted">"Your license keys, the machines they are active on, and what happened to each."</p>
            </header>
            <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading your licenses…"</p> }>
                {move || licenses.get().map(|r| match r {
                    Ok(list) if list.is_empty() => view! {
                        <p class="notice">"You have no licenses yet. "<a href="/pricing#buy-once">"Buy a lifetime license"</a>" or subscribe to a plan."</p>
                    }.into_any(),
                    Ok(list) => list.into_iter().map(|license| view! { <LicenseCard license/> }).collect_view().into_any(),
                    Err(e) => view! { <ErrorNotice error=e back_to="/licenses"/> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn LicenseCard(license: LicenseView) -> impl IntoView {
    let heading = format!("license-{}", license.id);
    let status_word = status_word(&license.status);
    let used = format!(
        "{} of {} machines",
        license.activations.len(),
        license.max_activations
    );
    let license_id = license.id.clone();
    view! {
        <article class="card license" aria-labelledby=heading.clone() data-status=license.status.clone()>
            <header class="license-header">
                <h2 id=heading.clone()>{license.product.clone()}</h2>
                <span class=format!("badge badge-{}", license.status)>{status_word}</span>
            </header>
            <p class="license-explanation">{license.explanation.clone()}</p>
            <dl class="facts">
                <div><dt>"Kind"</dt><dd>{license.kind.clone()}</dd></div>
                <div><dt>"Issued"</dt><dd>{license.issued.clone()}</dd></div>
                {license.expires.clone().map(|e| view! { <div><dt>"Valid until"</dt><dd>{e}</dd></div> })}
                <div><dt>"Activations"</dt><dd>{used}</dd></div>
            </dl>
            <KeyReveal key=license.key.clone() masked=license.masked_key.clone() product=license.product.clone()/>
            {(!license.activations.is_empty()).then(|| view! {
                <h3>"Machines"</h3>
                <ul class="machines">
                    {license.activations.iter().map(|a| {
                        let label = format!("Deactivate {}", a.machine_id);
                        view! {
                            <li>
                                <span><code>{a.machine_id.clone()}</code>" · since "{a.since.clone()}</span>
                                <form method="post" action="/api/licenses/deactivate">
                                    <input type="hidden" name="license_id" value=license_id.clone()/>
                                    <input type="hidden" name="machine_id" value=a.machine_id.clone()/>
                                    <button type="submit" class="button button-secondary button-small" aria-label=label>"Deactivate"</button>
                                </form>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            })}
            {license.receipt_url.clone().map(|u| view! { <p><a href=u>"View receipt"</a></p> })}
            <h3>"History"</h3>
            <ol class="history">
                {license.history.iter().map(|h| view! {
                    <li><time>{h.when.clone()}</time>" · "{h.what.clone()}</li>
                }).collect_view()}
            </ol>
        </article>
    }
}

/// The key, hidden behind a disclosure that works without JavaScript; once the page is
/// interactive, a button copies it.
#[component]
fn KeyReveal(key: String, masked: String, product: String) -> impl IntoView {
    view! {
        <div class="license-key">
            <p>"Key: "<code aria-label=format!("{product} license key, hidden")>{masked}</code></p>
            <details>
                <summary>"Show key"</summary>
                <p><code class="key">{key.clone()}</code></p>
            </details>
            <CopyKey key/>
        </div>
    }
}

/// The copy button: an island, shown only once it can work.
#[island]
fn CopyKey(key: String) -> impl IntoView {
    let interactive = RwSignal::new(false);
    Effect::new(move |_| interactive.set(true));
    // None until asked; then whether the clipboard took it.
    let copied = RwSignal::new(None::<bool>);
    let copy = move |_| copy_to_clipboard(&key, move |ok| copied.set(Some(ok)));
    move || {
        interactive.get().then(|| {
            view! {
                <button type="button" class="button button-secondary button-small" on:click=copy.clone()>
                    {move || if copied.get() == Some(true) { "Copied" } else { "Copy key" }}
                </button>
                <span class="field-hint" aria-live="polite">{move || match copied.get() {
                    Some(true) => "Key copied to the clipboard.",
                    Some(false) => "This browser did not allow copying: open Show key and copy it from there.",
                    None => "",
                }}</span>
            }
        })
    }
}

fn status_word(status: &str) -> &'static str {
    match status {
        "active" => "Active",
        "expired" => "Expired",
        "suspended" => "Suspended",
        "revoked" => "Revoked",
        "cancelled" => "Cancelled",
        _ => "Unknown",
    }
}

/// `navigator.clipboard.writeText(text)`, looked up at run time (web-sys's Clipboard
/// bindings would grow the bundle for one call); `done` hears whether it worked.
#[cfg(feature = "hydrate")]
fn copy_to_clipboard(text: &str, done: impl Fn(bool) + Copy + 'static) {
    use wasm_bindgen::{closure::Closure, JsCast, JsValue};
    let get =
        |target: &JsValue, name: &str| js_sys::Reflect::get(target, &JsValue::from_str(name)).ok();
    let promise = get(&window().into(), "navigator")
        .and_then(|n| get(&n, "clipboard"))
        .and_then(|clipboard| {
            let write = get(&clipboard, "writeText")?
                .dyn_into::<js_sys::Function>()
                .ok()?;
            write.call1(&clipboard, &JsValue::from_str(text)).ok()
        })
        .and_then(|p| p.dyn_into::<js_sys::Promise>().ok());
    let Some(promise) = promise else {
        done(false);
        return;
    };
    let ok = Closure::once(move |_: JsValue| done(true));
    let failed = Closure::once(move |_: JsValue| done(false));
    let _ = promise.then2(&ok, &failed);
    // Each runs at most once, when the browser answers; they must live until then.
    ok.forget();
    failed.forget();
}

#[cfg(not(feature = "hydrate"))]
fn copy_to_clipboard(_: &str, _: impl Fn(bool) + Copy + 'static) {}
