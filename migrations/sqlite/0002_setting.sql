-- Values the provider generates once and every node shares (the admin
-- console client's secret): sealed with the key-encryption key when one is set.
create table setting (
    name text primary key,
    value text not null,
    encrypted integer not null,
    created_at integer not null
);
