//! The dashboard's usage card (the period's count against what is included and the limit, a
//! bar per day, and Stripe's estimate) and the API tokens page. All server-rendered: the
//! chart is SVG, so it reads the same without JavaScript; the numbers are also in a table
//! for screen readers.

use super::{list_tokens, usage_overview, CreateToken, RevokeToken, TokenView, UsageView};
use crate::ui::{use_form_error, ErrorNotice, FormBanner, SubmitButton};
use leptos::{prelude::*, server_fn::ServerFn};
use leptos_meta::Title;

/// The usage card of the dashboard.
#[component]
pub fn UsageCard() -> impl IntoView {
    let usage = Resource::new(|| (), |_| usage_overview());
    view! {
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading usage…"</p> }>
            {move || usage.get().map(|r| match r {
                Ok(Some(u)) => view! { <Usage u/> }.into_any(),
                Ok(None) => ().into_any(),
                Err(e) => view! { <ErrorNotice error=e back_to="/dashboard"/> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn Usage(u: UsageView) -> impl IntoView {
    let of_limit = u.limit.map(|l| format!(" of {l}")).unwrap_or_default();
    let percent = u
        .limit
        .filter(|l| *l > 0)
        .map(|l| (u.used * 100 / l).min(100));
    let notice = if u.at_limit {
        Some(format!(
            "You have used all {} reports your plan allows this period. Reports start again on {}.",
            u.limit.unwrap_or(u.used),
            u.resets
        ))
    } else if u.warned || percent.is_some_and(|p| p >= 80) {
        Some(match u.overage {
            true => {
                "You have used 80% of this period's reports. Past the limit, each report is billed."
                    .to_owned()
            }
            false => format!(
                "You have used 80% of this period's reports. At the limit, reports stop until {}.",
                u.resets
            ),
        })
    } else {
        None
    };
    let included = u.included.map(|i| {
        format!(
            "{i} included{}",
            u.beyond
                .as_ref()
                .map(|b| format!(", then {b}"))
                .unwrap_or_default()
        )
    });
    view! {
        <div class="card usage" data-testid="usage">
            <h2>"Usage this period"</h2>
            <p class="muted">{u.period.clone()}</p>
            {notice.map(|n| view! { <p class="notice" role="status" data-testid="usage-warning">{n}</p> })}
            <p class="usage-count"><strong>{format!("{}{of_limit} reports", u.used)}</strong></p>
            {percent.map(|p| view! {
                <div class="meter-bar" role="progressbar" aria-label="Reports used of the limit"
                    aria-valuemin="0" aria-valuemax="100" aria-valuenow=p.to_string()>
                    <span style=format!("width: {p}%")></span>
                </div>
            })}
            {included.map(|i| view! { <p class="muted small">{i}</p> })}
            <DailyChart days=u.days.clone()/>
            <p data-testid="usage-estimate">{match u.estimate.clone() {
                Some(e) => format!("Next invoice, as Stripe estimates it so far: {e}"),
                None => "The estimate for this period is not available right now.".to_owned(),
            }}</p>
        </div>
    }
}

/// A bar per day; the figures again in a table for screen readers.
#[component]
fn DailyChart(days: Vec<(String, i64)>) -> impl IntoView {
    if days.is_empty() {
        return view! { <p class="muted small">"No reports yet this period."</p> }.into_any();
    }
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let (bar, gap, height) = (24i64, 8i64, 100i64);
    let width = (bar + gap) * days.len() as i64;
    view! {
        <figure class="usage-chart">
            <svg viewBox=format!("0 0 {width} {}", height + 20) role="img"
                aria-label=format!("Reports per day: {}", days.iter().map(|(d, n)| format!("{d}: {n}")).collect::<Vec<_>>().join(", "))
                preserveAspectRatio="xMinYMax meet">
                {days.iter().enumerate().map(|(i, (label, n))| {
                    let h = (n * height / max).max(1);
                    let x = i as i64 * (bar + gap);
                    view! {
                        <rect x=x.to_string() y=(height - h).to_string() width=bar.to_string() height=h.to_string() rx="3"/>
                        <text x=(x + bar / 2).to_string() y=(height + 14).to_string() text-anchor="middle">{label.clone()}</text>
                    }
                }).collect_view()}
            </svg>
            <figcaption class="muted small">"Reports per day this period"</figcaption>
            <table class="visually-hidden">
                <caption>"Reports per day"</caption>
                <thead><tr><th>"Day"</th><th>"Reports"</th></tr></thead>
                <tbody>{days.into_iter().map(|(d, n)| view! { <tr><td>{d}</td><td>{n}</td></tr> }).collect_view()}</tbody>
            </table>
        </figure>
    }
    .into_any()
}

/// `/settings/api`: personal API tokens for `POST /api/v1/reports`.
#[component]
pub fn ApiTokensPage() -> impl IntoView {
    let tokens = Resource::new(|| (), |_| list_tokens());
    let error = use_form_error::<CreateToken>();
    view! {
        <Title text="API tokens"/>
        <section class="narrow">
            <header class="page-header">
                <h1>"API tokens"</h1>
                <p class="muted">"Run reports from a script: "<code>"POST /api/v1/reports"</code>" with "<code>"Authorization: Bearer <token>"</code>". Reports made this way count like the button on your dashboard."</p>
            </header>
            <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading tokens…"</p> }>
                {move || tokens.get().map(|r| match r {
                    Ok(t) => view! {
                        {t.fresh.map(|token| view! {
                            <div class="notice" role="status">
                                <p>"Your new token. Copy it now: it is not shown again."</p>
                                <p><code class="key" aria-label="New API token">{token}</code></p>
                            </div>
                        })}
                        {if t.tokens.is_empty() {
                            view! { <p class="muted">"No tokens yet."</p> }.into_any()
                        } else {
                            view! {
                                <ul class="tokens">
                                    {t.tokens.into_iter().map(|token| view! { <TokenRow token/> }).collect_view()}
                                </ul>
                            }.into_any()
                        }}
                    }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e back_to="/settings/api"/> }.into_any(),
                })}
            </Suspense>
            <div class="card">
                <h2>"New token"</h2>
                <form method="post" action=CreateToken::url() class="form">
                    <FormBanner error/>
                    <div class="field">
                        <label for="token-name">"Name"</label>
                        <input id="token-name" name="name" required maxlength="60" placeholder="Nightly export"
                            aria-describedby="token-name-help"/>
                        <p id="token-name-help" class="field-hint" aria-live="polite">
                            {error.get_untracked().and_then(|e| e.message_for("name")).unwrap_or_else(|| "What the token is for, so you know which to revoke.".into())}
                        </p>
                    </div>
                    <SubmitButton label="Create token" pending_label="Creating…" class="button"/>
                </form>
            </div>
        </section>
    }
}

#[component]
fn TokenRow(token: TokenView) -> impl IntoView {
    let label = format!("Revoke {}", token.name);
    view! {
        <li class="card token">
            <div>
                <strong>{token.name.clone()}</strong>
                <p class="muted small">{format!("…{} · created {}", token.hint, token.created)}
                    {token.last_used.map(|u| format!(" · last used {u}"))}</p>
            </div>
            <form method="post" action=RevokeToken::url() class="inline-form">
                <input type="hidden" name="id" value=token.id.clone()/>
                <SubmitButton label="Revoke" pending_label="Revoking…" class="button button-secondary button-small" aria_label=label/>
            </form>
        </li>
    }
}
