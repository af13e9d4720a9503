-- The claims the authorization request asked for by name (OpenID Connect
-- Core 5.5, the `claims` parameter), as {"id_token": [...], "userinfo":
-- [...]}: every token of the family releases them. Null: none asked.
alter table refresh_token add column claims jsonb;
