-- SQLite twin of migrations/postgres/0008: accounts brought over from a
-- portal's own user table; see there.
create table user_external_id (
    user_id text not null references user_account (user_id) on delete cascade,
    portal text not null,
    external_id text not null,
    created_at integer not null,
    primary key (user_id, portal),
    constraint user_external_id_portal_unique unique (portal, external_id)
);

alter table client add column external_id_claim text;
