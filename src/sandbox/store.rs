//! Persistence: every object is stored as the JSON Stripe would return, so what the API
//! answers and what events carry are the same bytes.

use super::http::{list_object, Account, Page, StripeError};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

/// Stripe-style id: a prefix and 24 random base62 characters. A v4 UUID has 122 random
/// bits (about 20 base62 digits), so each half of the id comes from its own UUID.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = String::with_capacity(prefix.len() + 25);
    s.push_str(prefix);
    s.push('_');
    for _ in 0..2 {
        let mut n = uuid::Uuid::new_v4().as_u128();
        for _ in 0..12 {
            s.push(ALPHABET[(n % 62) as usize] as char);
            n /= 62;
        }
    }
    s
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub async fn insert(
    conn: &mut PgConnection,
    account: &Account,
    obj: &Value,
) -> Result<(), StripeError> {
    let inserted = sqlx::query(
        "insert into stripe_sandbox.objects (account, id, object, created, data) values ($1, $2, $3, $4, $5)
         on conflict (account, id) do nothing",
    )
    .bind(&account.0)
    .bind(obj["id"].as_str().unwrap_or_default())
    .bind(obj["object"].as_str().unwrap_or_default())
    .bind(obj["created"].as_i64().unwrap_or_else(now))
    .bind(obj)
    .execute(conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StripeError {
            code: Some("resource_already_exists"),
            ..StripeError::invalid("id", "Object already exists.")
        });
    }
    Ok(())
}

/// A live object of the given kind, locked for update when `conn` is in a transaction.
pub async fn get(
    conn: &mut PgConnection,
    account: &Account,
    object: &str,
    id: &str,
) -> Result<Value, StripeError> {
    let obj = get_even_deleted(conn, account, object, id).await?;
    if obj.get("deleted").is_some() {
        return Err(StripeError::no_such(object, id));
    }
    Ok(obj)
}

/// Like [`get`], but a deleted customer's stub (`{"id", "object", "deleted": true}`) is
/// returned too: Stripe keeps deleted customers retrievable.
pub async fn get_even_deleted(
    conn: &mut PgConnection,
    account: &Account,
    object: &str,
    id: &str,
) -> Result<Value, StripeError> {
    sqlx::query_scalar::<_, Value>(
        "select data from stripe_sandbox.objects where account = $1 and id = $2 and object = $3 for update",
    )
    .bind(&account.0)
    .bind(id)
    .bind(object)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StripeError::no_such(object, id))
}

