//! `GET /v1/events`: the record of everything that happened, for replaying missed webhooks.

use super::{
    http::{int_of, Account, ApiResult, Page, Params, StripeError},
    store, Sandbox,
};
use axum::extract::{Path, State};
use serde_json::Value;

pub async fn retrieve(
    State(s): State<Sandbox>,
    account: Account,
    Path(id): Path<String>,
) -> ApiResult {
    let data: Option<Value> =
        sqlx::query_scalar("select data from stripe_sandbox.events where account = $1 and id = $2")
            .bind(&account.0)
            .bind(&id)
            .fetch_optional(&s.db)
            .await?;
    data.map(axum::Json)
        .ok_or_else(|| StripeError::no_such("event", &id))
}

/// Filters: `type` (with `*` wildcards, e.g. `customer.*`), `types[]`, `created` (exact or
/// `created[gt|gte|lt|lte]`), and `delivery_success` (false: some endpoint has not yet had
/// it delivered successfully).
pub async fn list(State(s): State<Sandbox>, account: Account, params: Params) -> ApiResult {
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
    let reversed = page.ending_before.is_some() && page.starting_after.is_none();
    let cursor = page
        .starting_after
        .clone()
        .or_else(|| page.ending_before.clone());
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
    .bind(cursor)
    .bind(reversed)
    .bind(page.limit + 1)
    .fetch_all(&s.db)
    .await?;
    Ok(axum::Json(store::page_of(
        rows,
        &page,
        reversed,
        "/v1/events",
    )))
}
