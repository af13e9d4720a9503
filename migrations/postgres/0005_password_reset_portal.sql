-- The portal whose flow asked for a reset link (a client id; null when the
-- request was not part of a pending flow, or came from an administrator).
-- It, not the link's query, sets the password policy of the reset form.
-- No foreign key: a client deleted meanwhile leaves the deployment's rules.
alter table password_reset_token add column client_id text;
