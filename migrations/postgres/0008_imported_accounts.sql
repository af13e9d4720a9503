-- Accounts brought over from a portal's own user table (idp user import,
-- POST /admin/api/users/import; docs/migration.md).
--
-- user_account.password_hash may now hold a hash written by the portal's
-- software (bcrypt, phpass, PBKDF2, ...; credentials::legacy) until the
-- customer's first correct sign-in replaces it with argon2id.

-- The customer's key in each portal it came from: its invoices and tickets
-- are keyed by it. One account per address across the deployment's portals,
-- so an account may carry one id per portal. `portal` is a client id or a
-- theme name, as the import record said.
create table user_external_id (
    user_id text not null references user_account (user_id) on delete cascade,
    portal text not null,
    external_id text not null,
    created_at timestamptz not null,
    primary key (user_id, portal),
    constraint user_external_id_portal_unique unique (portal, external_id)
);

-- The claim in which a client receives the account's external id for its
-- portal (the client id, else the client's theme); null: not sent.
alter table client add column external_id_claim text;
