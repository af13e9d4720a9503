-- The sender of a message when it is not mail.from: the portal's own
-- (theme.toml mail_from), as "Name <address>".
alter table mail_outbox add column sender text;
