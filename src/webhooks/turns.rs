//! One read of Stripe's current copy of an object at a time, per object, in this process.
//!
//! Stripe sends the events about one object together: an invoice's `invoice.finalized`,
//! `invoice.paid` and `invoice.payment_succeeded` in the same second, a subscription's
//! `customer.subscription.updated` beside them. Their snapshots tie on time, so each one asks
//! Stripe for the object as it is now, and writes that only while the row stays as it was
//! before the read. Read side by side, the first write makes every other read stale: each
//! reads again, and the last of a burst of five could run out of attempts and answer 500
//! (Stripe retries it later, with backoff). Taking turns, each reads after the last one
//! wrote, and its read stands. Only reads wait, never a database transaction: a turn is
//! taken with no transaction open, and a task holds at most one at a time, so turns cannot
//! deadlock. Instances of the app do not share turns; between them the attempts still bound
//! the rereads.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
};
use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

/// An object by its table and id.
type Object = (&'static str, String);

/// The turns of the objects being read now.
#[derive(Clone, Default)]
pub struct Turns(Arc<Mutex<HashMap<Object, Weak<TurnLock<()>>>>>);

/// Held while its object is read from Stripe and the event applied with what was read.
pub struct Turn {
    _held: OwnedMutexGuard<()>,
}

impl Turns {
    /// Waits for the turn of the object `id` of `table`.
    pub async fn take(&self, table: &'static str, id: &str) -> Turn {
        let lock = {
            let mut objects = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            // Turns nobody holds or waits for go: the map is no larger than what is in flight.
            objects.retain(|_, lock| lock.strong_count() > 0);
            let key = (table, id.to_owned());
            match objects.get(&key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(TurnLock::new(()));
                    objects.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        Turn {
            _held: lock.lock_owned().await,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_turn_per_object_at_a_time_and_only_objects_in_flight_kept() {
        let turns = Turns::default();
        let first = turns.take("invoices", "in_1").await;
        // Another object's turn is free.
        let other = tokio::time::timeout(Duration::from_millis(50), turns.take("invoices", "in_2"))
            .await
            .expect("another object does not wait");
        // The same object's waits until the first is given back.
        let waiting = tokio::spawn({
            let turns = turns.clone();
            async move { turns.take("invoices", "in_1").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the same object waits its turn");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("its turn comes once the first is given back")
            .unwrap();
        drop((second, other));
        let only = turns.take("subscriptions", "sub_1").await;
        assert_eq!(
            turns.len(),
            1,
            "objects no one reads any more are forgotten"
        );
        drop(only);
    }
}
