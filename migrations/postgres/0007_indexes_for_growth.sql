-- Indexes for tables that grow for years (measured with `scripts/bench
-- --scale`: a million users, ten million audit events).
--
-- The admin user search matches the start of the email address or of the
-- name: a range in code-point order (collate "C"), which these serve
-- whatever the database's collation. The unique index on email_key follows
-- the database's collation, where a prefix is not one range.
create index user_account_email_prefix_idx on user_account (email_key collate "C");
create index user_account_name_prefix_idx on user_account ((lower(name)) collate "C");

-- One user's audit page is ordered by audit_event_id: this index is read
-- backwards from the cursor and stops at the page size. The one it replaces,
-- (user_id, occurred_at), made the page read and sort every event of the user.
create index audit_event_user_id_idx on audit_event (user_id, audit_event_id);
drop index audit_event_user_idx;
