-- In sandbox mode each customer lives on a test clock made for their user. The clock is
-- recorded before the customer is created, so a second attempt (another click after a
-- failure) reuses it: its creation cannot repeat with the same idempotency key, because
-- its frozen time differs on every attempt, and the customer's key must see the same clock.
alter table users add column sandbox_test_clock text;