pub async fn save(
    conn: &mut PgConnection,
    account: &Account,
    obj: &Value,
) -> Result<(), StripeError> {
    sqlx::query("update stripe_sandbox.objects set data = $3 where account = $1 and id = $2")
        .bind(&account.0)
        .bind(obj["id"].as_str().unwrap_or_default())
        .bind(obj)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(
    conn: &mut PgConnection,
    account: &Account,
    id: &str,
) -> Result<(), StripeError> {
    sqlx::query("delete from stripe_sandbox.objects where account = $1 and id = $2")
        .bind(&account.0)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A page of objects, newest first. `contains` filters with JSON containment
/// (`{"active": true}`); `any_of` keeps objects whose top-level `field` is one of `values`.
pub async fn list(
    db: &PgPool,
    account: &Account,
    object: &str,
    url: &str,
    page: &Page,
    contains: Value,
    any_of: Option<(&str, Vec<String>)>,
) -> Result<Value, StripeError> {
    let (field, values) = any_of
        .map(|(f, v)| (Some(f.to_owned()), v))
        .unwrap_or((None, Vec::new()));
    let reversed = page.ending_before.is_some() && page.starting_after.is_none();
    let cursor = page
        .starting_after
        .clone()
        .or_else(|| page.ending_before.clone());
    let rows: Vec<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects o
         where account = $1 and object = $2 and data @> $3 and not data ? 'deleted'
           and ($4::text is null or data ->> $4 = any($5))
           and ($6::text is null or seq < (select seq from stripe_sandbox.objects where account = $1 and id = $6) or $7)
           and ($6::text is null or seq > (select seq from stripe_sandbox.objects where account = $1 and id = $6) or not $7)
         order by case when $7 then seq end asc, seq desc
         limit $8",
    )
    .bind(&account.0)
    .bind(object)
    .bind(contains)
    .bind(field)
    .bind(&values)
    .bind(cursor)
    .bind(reversed)
    .bind(page.limit + 1)
    .fetch_all(db)
    .await?;
    Ok(page_of(rows, page, reversed, url))
}

pub fn page_of(mut rows: Vec<Value>, page: &Page, reversed: bool, url: &str) -> Value {
    let has_more = rows.len() as i64 > page.limit;
    rows.truncate(page.limit as usize);
    if reversed {
        rows.reverse();
    }
    list_object(url, rows, has_more)
}

/// What an event records about the request that caused it.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

/// Records an event and queues its delivery to every enabled endpoint that wants it, in the
/// caller's transaction: the change and its event commit together or not at all.
pub async fn emit(
    conn: &mut PgConnection,
    account: &Account,
    kind: &str,
    object: &Value,
    previous_attributes: Option<Value>,
    request: &RequestInfo,
) -> Result<Value, StripeError> {
    let endpoints: Vec<String> = sqlx::query_scalar(
        "select id from stripe_sandbox.objects
         where account = $1 and object = 'webhook_endpoint' and data ->> 'status' = 'enabled'
           and (data -> 'enabled_events' ? '*' or data -> 'enabled_events' ? $2)
         order by seq",
    )
    .bind(&account.0)
    .bind(kind)
    .fetch_all(&mut *conn)
    .await?;
    // Events carry what the API would show, never the sandbox's own notes.
    let mut shown = super::resources::present(object.clone());
    super::resources::omit_includables(&mut shown, &[]);
    let mut data = json!({ "object": shown });
    if let Some(prev) = previous_attributes {
        data["previous_attributes"] = prev;
    }
    let event = json!({
        "id": new_id("evt"),
        "object": "event",
        "api_version": super::API_VERSION,
        "created": now(),
        "data": data,
        "livemode": false,
        "pending_webhooks": endpoints.len(),
        "request": { "id": request.id, "idempotency_key": request.idempotency_key },
        "type": kind,
    });
    sqlx::query("insert into stripe_sandbox.events (account, id, type, created, data) values ($1, $2, $3, $4, $5)")
        .bind(&account.0)
        .bind(event["id"].as_str())
        .bind(kind)
        .bind(event["created"].as_i64())
        .bind(&event)
        .execute(&mut *conn)
        .await?;
    for endpoint in endpoints {
        sqlx::query("insert into stripe_sandbox.deliveries (account, event_id, endpoint_id) values ($1, $2, $3)")
            .bind(&account.0)
            .bind(event["id"].as_str())
            .bind(endpoint)
            .execute(&mut *conn)
            .await?;
    }
    Ok(event)
}

/// Saves `after` and emits `kind` with the attributes that changed since `before`.
pub async fn record_change(
    conn: &mut PgConnection,
    account: &Account,
    kind: &str,
    before: &Value,
    after: &Value,
    request: &RequestInfo,
) -> Result<(), StripeError> {
    save(conn, account, after).await?;
    let prev = previous_attributes(before, after);
    emit(conn, account, kind, after, Some(prev), request).await?;
    Ok(())
}

/// The attributes of `before` that differ in `after`, with their old values: Stripe's
/// `data.previous_attributes`.
pub fn previous_attributes(before: &Value, after: &Value) -> Value {
    let mut prev = serde_json::Map::new();
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (k, old) in b {
            if a.get(k) != Some(old) {
                prev.insert(k.clone(), old.clone());
            }
        }
        for k in a.keys() {
            if !b.contains_key(k) {
                prev.insert(k.clone(), Value::Null);
            }
        }
    }
    Value::Object(prev)
}

/// Replaces id strings with the objects they name, for each `expand[]` path
/// (`product`, `data.product`, `default_price`).
pub async fn expand(
    db: &PgPool,
    account: &Account,
    value: &mut Value,
    paths: &[String],
) -> Result<(), StripeError> {
    for path in paths {
        let parts: Vec<&str> = path.split('.').collect();
        let mut conn = db.acquire().await?;
        expand_path(&mut conn, account, value, &parts).await?;
    }
    Ok(())
}

async fn expand_path(
    conn: &mut PgConnection,
    account: &Account,
    value: &mut Value,
    parts: &[&str],
) -> Result<(), StripeError> {
    let Some((head, rest)) = parts.split_first() else {
        return Ok(());
    };
    if *head == "data" {
        if let Some(items) = value.get_mut("data").and_then(Value::as_array_mut) {
            for item in items {
                Box::pin(expand_path(conn, account, item, rest)).await?;
            }
            return Ok(());
        }
    }
    let Some(field) = value.get_mut(*head) else {
        return Err(StripeError::invalid(
            "expand",
            format!("This property cannot be expanded ({head})."),
        ));
    };
    if rest.is_empty() {
        if let Some(id) = field.as_str().map(str::to_owned) {
            let found: Option<Value> = sqlx::query_scalar(
                "select data from stripe_sandbox.objects where account = $1 and id = $2",
            )
            .bind(&account.0)
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(obj) = found {
                *field = obj;
            }
        }
        Ok(())
    } else {
        Box::pin(expand_path(conn, account, field, rest)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_stripe_ids() {
        let id = new_id("cus");
        assert!(id.starts_with("cus_") && id.len() == 28, "{id}");
        assert_ne!(new_id("cus"), new_id("cus"));
        // No low-entropy tail: across many ids the last character varies.
        let tails: std::collections::HashSet<char> = (0..200)
            .map(|_| new_id("x").chars().last().unwrap())
            .collect();
        assert!(tails.len() > 20, "{tails:?}");
    }

    #[test]
    fn previous_attributes_hold_old_values_of_changed_fields() {
        let before = json!({ "name": "A", "active": true, "metadata": {} });
        let after = json!({ "name": "B", "active": true, "metadata": { "x": "1" } });
        assert_eq!(
            previous_attributes(&before, &after),
            json!({ "name": "A", "metadata": {} })
        );
    }
}
