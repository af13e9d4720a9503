-- SQLite twin of migrations/postgres/0007. The admin user search matches the
-- start of the email address or of the name as a range; SQLite's default
-- collation compares code points, so the unique index on email_key already
-- serves the email range and the name needs its own index.
create index user_account_name_prefix_idx on user_account (lower(name));

-- One user's audit page, newest first, read backwards from the cursor.
create index audit_event_user_id_idx on audit_event (user_id, audit_event_id);
drop index audit_event_user_idx;
