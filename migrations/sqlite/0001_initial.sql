-- SQLite twin of migrations/postgres: same tables and columns. Timestamps are
-- integer microseconds since the Unix epoch (exact ordering, unlike RFC 3339
-- text with optional fractions); lists are JSON text; booleans are 0/1.

-- "user" is reserved in SQL: the table is user_account, its key keeps the
-- short name user_id that every other table uses.
create table user_account (
    user_id text primary key,
    email text not null,
    -- lowercase of email: uniqueness and lookups are case-insensitive
    email_key text not null,
    name text not null default '',
    email_verified integer not null default 0,
    -- argon2id PHC string; null when the account has no password yet
    password_hash text,
    disabled integer not null default 0,
    locked_until integer,
    is_admin integer not null default 0,
    created_at integer not null,
    updated_at integer not null,
    constraint user_account_email_key_unique unique (email_key)
);

create table client (
    client_id text primary key,
    name text not null,
    -- SHA-256 hex of a 256-bit generated secret; null for public clients
    secret_hash text,
    kind text not null check (kind in ('confidential', 'public')),
    redirect_uris text not null,
    post_logout_redirect_uris text not null,
    first_party integer not null default 0,
    theme text,
    grant_types text not null,
    scopes text not null,
    id_token_alg text not null default 'RS256' check (id_token_alg in ('RS256', 'ES256', 'EdDSA')),
    require_mfa integer not null default 0,
    created_at integer not null,
    updated_at integer not null
);

create table consent (
    user_id text not null references user_account (user_id) on delete cascade,
    client_id text not null references client (client_id) on delete cascade,
    scopes text not null,
    created_at integer not null,
    updated_at integer not null,
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
    scopes text not null,
    auth_time integer not null,
    amr text not null,
    acr text,
    created_at integer not null,
    -- sliding lifetime of this token
    expires_at integer not null,
    -- absolute lifetime of the family
    family_expires_at integer not null,
    rotated_at integer,
    revoked_at integer,
    constraint refresh_token_hash_unique unique (token_hash)
);
create index refresh_token_family_idx on refresh_token (family_id);
create index refresh_token_user_idx on refresh_token (user_id);

create table password_reset_token (
    token_hash text primary key,
    user_id text not null references user_account (user_id) on delete cascade,
    created_at integer not null,
    expires_at integer not null,
    used_at integer
);
create index password_reset_token_user_idx on password_reset_token (user_id);

create table email_verification_token (
    token_hash text primary key,
    user_id text not null references user_account (user_id) on delete cascade,
    created_at integer not null,
    expires_at integer not null,
    used_at integer
);
create index email_verification_token_user_idx on email_verification_token (user_id);

create table totp_credential (
    user_id text primary key references user_account (user_id) on delete cascade,
    -- base32 secret, or its AEAD envelope when a key-encryption key is set
    secret text not null,
    secret_encrypted integer not null default 0,
    digits integer not null default 6,
    period_secs integer not null default 30,
    -- null until the user proved the app works by entering a code
    confirmed_at integer,
    -- highest TOTP time step accepted: a step not above it is a replay
    last_used_step integer,
    created_at integer not null
);

create table recovery_code (
    recovery_code_id text primary key,
    user_id text not null references user_account (user_id) on delete cascade,
    code_hash text not null,
    used_at integer,
    created_at integer not null
);
create index recovery_code_user_idx on recovery_code (user_id);

create table signing_key (
    -- the JWK "kid"
    signing_key_id text primary key,
    alg text not null check (alg in ('RS256', 'ES256', 'EdDSA')),
    -- PKCS#8 PEM, or its AEAD envelope when a key-encryption key is set
    private_key text not null,
    private_key_encrypted integer not null default 0,
    public_jwk text not null,
    created_at integer not null,
    -- published in JWKS from created_at; signs from activates_at
    activates_at integer not null,
    -- stops signing
    retires_at integer,
    -- leaves JWKS once every token it signed has expired
    expires_at integer
);

create table audit_event (
    audit_event_id integer primary key autoincrement,
    occurred_at integer not null,
    kind text not null,
    -- not a foreign key: the trail outlives a deleted account
    user_id text,
    actor text,
    client_id text,
    ip text,
    user_agent text,
    detail text not null default '{}'
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
    next_attempt_at integer not null,
    -- a worker's claim; another node skips the row until it passes
    claimed_until integer,
    last_error text,
    created_at integer not null,
    sent_at integer
);
create index mail_outbox_due_idx on mail_outbox (status, next_attempt_at);
