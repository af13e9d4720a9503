-- The durable state of the identity provider. Timestamps are timestamptz in UTC;
-- lists (redirect URIs, grants, scopes, amr) are jsonb arrays; ids are text
-- (UUIDs, or the client id an operator chose), identical to the SQLite schema.

-- "user" is reserved in SQL: the table is user_account, its key keeps the
-- short name user_id that every other table uses.
create table user_account (
    user_id text primary key,
    email text not null,
    -- lowercase of email: uniqueness and lookups are case-insensitive
    email_key text not null,
    name text not null default '',
    email_verified boolean not null default false,
    -- argon2id PHC string; null when the account has no password yet
    password_hash text,
    disabled boolean not null default false,
    locked_until timestamptz,
    is_admin boolean not null default false,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    constraint user_account_email_key_unique unique (email_key)
);

create table client (
    client_id text primary key,
    name text not null,
    -- SHA-256 hex of a 256-bit generated secret; null for public clients
    secret_hash text,
    kind text not null check (kind in ('confidential', 'public')),
    redirect_uris jsonb not null,
    post_logout_redirect_uris jsonb not null,
    first_party boolean not null default false,
    theme text,
    grant_types jsonb not null,
    scopes jsonb not null,
    id_token_alg text not null default 'RS256' check (id_token_alg in ('RS256', 'ES256', 'EdDSA')),
    require_mfa boolean not null default false,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table consent (
    user_id text not null references user_account (user_id) on delete cascade,
    client_id text not null references client (client_id) on delete cascade,
    scopes jsonb not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    primary key (user_id, client_id)
);

create table refresh_token (
    refresh_token_id text primary key,
    -- SHA-256 hex of the opaque token handed to the client
    token_hash text not null,
    -- every rotation stays in the family; reuse of a rotated token revokes it whole
    family_id text not null,
    user_id text not null references user_account (user_id) on delete cascade,
    client_id text not null references client (client_id) on delete cascade,
    scopes jsonb not null,
    auth_time timestamptz not null,
    amr jsonb not null,
    acr text,
    created_at timestamptz not null,
    -- sliding lifetime of this token
    expires_at timestamptz not null,
    -- absolute lifetime of the family
    family_expires_at timestamptz not null,
    rotated_at timestamptz,
    revoked_at timestamptz,
    constraint refresh_token_hash_unique unique (token_hash)
);
create index refresh_token_family_idx on refresh_token (family_id);
create index refresh_token_user_idx on refresh_token (user_id);

create table password_reset_token (
    token_hash text primary key,
    user_id text not null references user_account (user_id) on delete cascade,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    used_at timestamptz
);
create index password_reset_token_user_idx on password_reset_token (user_id);

create table email_verification_token (
    token_hash text primary key,
    user_id text not null references user_account (user_id) on delete cascade,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    used_at timestamptz
);
create index email_verification_token_user_idx on email_verification_token (user_id);

create table totp_credential (
    user_id text primary key references user_account (user_id) on delete cascade,
    -- base32 secret, or its AEAD envelope when a key-encryption key is set
    secret text not null,
    secret_encrypted boolean not null default false,
    digits integer not null default 6,
    period_secs integer not null default 30,
    -- null until the user proved the app works by entering a code
    confirmed_at timestamptz,
    -- highest TOTP time step accepted: a step not above it is a replay
    last_used_step bigint,
    created_at timestamptz not null
);

create table recovery_code (
    recovery_code_id text primary key,
    user_id text not null references user_account (user_id) on delete cascade,
    code_hash text not null,
    used_at timestamptz,
    created_at timestamptz not null
);
create index recovery_code_user_idx on recovery_code (user_id);

create table signing_key (
    -- the JWK "kid"
    signing_key_id text primary key,
    alg text not null check (alg in ('RS256', 'ES256', 'EdDSA')),
    -- PKCS#8 PEM, or its AEAD envelope when a key-encryption key is set
    private_key text not null,
    private_key_encrypted boolean not null default false,
    public_jwk jsonb not null,
    created_at timestamptz not null,
    -- published in JWKS from created_at; signs from activates_at
    activates_at timestamptz not null,
    -- stops signing
    retires_at timestamptz,
    -- leaves JWKS once every token it signed has expired
    expires_at timestamptz
);

create table audit_event (
    audit_event_id bigint generated always as identity primary key,
    occurred_at timestamptz not null,
    kind text not null,
    -- not a foreign key: the trail outlives a deleted account
    user_id text,
    actor text,
    client_id text,
    ip text,
    user_agent text,
    detail jsonb not null default '{}'
);
create index audit_event_user_idx on audit_event (user_id, occurred_at);
create index audit_event_time_idx on audit_event (occurred_at);

create table mail_outbox (
    mail_outbox_id text primary key,
    recipient text not null,
    subject text not null,
    body_text text not null,
    body_html text,
    status text not null check (status in ('pending', 'sent', 'failed')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null,
    -- a worker's claim; another node skips the row until it passes
    claimed_until timestamptz,
    last_error text,
    created_at timestamptz not null,
    sent_at timestamptz
);
create index mail_outbox_due_idx on mail_outbox (status, next_attempt_at);
