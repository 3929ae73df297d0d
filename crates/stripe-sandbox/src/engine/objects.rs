//! What every resource shares: create, retrieve, update with `previous_attributes`, and
//! delete, each with the event Stripe sends for it, in one transaction.

use crate::{
    http::{Account, RequestInfo, StripeError},
    ids::now,
    kind::{Action, Kind},
    store,
};
use serde_json::{json, Value};
use sqlx::PgPool;

/// Stores a new object and its `<object>.created` event together.
pub async fn create(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    obj: Value,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    store::insert(&mut tx, account, &obj).await?;
    let event = obj["object"]
        .as_str()
        .and_then(Kind::from_object)
        .and_then(|k| k.event(Action::Created));
    if let Some(event) = event {
        store::emit(&mut tx, account, &event, &obj, None, req).await?;
    }
    tx.commit().await?;
    Ok(obj)
}

pub async fn retrieve(
    db: &PgPool,
    account: &Account,
    kind: Kind,
    id: &str,
) -> Result<Value, StripeError> {
    let mut conn = db.acquire().await?;
    store::get_even_deleted(&mut conn, account, kind, id).await
}

/// Applies `change` to the stored object under a row lock; when anything changed, saves it
/// and emits `<object>.updated` with the old values in `previous_attributes`.
pub async fn update(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    kind: Kind,
    id: &str,
    change: impl FnOnce(&mut Value) -> Result<(), StripeError>,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    let before = store::get(&mut tx, account, kind, id).await?;
    let mut after = before.clone();
    change(&mut after)?;
    if after != before {
        if after.get("updated").is_some() {
            after["updated"] = json!(now());
        }
        match kind.event(Action::Updated) {
            Some(event) => {
                store::record_change(&mut tx, account, &event, &before, &after, req).await?
            }
            None => store::save(&mut tx, account, &after).await?,
        }
    }
    tx.commit().await?;
    Ok(after)
}

/// Deletes an object. Customers leave a stub behind that retrieve still returns, as on
/// Stripe; other objects are gone. Returns the deletion's answer (`{"deleted": true}`).
pub async fn delete(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    kind: Kind,
    id: &str,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    let obj = store::get(&mut tx, account, kind, id).await?;
    let stub = json!({ "id": id, "object": kind.object(), "deleted": true });
    if kind.leaves_a_stub() {
        store::save(&mut tx, account, &stub).await?;
    } else {
        store::delete(&mut tx, account, id).await?;
    }
    if let Some(event) = kind.event(Action::Deleted) {
        store::emit(&mut tx, account, &event, &obj, None, req).await?;
    }
    tx.commit().await?;
    Ok(stub)
}
