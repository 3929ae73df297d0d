//! Persistence: every object is stored as the JSON Stripe would return, so what the API
//! answers and what events carry are the same bytes. Events are recorded, and their
//! deliveries queued, in the same transaction as the change they describe.

use crate::{
    http::{Account, Page, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    API_VERSION,
};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

fn kind_of(obj: &Value) -> &str {
    obj["object"].as_str().unwrap_or_default()
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
    .bind(kind_of(obj))
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
    kind: Kind,
    id: &str,
) -> Result<Value, StripeError> {
    let obj = get_even_deleted(conn, account, kind, id).await?;
    if obj.get("deleted").is_some() {
        return Err(StripeError::no_such(kind.object(), id));
    }
    Ok(obj)
}

/// Like [`get`], but a deleted customer's stub (`{"id", "object", "deleted": true}`) is
/// returned too: Stripe keeps deleted customers retrievable.
pub async fn get_even_deleted(
    conn: &mut PgConnection,
    account: &Account,
    kind: Kind,
    id: &str,
) -> Result<Value, StripeError> {
    sqlx::query_scalar::<_, Value>(
        "select data from stripe_sandbox.objects where account = $1 and id = $2 and object = $3 for update",
    )
    .bind(&account.0)
    .bind(id)
    .bind(kind.object())
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StripeError::no_such(kind.object(), id))
}

/// An object found by its id alone, with the account it belongs to: the hosted pages have
/// no API key, only the unguessable id in their URL.
pub async fn find_by_id(
    db: &PgPool,
    kind: Kind,
    id: &str,
) -> Result<Option<(Account, Value)>, StripeError> {
    let row: Option<(String, Value)> = sqlx::query_as(
        "select account, data from stripe_sandbox.objects where object = $1 and id = $2",
    )
    .bind(kind.object())
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(a, d)| (Account(a), d)))
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

/// Which objects a list returns: JSON containment (`{"active": true}`), and optionally a
/// top-level `field` that must be one of `values`.
#[derive(Debug, Default)]
pub struct Filter {
    pub contains: Value,
    pub any_of: Option<(&'static str, Vec<String>)>,
}

impl Filter {
    pub fn containing(contains: Value) -> Self {
        Self {
            contains,
            any_of: None,
        }
    }
}

/// A page of objects, newest first.
pub async fn list(
    db: &PgPool,
    account: &Account,
    kind: Kind,
    url: &str,
    page: &Page,
    filter: Filter,
) -> Result<Value, StripeError> {
    let (field, values) = filter
        .any_of
        .map(|(f, v)| (Some(f), v))
        .unwrap_or((None, Vec::new()));
    let contains = if filter.contains.is_null() {
        json!({})
    } else {
        filter.contains
    };
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
    .bind(kind.object())
    .bind(contains)
    .bind(field)
    .bind(&values)
    .bind(page.cursor())
    .bind(page.reversed())
    .bind(page.limit + 1)
    .fetch_all(db)
    .await?;
    Ok(page.list(rows, url))
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
    let mut shown = present(object.clone());
    omit_includables(&mut shown, &[]);
    let mut data = json!({ "object": shown });
    if let Some(prev) = previous_attributes {
        data["previous_attributes"] = prev;
    }
    let event = json!({
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
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

/// Calls `f` on every object inside `value` (the value itself, nested objects, the items of
/// lists and arrays) with its `expand[]` path: `""`, `"latest_invoice."`, `"data."`,
/// `"items.data.price."`. Metadata is the merchant's own text and never looked into.
fn visit_objects(value: &mut Value, path: &str, f: &mut impl FnMut(&mut Value, &str)) {
    match value {
        Value::Object(_) => {
            f(value, path);
            if let Some(map) = value.as_object_mut() {
                for (key, child) in map.iter_mut().filter(|(k, _)| *k != "metadata") {
                    visit_objects(child, &format!("{path}{key}."), f);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                visit_objects(item, path, f);
            }
        }
        _ => {}
    }
}

/// Strips what never leaves the sandbox (see [`Kind::private_fields`]), on the object and
/// on every object inside it (an expanded subscription's notes included).
pub fn present(mut obj: Value) -> Value {
    visit_objects(&mut obj, "", &mut |o, _| {
        if let Some(kind) = Kind::from_object(kind_of(o)) {
            if let Some(map) = o.as_object_mut() {
                for field in kind.private_fields() {
                    map.remove(*field);
                }
            }
        }
    });
    obj
}

/// Stripe leaves includable fields (an invoice's `payments`, a Checkout Session's
/// `line_items`, a price's `tiers`) out of responses and events unless `expand[]` names
/// them by their full path, wherever the object sits: `data.payments`,
/// `latest_invoice.payments`, `items.data.price.tiers`.
pub fn omit_includables(obj: &mut Value, expand: &[String]) {
    let wants = |path: &str| {
        expand
            .iter()
            .any(|e| e == path || e.starts_with(&format!("{path}.")))
    };
    visit_objects(obj, "", &mut |o, path| {
        let Some(kind) = Kind::from_object(kind_of(o)) else {
            return;
        };
        for field in kind.includable_fields() {
            if !wants(&format!("{path}{field}")) {
                if let Some(map) = o.as_object_mut() {
                    map.remove(*field);
                }
            }
        }
    });
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
    // `latest_invoice.payments` expands the invoice first, then looks inside it.
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
    if rest.is_empty() || !field.is_object() {
        return Ok(());
    }
    Box::pin(expand_path(conn, account, field, rest)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_attributes_hold_old_values_of_changed_fields() {
        let before = json!({ "name": "A", "active": true, "metadata": {} });
        let after = json!({ "name": "B", "active": true, "metadata": { "x": "1" } });
        assert_eq!(
            previous_attributes(&before, &after),
            json!({ "name": "A", "metadata": {} })
        );
    }

    #[test]
    fn private_fields_and_includables_never_leave_unasked() {
        let endpoint = present(json!({ "object": "webhook_endpoint", "secret": "whsec_x" }));
        assert!(endpoint.get("secret").is_none());
        let mut list =
            json!({ "object": "list", "data": [{ "object": "invoice", "payments": {} }] });
        omit_includables(&mut list, &[]);
        assert!(list["data"][0].get("payments").is_none());
        let mut list =
            json!({ "object": "list", "data": [{ "object": "invoice", "payments": {} }] });
        omit_includables(&mut list, &["data.payments".to_owned()]);
        assert!(list["data"][0].get("payments").is_some());
        // An expanded object keeps its own includables out too, and its private notes.
        let mut sub = json!({ "object": "subscription", "latest_invoice":
            { "object": "invoice", "payments": {}, "metadata": { "object": "invoice", "payments": "kept" } } });
        omit_includables(&mut sub, &[]);
        assert!(sub["latest_invoice"].get("payments").is_none());
        assert_eq!(sub["latest_invoice"]["metadata"]["payments"], "kept");
        let mut sub = json!({ "object": "subscription", "latest_invoice": { "object": "invoice", "payments": {} } });
        omit_includables(&mut sub, &["latest_invoice.payments".to_owned()]);
        assert!(sub["latest_invoice"].get("payments").is_some());
        let session = present(json!({ "object": "checkout.session", "sandbox": {},
            "subscription": { "object": "subscription", "sandbox": { "coupon": {} } } }));
        assert!(
            session.get("sandbox").is_none() && session["subscription"].get("sandbox").is_none()
        );
    }
}
