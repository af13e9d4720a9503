-- Fills a migrated, empty PostgreSQL database with years of data for
-- `bash scripts/bench --scale` (docs/benchmarks.md, "Cost as data grows").
-- Run by the script with psql:
--
--   psql -v users=1000000 -v refresh_tokens=5000000 -v audit_events=10000000 -f scripts/bench-scale.sql
--
-- Everything is generated in the server by `insert ... select` over
-- generate_series: no client round trips. The secondary indexes of the three
-- big tables and their unique constraints are dropped first and built again
-- at the end (one sorted build is far cheaper than millions of random
-- inserts); the primary keys stay (ids are generated in order, as UUIDv7
-- ones are), and foreign keys are not checked during the fill
-- (session_replication_role = replica: every reference is generated valid).
-- Then VACUUM ANALYZE: the visibility map and statistics an old database has.
--
-- The data, deterministic (no random()): a run is comparable with the next.
-- - users: user<i>@example<i % 97>.org, a first and last name from short
--   lists, a real-length argon2id PHC string, created over three years;
-- - 20 public clients (scale-client-1..20), the refresh tokens' clients;
-- - refresh tokens: families of four rotations, each family one user's
--   sign-in at one client; the last of each family live, the others rotated;
-- - audit events: one every 9 s over ~3 years (10M), in id order, of six
--   kinds; 95% about a user (spread over all of them), the rest about none.
\set ON_ERROR_STOP on
\timing on
set synchronous_commit = off;
set maintenance_work_mem = '512MB';
set max_parallel_maintenance_workers = 2;
set session_replication_role = replica;

-- Ids as the server makes them: UUIDv7, which sort by creation time. Here
-- the first 48 bits are the row's number instead of a timestamp, the rest
-- from md5: distinct, in creation order, deterministic.
create function pg_temp.v7(kind text, n bigint) returns text language sql immutable as
$$ select (lpad(to_hex(n), 12, '0') || '7' || substr(md5(kind || n), 1, 19))::uuid::text $$;

\echo step: drop secondary indexes and unique constraints
create temp table saved_index as
    select i.indexname, i.indexdef from pg_indexes i
    where i.schemaname = 'public'
      and i.tablename in ('user_account', 'refresh_token', 'audit_event')
      and not exists (select 1 from pg_constraint c where c.conname = i.indexname);
create temp table saved_unique as
    select c.conrelid::regclass::text as tablename, c.conname, pg_get_constraintdef(c.oid) as def
    from pg_constraint c
    where c.contype = 'u'
      and c.conrelid::regclass::text in ('user_account', 'refresh_token', 'audit_event');
do $$
declare r record;
begin
    for r in select indexname from saved_index loop
        execute format('drop index %I', r.indexname);
    end loop;
    for r in select tablename, conname from saved_unique loop
        execute format('alter table %I drop constraint %I', r.tablename, r.conname);
    end loop;
end $$;

\echo step: users
insert into user_account (user_id, email, email_key, name, email_verified, password_hash,
                          created_at, updated_at)
select pg_temp.v7('u', i),
       'user' || i || '@example' || (i % 97) || '.org',
       'user' || i || '@example' || (i % 97) || '.org',
       (array['Ann', 'Bruno', 'Chen', 'Dara', 'Emil', 'Fatima', 'Goran', 'Hana', 'Ivo', 'Jun',
              'Kemal', 'Lea', 'Mateo', 'Nia', 'Omar', 'Petra', 'Quinn', 'Rosa', 'Sven', 'Tala'])[1 + i % 20]
         || ' ' ||
       (array['Smith', 'Garcia', 'Novak', 'Okafor', 'Tanaka', 'Muller', 'Rossi', 'Silva', 'Kim', 'Dubois'])[1 + (i / 20) % 10]
         || ' ' || i,
       true,
       '$argon2id$v=19$m=19456,t=2,p=1$c2NhbGUtYmVuY2gtc2FsdA$' || substr(md5('p' || i) || md5('q' || i), 1, 43),
       now() - make_interval(secs => 94608000.0 * (:users - i) / :users),
       now() - make_interval(secs => 94608000.0 * (:users - i) / :users)
from generate_series(1::bigint, :users) i;

\echo step: clients
insert into client (client_id, name, kind, redirect_uris, post_logout_redirect_uris, grant_types,
                    scopes, created_at, updated_at)
select 'scale-client-' || i, 'Scale client ' || i, 'public', '["http://127.0.0.1/cb"]', '[]',
       '["authorization_code", "refresh_token"]', '["openid", "offline_access"]', now(), now()
from generate_series(1, 20) i;

\echo step: refresh tokens
insert into refresh_token (refresh_token_id, token_hash, family_id, user_id, client_id, scopes,
                           auth_time, amr, created_at, expires_at, family_expires_at, rotated_at)
select pg_temp.v7('r', j),
       encode(sha256(('t' || j)::bytea), 'hex'),
       pg_temp.v7('f', j / 4),
       pg_temp.v7('u', 1 + ((j / 4) * 7919) % :users),
       'scale-client-' || (1 + (j / 4) % 20),
       '["openid", "offline_access"]',
       t, '["pwd"]', t, t + interval '30 days', t + interval '90 days',
       case when j % 4 = 3 then null else t + interval '1 hour' end
from generate_series(0::bigint, :refresh_tokens - 1) j,
     lateral (select now() - make_interval(secs => 7776000.0 * (:refresh_tokens - j) / :refresh_tokens)) as s(t);

\echo step: audit events
insert into audit_event (occurred_at, kind, user_id, client_id, ip, user_agent, detail)
select now() - make_interval(secs => 9.0 * (:audit_events - k)),
       (array['login.succeeded', 'token.issued', 'token.refreshed', 'login.failed', 'logout',
              'token.issued'])[1 + k % 6],
       case when k % 20 = 0 then null else pg_temp.v7('u', 1 + (k * 104729) % :users) end,
       'scale-client-' || (1 + k % 20),
       '10.' || (k % 256) || '.' || ((k / 256) % 256) || '.' || ((k / 65536) % 256),
       'Mozilla/5.0 (X11; Linux x86_64; rv:1' || (k % 40) || '.0) Gecko/20100101 Firefox/1' || (k % 40) || '.0',
       case when k % 6 = 0 then '{"amr": ["pwd"]}'::jsonb else '{}'::jsonb end
from generate_series(1::bigint, :audit_events) k;

\echo step: build the secondary indexes and unique constraints again
do $$
declare r record;
begin
    for r in select indexdef from saved_index loop
        execute r.indexdef;
    end loop;
    for r in select tablename, conname, def from saved_unique loop
        execute format('alter table %I add constraint %I %s', r.tablename, r.conname, r.def);
    end loop;
end $$;
set session_replication_role = origin;

\echo step: vacuum analyze
vacuum analyze user_account;
vacuum analyze refresh_token;
vacuum analyze audit_event;
vacuum analyze client;

\echo step: done
select relname as table, n_live_tup as rows, pg_size_pretty(pg_total_relation_size(relid)) as size_with_indexes
from pg_stat_user_tables
where relname in ('user_account', 'refresh_token', 'audit_event')
order by relname;
select pg_size_pretty(pg_database_size(current_database())) as database_size;
