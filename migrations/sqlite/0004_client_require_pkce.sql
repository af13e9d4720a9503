-- Confidential clients may be required to use PKCE (S256) too (RFC 9700
-- recommends it for all clients); public clients always are.
alter table client add column require_pkce integer not null default 0;
