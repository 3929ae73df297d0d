//! The admin page: search by email, orders with a refund form each, subscriptions, and the
//! license audit log. Plain forms throughout, so it works with or without the wasm.

use super::{admin_overview, AdminOrder, AdminView, RefundOrder, REFUND_REASONS};
use crate::{
    error::ApiError,
    ui::{use_form_error, ErrorNotice, NotFound, SubmitButton},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AdminPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.with(|q| q.get("q"));
    let data = Resource::new(q, admin_overview);
    let refunded = move || query.with(|q| q.get_str("refunded") == Some("1"));
    view! {
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(view) => view! { <Admin view refunded=refunded()/> }.into_any(),
                // Not an admin, or not logged in: there is no such page.
                Err(ApiError::Forbidden | ApiError::Unauthenticated) => view! { <NotFound/> }.into_any(),
                Err(e) => view! { <ErrorNotice error=e back_to="/admin"/> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn Admin(view: AdminView, refunded: bool) -> impl IntoView {
    let q = view.query.clone();
    // A refund the server refused comes back in the address (`__err`): say why.
    let refund_error = use_form_error::<RefundOrder>();
    let refusal = move || {
        refund_error.get().map(|e| {
            e.message_for("amount")
                .or_else(|| e.message_for("reason"))
                .or_else(|| e.general_message())
                .unwrap_or_default()
        })
    };
    view! {
        <Title text="Admin"/>
        <section class="admin">
            <header class="page-header">
                <h1>"Admin"</h1>
                <form method="get" action="/admin" class="search" role="search">
                    <label for="admin-q">"Customer email"</label>
                    <input id="admin-q" name="q" type="search" value=view.query.clone() placeholder="name@example.com"/>
                    <button type="submit" class="button button-small">"Search"</button>
                </form>
            </header>
            {move || refusal().map(|m| view! { <p class="notice notice-error" role="alert">{m}</p> })}
            {refunded.then(|| view! {
                <p class="notice" role="status">"Refund requested. The order changes once Stripe confirms it, usually within seconds."</p>
            })}
            <h2 id="orders-heading">"Orders"</h2>
            {if view.orders.is_empty() {
                view! { <p class="muted">"No orders."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll"><table class="admin-orders" aria-labelledby="orders-heading">
                        <thead><tr>
                            <th>"Customer"</th><th>"Product"</th><th>"Amount"</th><th>"Refunded"</th>
                            <th>"Status"</th><th>"License"</th><th>"Date"</th><th>"Refund"</th>
                        </tr></thead>
                        <tbody>
                            {view.orders.into_iter().map(|o| view! { <OrderRow order=o q=q.clone()/> }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
            <h2 id="subscriptions-heading">"Subscriptions"</h2>
            {if view.subscriptions.is_empty() {
                view! { <p class="muted">"No subscriptions."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll"><table aria-labelledby="subscriptions-heading">
                        <thead><tr><th>"Customer"</th><th>"Plan"</th><th>"Status"</th><th>"Period ends"</th><th>"Subscription"</th></tr></thead>
                        <tbody>
                            {view.subscriptions.into_iter().map(|s| view! {
                                <tr><td>{s.email}</td><td>{s.product}</td><td>{s.status}</td><td>{s.period_end}</td><td><small>{s.id}</small></td></tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
            <h2 id="audit-heading">"License audit log"</h2>
            {if view.audit.is_empty() {
                view! { <p class="muted">"Nothing yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll"><table aria-labelledby="audit-heading">
                        <thead><tr><th>"When"</th><th>"Customer"</th><th>"Product"</th><th>"What"</th><th>"By"</th></tr></thead>
                        <tbody>
                            {view.audit.into_iter().map(|e| view! {
                                <tr><td>{e.when}</td><td>{e.email}</td><td>{e.product}</td><td>{e.what}</td><td><small>{e.by}</small></td></tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn OrderRow(order: AdminOrder, q: String) -> impl IntoView {
    let amount_id = format!("refund-amount-{}", order.id);
    let reason_id = format!("refund-reason-{}", order.id);
    let who = format!("{} ({})", order.email, order.product);
    view! {
        <tr data-testid="admin-order">
            <td>{order.email.clone()}</td>
            <td>{order.product.clone()}</td>
            <td>{order.amount.clone()}</td>
            <td>{order.refunded.clone()}</td>
            <td>{order.status.clone()}{order.pending.clone().map(|p| view! { <br/><small class="pending">{p}</small> })}</td>
            <td>{order.license.clone().unwrap_or_else(|| "–".into())}</td>
            <td>{order.created.clone()}</td>
            <td>
                {match order.refundable.clone() {
                    None => view! { <span class="muted">"Nothing left"</span> }.into_any(),
                    Some(left) => view! {
                        <form method="post" action="/api/admin/refund" class="refund-form">
                            <input type="hidden" name="order_id" value=order.id.clone()/>
                            <input type="hidden" name="q" value=q.clone()/>
                            <label for=amount_id.clone()>{format!("Amount to refund to {who}")}</label>
                            <input id=amount_id.clone() name="amount" inputmode="decimal" placeholder=left.clone()
                                aria-describedby=format!("{amount_id}-hint")/>
                            <small id=format!("{amount_id}-hint")>{format!("Empty: all {left} that is left")}</small>
                            <label for=reason_id.clone()>"Reason"</label>
                            <select id=reason_id.clone() name="reason">
                                {REFUND_REASONS.iter().map(|(value, label)| view! { <option value=*value>{*label}</option> }).collect_view()}
                            </select>
                            <SubmitButton label="Refund" pending_label="Refunding…" class="button button-small"/>
                        </form>
                    }.into_any(),
                }}
            </td>
        </tr>
    }
}
