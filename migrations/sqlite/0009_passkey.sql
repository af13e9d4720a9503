-- Passkeys (WebAuthn credentials, issue 16). Numbered 0009 after 0010 was
-- taken: sqlx applies a missing lower version on an existing database too.
create table passkey (
    passkey_id text primary key,
    user_id text not null references user_account (user_id) on delete cascade,
    -- the owner's own label ("Laptop", "Phone")
    name text not null,
    -- the authenticator's credential id, base64url: one account per credential
    credential_id text not null,
    -- webauthn-rs `Passkey` as JSON: public key, counter, backup flags
    credential text not null,
    created_at integer not null,
    last_used_at integer,
    constraint passkey_credential_id_key unique (credential_id)
);
create index passkey_user_id_idx on passkey (user_id);
