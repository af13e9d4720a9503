-- Indexes for the retention job (idp::retention), which deletes in small
-- batches what has outlived its use: each prune query finds its candidates
-- through one of these instead of reading the whole table. audit_event
-- (occurred_at), revoked_access_token (expires_at) and failed mail
-- (status, next_attempt_at) already have theirs.
create index refresh_token_expires_idx on refresh_token (expires_at);
create index refresh_token_revoked_idx on refresh_token (revoked_at);
create index password_reset_token_expires_idx on password_reset_token (expires_at);
create index password_reset_token_used_idx on password_reset_token (used_at);
create index email_verification_token_expires_idx on email_verification_token (expires_at);
create index email_verification_token_used_idx on email_verification_token (used_at);
create index mail_outbox_sent_idx on mail_outbox (status, sent_at);
