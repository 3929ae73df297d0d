//! `GET /v1/events`: the record of everything that happened, for replaying missed webhooks.

use crate::{
    http::{accepts, int_of, lists, Account, ApiResult, Page, Params, StripeError},
    Sandbox,
};
use axum::{
    extract::{Path, State},
    routing::get,
    Router,
};
use serde_json::Value;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/events",
            get(list_events).layer(lists(&[
                "type",
                "types.#",
                "created",
                "created.gt",
                "created.gte",
                "created.lt",
                "created.lte",
                "delivery_success",
            ])),
        )
        .route("/events/{id}", get(retrieve_event).layer(accepts(&[])))
}

async fn retrieve_event(
    State(sandbox): State<Sandbox>,
    account: Account,
    Path(id): Path<String>,
    // Nothing to read, but an unknown parameter is still refused.
    _params: Params,
) -> ApiResult {
    let data: Option<Value> =
        sqlx::query_scalar("select data from stripe_sandbox.events where account = $1 and id = $2")
            .bind(&account.0)
            .bind(&id)
            .fetch_optional(&sandbox.db)
            .await?;
    data.map(axum::Json)
        .ok_or_else(|| StripeError::no_such("event", &id))
}

/// Filters: `type` (with `*` wildcards, e.g. `customer.*`), `types[]`, `created` (exact or
/// `created[gt|gte|lt|lte]`), and `delivery_success` (false: some endpoint has not yet had
/// it delivered successfully).
async fn list_events(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let page = Page::from(&params)?;
    let type_like = params
        .str("type")
        .map(|t| t.replace('%', "").replace('*', "%"));
    let types = params.strings("types");
    let (mut gt, mut gte, mut lt, mut lte) = (None, None, None, None);
    match params.get("created") {
        Some(Value::Object(range)) => {
            gt = int_of(range.get("gt"), "created[gt]")?;
            gte = int_of(range.get("gte"), "created[gte]")?;
            lt = int_of(range.get("lt"), "created[lt]")?;
            lte = int_of(range.get("lte"), "created[lte]")?;
        }
        Some(exact) => {
            gte = int_of(Some(exact), "created")?;
            lte = gte;
        }
        None => {}
    }
    let delivery_success = params.bool("delivery_success")?;
    let rows: Vec<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.events e
         where account = $1
           and ($2::text is null or type like $2)
           and (cardinality($3::text[]) = 0 or type = any($3))
           and ($4::bigint is null or created > $4) and ($5::bigint is null or created >= $5)
           and ($6::bigint is null or created < $6) and ($7::bigint is null or created <= $7)
           and ($8::bool is null or $8 = not exists (
                 select 1 from stripe_sandbox.deliveries d
                 where d.account = e.account and d.event_id = e.id and d.status <> 'succeeded'))
           and ($9::text is null or seq < (select seq from stripe_sandbox.events where account = $1 and id = $9) or $10)
           and ($9::text is null or seq > (select seq from stripe_sandbox.events where account = $1 and id = $9) or not $10)
         order by case when $10 then seq end asc, seq desc
         limit $11",
    )
    .bind(&account.0)
    .bind(type_like)
    .bind(&types)
    .bind(gt)
    .bind(gte)
    .bind(lt)
    .bind(lte)
    .bind(delivery_success)
    .bind(page.cursor())
    .bind(page.reversed())
    .bind(page.limit + 1)
    .fetch_all(&sandbox.db)
    .await?;
    Ok(axum::Json(page.list(rows, "/v1/events")))
}
