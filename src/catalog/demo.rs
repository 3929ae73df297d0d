//! The demo catalog for sandbox mode, so a fresh checkout of the app never shows an empty
//! pricing page. With a real Stripe key the catalog comes from Stripe alone.

use sqlx::PgPool;

struct DemoPlan {
    key: &'static str,
    name: &'static str,
    description: &'static str,
    features: &'static [&'static str],
    highlighted: bool,
    monthly: i64,
    yearly: i64,
}

const PLANS: &[DemoPlan] = &[
    DemoPlan {
        key: "starter",
        name: "Starter",
        description: "For side projects and trying things out.",
        features: &["1 project", "1,000 API calls / month", "Email support"],
        highlighted: false,
        monthly: 900,
        yearly: 9000,
    },
    DemoPlan {
        key: "pro",
        name: "Pro",
        description: "For professionals shipping real products.",
        features: &[
            "10 projects",
            "50,000 API calls / month",
            "Priority email support",
            "Usage analytics",
        ],
        highlighted: true,
        monthly: 2900,
        yearly: 29000,
    },
    DemoPlan {
        key: "team",
        name: "Team",
        description: "For teams that need room to grow.",
        features: &[
            "Unlimited projects",
            "500,000 API calls / month",
            "Shared workspaces",
            "Phone support",
        ],
        highlighted: false,
        monthly: 9900,
        yearly: 99000,
    },
];

pub async fn seed_demo_catalog_if_empty(db: &PgPool) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    // Two instances starting together must not both seed.
    sqlx::query("lock table products in exclusive mode")
        .execute(&mut *tx)
        .await?;
    let count: i64 = sqlx::query_scalar("select count(*) from products")
        .fetch_one(&mut *tx)
        .await?;
    if count > 0 {
        return tx.commit().await;
    }
    for (order, plan) in PLANS.iter().enumerate() {
        let product_id = format!("prod_demo_{}", plan.key);
        sqlx::query(
            "insert into products (id, name, description, features, highlighted, sort_order)
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&product_id)
        .bind(plan.name)
        .bind(plan.description)
        .bind(sqlx::types::Json(plan.features))
        .bind(plan.highlighted)
        .bind(order as i32)
        .execute(&mut *tx)
        .await?;
        for (interval, amount) in [("month", plan.monthly), ("year", plan.yearly)] {
            let lookup_key = format!("{}_{}ly", plan.key, interval);
            sqlx::query(
                "insert into prices (id, product_id, currency, unit_amount, kind, recurring_interval,
                                     recurring_interval_count, lookup_key)
                 values ($1, $2, 'usd', $3, 'recurring', $4, 1, $5)",
            )
            .bind(format!("price_demo_{lookup_key}"))
            .bind(&product_id)
            .bind(amount)
            .bind(interval)
            .bind(&lookup_key)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    tracing::info!("seeded the demo catalog (sandbox mode)");
    Ok(())
}
