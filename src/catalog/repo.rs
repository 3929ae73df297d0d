use super::{Interval, LicensedProductView, PlanView, PriceView};
use sqlx::{types::Json, PgExecutor};

#[derive(sqlx::FromRow)]
struct PlanPriceRow {
    product_id: String,
    name: String,
    description: Option<String>,
    features: Json<Vec<String>>,
    highlighted: bool,
    price_id: String,
    interval: String,
    unit_amount: i64,
    currency: String,
}

/// Products offered here (`pricing_page=true`) with their active flat monthly and yearly
/// prices, in display order.
pub async fn subscription_plans(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<PlanView>> {
    let rows: Vec<PlanPriceRow> = sqlx::query_as(
        "select p.id as product_id, p.name, p.description, p.features, p.highlighted,
                pr.id as price_id, pr.recurring_interval as interval, pr.unit_amount, pr.currency
         from products p
         join prices pr on pr.product_id = p.id
         where p.active and p.offered and pr.active and pr.kind = 'recurring'
           and pr.recurring_interval in ('month', 'year') and pr.recurring_interval_count = 1
           and pr.unit_amount is not null
         order by p.sort_order, p.name, p.id, pr.unit_amount",
    )
    .fetch_all(db)
    .await?;

    let mut plans: Vec<PlanView> = Vec::new();
    for row in rows {
        let interval = if row.interval == "year" {
            Interval::Year
        } else {
            Interval::Month
        };
        let price = PriceView {
            id: row.price_id,
            interval,
            unit_amount: row.unit_amount,
            currency: row.currency,
        };
        match plans.last_mut() {
            Some(plan) if plan.product_id == row.product_id => plan.prices.push(price),
            _ => plans.push(PlanView {
                product_id: row.product_id,
                name: row.name,
                description: row.description,
                features: row.features.0,
                highlighted: row.highlighted,
                prices: vec![price],
            }),
        }
    }
    Ok(plans)
}

#[derive(sqlx::FromRow)]
struct LicensedRow {
    product_id: String,
    name: String,
    description: Option<String>,
    features: Json<Vec<String>>,
    price_id: String,
    unit_amount: i64,
    currency: String,
    max_activations: Option<i32>,
}

/// Licensed products offered here with their active one-time prices, in display order.
pub async fn licensed_products(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<LicensedProductView>> {
    let rows: Vec<LicensedRow> = sqlx::query_as(
        "select p.id as product_id, p.name, p.description, p.features, pr.id as price_id, pr.unit_amount,
                pr.currency, p.max_activations
         from products p join prices pr on pr.product_id = p.id
         where p.active and p.offered and p.license is not null
           and pr.active and pr.kind = 'one_time' and pr.unit_amount is not null
         order by p.sort_order, p.name, p.id, pr.unit_amount",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LicensedProductView {
            product_id: r.product_id,
            name: r.name,
            description: r.description,
            features: r.features.0,
            price_id: r.price_id,
            unit_amount: r.unit_amount,
            currency: r.currency,
            max_activations: r
                .max_activations
                .unwrap_or(crate::licenses::DEFAULT_MAX_ACTIVATIONS),
        })
        .collect())
}
