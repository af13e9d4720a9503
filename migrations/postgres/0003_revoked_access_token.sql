-- Access tokens revoked before their expiry. The ephemeral store answers
-- the per-request check; these rows bring revocations back after it lost
-- its data (oidc::revocation). Rows of expired tokens are pruned.
create table revoked_access_token (
    jti text primary key,
    expires_at timestamptz not null,
    created_at timestamptz not null
);

create index revoked_access_token_expires_idx on revoked_access_token (expires_at);
