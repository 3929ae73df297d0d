-- The metered action inserts a usage row per report. Its foreign key to `users` made every
-- insert take a KEY SHARE lock on the user's row; a user's concurrent reports (a script and
-- the browser, or 16 API callers) turned that into a multixact each time: the largest
-- single cost of the action, measured at 20-35% of its rate (BENCHMARKS.md). The statement
-- itself guarantees what the key checked: it inserts only for the user's customer link,
-- which references `users` (and goes with it). Users are never deleted by the app, and a
-- usage row, once reported to Stripe, is a billing record to keep whatever happens to the
-- account.
alter table usage_events drop constraint usage_events_user_id_fkey;
