//! Query plans on PostgreSQL: the admin user search by email prefix and one
//! user's audit page must be answered from their indexes (migration 0007),
//! not by reading the table, however large it grows. Checked with `EXPLAIN`
//! on the store's own SQL (`idp::store::queries`), with real statistics
//! (`ANALYZE` after a few thousand rows), so the assertion is about the
//! planner's choice, not only about an index that could serve.
//!
//! Without 0007, the search plan has no `user_account_email_prefix_idx`
//! (a sequential scan, or the whole `email_key` index walked in order with a
//! filter: the database's collation is not code-point order, so a prefix is
//! not a range of it), and the audit page reads every event of the user
//! through (user_id, occurred_at) and sorts them.

use idp::store::queries::{SEARCH_AUDIT_EVENTS, SEARCH_USERS_POSTGRES, prefix_bounds};
use serde_json::Value;
use sqlx::PgPool;

use crate::Backend;

type Args = sqlx::postgres::PgArguments;

/// Every node of a JSON plan, depth first.
fn nodes(plan: &Value, out: &mut Vec<Value>) {
    out.push(plan.clone());
    if let Some(children) = plan["Plans"].as_array() {
        for c in children {
            nodes(c, out);
        }
    }
}

fn summary(all: &[Value]) -> String {
    all.iter()
        .map(|n| {
            format!(
                "{} {} {}",
                n["Node Type"].as_str().unwrap_or("?"),
                n["Relation Name"].as_str().unwrap_or(""),
                n["Index Name"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

/// `EXPLAIN (FORMAT JSON)` of `sql` with these parameters (a custom plan for
/// these values, as the server's prepared statements get): its nodes.
async fn plan_of(pool: &PgPool, sql: &str, args: Args) -> Vec<Value> {
    let explain = format!("explain (format json) {sql}");
    let (json,): (Value,) = sqlx::query_as_with(sqlx::AssertSqlSafe(explain), args)
        .fetch_one(pool)
        .await
        .unwrap();
    let mut all = Vec::new();
    nodes(&json[0]["Plan"], &mut all);
    all
}

fn uses_index(all: &[Value], index: &str) -> bool {
    all.iter().any(|n| {
        n["Index Name"] == index
            && matches!(
                n["Node Type"].as_str(),
                Some("Index Scan" | "Index Only Scan" | "Bitmap Index Scan")
            )
    })
}

fn scans(all: &[Value], table: &str) -> bool {
    all.iter()
        .any(|n| n["Node Type"] == "Seq Scan" && n["Relation Name"] == table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_search_and_audit_page_are_index_scans_on_postgres() {
    use sqlx::Arguments as _;
    let dir = tempfile::tempdir().unwrap();
    let config = tests::config_for(Backend::Postgres, dir.path()).await;
    let store = idp::store::connect(&config.database).await.unwrap();
    store.migrate().await.unwrap();
    let pool = PgPool::connect(config.database.url.expose()).await.unwrap();

    // 20,000 accounts, and 40,000 audit events: ten for each of 4,000 of
    // them (ids spread over the whole table, as time spreads them).
    for sql in [
        "insert into user_account (user_id, email, email_key, name, created_at, updated_at)
         select md5(i::text)::uuid::text, 'User' || lpad(i::text, 6, '0') || '@example.com',
                'user' || lpad(i::text, 6, '0') || '@example.com', 'Name ' || i, now(), now()
         from generate_series(1, 20000) i",
        "insert into audit_event (occurred_at, kind, user_id)
         select now() - make_interval(secs => i), 'login.succeeded', md5((1 + i % 4000)::text)::uuid::text
         from generate_series(1, 40000) i",
        "analyze user_account",
        "analyze audit_event",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
    }

    // The admin search for an email prefix (ten accounts), first page and
    // next, as the store sends it.
    let text = "USER01234";
    let (low, high) = prefix_bounds(text);
    for (page, sql, cursor) in [
        ("first", SEARCH_USERS_POSTGRES.first, None),
        (
            "next",
            SEARCH_USERS_POSTGRES.next,
            Some("user012345@example.com"),
        ),
    ] {
        let mut args = Args::default();
        args.add(&low).unwrap();
        args.add(high.as_deref().unwrap()).unwrap();
        args.add(51_i64).unwrap();
        if let Some(cursor) = cursor {
            args.add(cursor).unwrap();
        }
        let plan = plan_of(&pool, sql, args).await;
        assert!(
            uses_index(&plan, "user_account_email_prefix_idx") && !scans(&plan, "user_account"),
            "the user search by email prefix ({page} page) is not served by its index: {}",
            summary(&plan)
        );
    }

    // One user's audit page, first and next (ten events): read through the
    // (user_id, audit_event_id) index, never the table. With so few events
    // the planner may fetch them by bitmap and sort them; it must also be
    // able to walk the index backwards from the cursor and stop at the page
    // size, with no sort (what a long history needs): with bitmap scans
    // off, that is the plan. Without 0007 both name (user_id, occurred_at)
    // and the second sorts.
    let user = sqlx::query_scalar::<_, String>("select md5('1234')::uuid::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    let page_args = |before_id: Option<i64>| {
        let mut args = Args::default();
        args.add(user.clone()).unwrap();
        args.add(None::<&str>).unwrap();
        args.add(None::<time::OffsetDateTime>).unwrap();
        args.add(None::<time::OffsetDateTime>).unwrap();
        args.add(before_id).unwrap();
        args.add(51_i64).unwrap();
        args
    };
    for before_id in [None, Some(30_000_i64)] {
        let plan = plan_of(&pool, SEARCH_AUDIT_EVENTS, page_args(before_id)).await;
        assert!(
            uses_index(&plan, "audit_event_user_id_idx") && !scans(&plan, "audit_event"),
            "one user's audit page (before {before_id:?}) is not served by its index: {}",
            summary(&plan)
        );
    }
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("set enable_bitmapscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    for before_id in [None, Some(30_000_i64)] {
        let explain = format!("explain (format json) {SEARCH_AUDIT_EVENTS}");
        let (json,): (Value,) =
            sqlx::query_as_with(sqlx::AssertSqlSafe(explain), page_args(before_id))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        let mut plan = Vec::new();
        nodes(&json[0]["Plan"], &mut plan);
        assert!(
            plan.iter().any(|n| n["Node Type"] == "Index Scan"
                && n["Index Name"] == "audit_event_user_id_idx"
                && n["Scan Direction"] == "Backward")
                && !plan.iter().any(|n| n["Node Type"] == "Sort"),
            "one user's audit page (before {before_id:?}) cannot be an ordered walk of its index: {}",
            summary(&plan)
        );
    }
}
