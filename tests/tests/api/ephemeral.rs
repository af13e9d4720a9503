//! One behaviour suite for both ephemeral-store backends, so the in-memory
//! store used by single-node deployments cannot drift from Redis.
//!
//! Each test is an `async fn(Ephemeral, ManualClock)`; `both!` turns it into a
//! `memory` and a `redis` tokio test. Expiry is exercised by moving the manual
//! clock, never by sleeping: both backends must follow the app clock.
//! The Redis tests need `IDP_TEST_REDIS_URL` (set by `scripts/test`) and use a
//! fresh key prefix each, so they can run in parallel on one server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use idp::clock::{Clock, ManualClock, SharedClock};
use idp::ephemeral::{Ephemeral, EphemeralStore, Gated, MemoryStore, RedisStore, Set, keys};

const MINUTE: Duration = Duration::from_secs(60);

/// Moves the manual clock forward (through `set`, so this crate needs no
/// direct dependency on `time`).
fn advance(clock: &ManualClock, by: Duration) {
    clock.set(clock.now() + by);
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn memory_store() -> (Ephemeral, ManualClock) {
    let clock = ManualClock::default();
    let store = MemoryStore::new(Arc::new(clock.clone()));
    (Ephemeral::new(Arc::new(store)), clock)
}

fn redis_url() -> String {
    std::env::var("IDP_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("IDP_TEST_REDIS_URL is not set: run scripts/test, which starts Redis")
    })
}

async fn redis_raw(prefix: String, clock: &ManualClock) -> RedisStore {
    let shared: SharedClock = Arc::new(clock.clone());
    RedisStore::connect(&redis_url(), prefix, shared)
        .await
        .expect("connect to the test Redis (IDP_TEST_REDIS_URL)")
}

fn fresh_prefix() -> String {
    format!("test:{}:", uuid::Uuid::new_v4())
}

async fn redis_store() -> (Ephemeral, ManualClock) {
    let clock = ManualClock::default();
    let store = redis_raw(fresh_prefix(), &clock).await;
    (Ephemeral::new(Arc::new(store)), clock)
}

/// `both!(name)` runs the suite function `name` against each backend.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            // Several worker threads, so that concurrent calls really overlap.
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn memory() {
                let (store, clock) = super::memory_store();
                super::$name(store, clock).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redis() {
                let (store, clock) = super::redis_store().await;
                super::$name(store, clock).await;
            }
        }
    )*};
}

both!(
    put_get_round_trip,
    value_expires_by_clock,
    take_returns_value_once,
    concurrent_takes_have_one_winner,
    put_if_absent_respects_live_values_only,
    increment_counts_within_window_then_restarts,
    a_count_goes_back_only_to_the_window_it_was_counted_in,
    counting_stops_at_a_live_bar_and_after_a_count_past_its_limit,
    a_burst_counts_the_next_counter_only_within_the_first_ones_limit,
    counts_given_back_together_then_the_bar_is_read,
    two_counts_taken_and_given_back_together,
    counter_reads_as_number,
    delete_removes,
    put_replaces_value_and_ttl,
    ping_succeeds,
    put_if_present_never_brings_a_value_back,
    set_members_come_and_go,
    set_members_expire_one_by_one,
);

async fn put_get_round_trip(store: Ephemeral, _clock: ManualClock) {
    let key = keys::probe("round-trip");
    assert_eq!(store.get(&key).await.unwrap(), None);
    // Bytes that matter to an envelope format: a separator and non-ASCII.
    let value = "a|b|ünïcode|".to_owned();
    store.put(&key, &value, MINUTE).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(value.clone()));
    // A get does not consume the value.
    assert_eq!(store.get(&key).await.unwrap(), Some(value));
    assert_eq!(store.get(&keys::probe("other")).await.unwrap(), None);
}

async fn value_expires_by_clock(store: Ephemeral, clock: ManualClock) {
    let key = keys::probe("expiring");
    store.put(&key, &"v".to_owned(), MINUTE).await.unwrap();
    advance(&clock, secs(59));
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some("v"));
    advance(&clock, secs(2));
    assert_eq!(store.get(&key).await.unwrap(), None);
    // Expired values are not handed out by take either.
    assert_eq!(store.take(&key).await.unwrap(), None);
}

async fn take_returns_value_once(store: Ephemeral, clock: ManualClock) {
    let key = keys::probe("single-use");
    store.put(&key, &"code".to_owned(), MINUTE).await.unwrap();
    assert_eq!(store.take(&key).await.unwrap().as_deref(), Some("code"));
    assert_eq!(store.take(&key).await.unwrap(), None);
    assert_eq!(store.get(&key).await.unwrap(), None);

    // A value put again after being taken is takeable again, until it expires.
    store.put(&key, &"again".to_owned(), MINUTE).await.unwrap();
    advance(&clock, secs(120));
    assert_eq!(store.take(&key).await.unwrap(), None);
}

async fn concurrent_takes_have_one_winner(store: Ephemeral, _clock: ManualClock) {
    for round in 0..5 {
        let key = keys::probe(&format!("contended-{round}"));
        store
            .put(&key, &format!("code-{round}"), MINUTE)
            .await
            .unwrap();
        // The barrier releases all takers at once so that their calls overlap.
        let start = Arc::new(tokio::sync::Barrier::new(20));
        let mut takers = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (store, key, start) = (store.clone(), key.clone(), start.clone());
            takers.spawn(async move {
                start.wait().await;
                store.take(&key).await
            });
        }
        let mut winners = Vec::new();
        while let Some(joined) = takers.join_next().await {
            winners.extend(joined.unwrap().unwrap());
        }
        assert_eq!(winners, vec![format!("code-{round}")], "round {round}");
    }
}

async fn put_if_absent_respects_live_values_only(store: Ephemeral, clock: ManualClock) {
    let key = keys::probe("claim");
    assert!(
        store
            .put_if_absent(&key, &"first".to_owned(), MINUTE)
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_if_absent(&key, &"second".to_owned(), MINUTE)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some("first"));

    advance(&clock, secs(61));
    assert!(
        store
            .put_if_absent(&key, &"third".to_owned(), MINUTE)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some("third"));
    // The new value has its own ttl, counted from the new now.
    advance(&clock, secs(59));
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some("third"));
    assert!(
        !store
            .put_if_absent(&key, &"fourth".to_owned(), MINUTE)
            .await
            .unwrap()
    );
}

async fn increment_counts_within_window_then_restarts(store: Ephemeral, clock: ManualClock) {
    let key = keys::counter("login-failures", "alice");
    let other = keys::counter("login-failures", "bob");
    assert_eq!(store.increment(&key, MINUTE).await.unwrap(), 1);
    advance(&clock, secs(20));
    assert_eq!(store.increment(&key, MINUTE).await.unwrap(), 2);
    advance(&clock, secs(20));
    assert_eq!(store.increment(&key, MINUTE).await.unwrap(), 3);
    assert_eq!(store.increment(&other, MINUTE).await.unwrap(), 1);

    // The window is fixed at the first increment: later ones do not extend it.
    advance(&clock, secs(21));
    assert_eq!(store.increment(&key, MINUTE).await.unwrap(), 1);
    assert_eq!(store.increment(&key, MINUTE).await.unwrap(), 2);
}

/// A try counted at the end of one window and given back after the next
/// began (a sign-in whose hash ran across the boundary) must not take its
/// count from the new window: that would be one more guess or mail there.
async fn a_count_goes_back_only_to_the_window_it_was_counted_in(
    store: Ephemeral,
    clock: ManualClock,
) {
    let key = keys::counter("login-failures", "carol");
    let first = store.count(&key, MINUTE).await.unwrap();
    assert_eq!(first.count, 1);
    let second = store.count(&key, MINUTE).await.unwrap();
    assert_eq!(second.count, 2);
    assert_eq!(first.window, second.window);
    // Within its window a count goes back.
    store.give_back(&key, second).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(1));

    // The window ends; another try opens the next one.
    advance(&clock, secs(61));
    let next = store.count(&key, MINUTE).await.unwrap();
    assert_eq!(next.count, 1);
    assert_ne!(next.window, first.window);
    // The late give-back of the first window's try changes nothing now.
    store.give_back(&key, first).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(1));
    // The new window's own try still goes back, and never below zero.
    store.give_back(&key, next).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(0));
    store.give_back(&key, next).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(0));
}

/// The sign-in's count in one step: a live lock bars it (nothing is
/// counted), and a network past its limit adds nothing to the address.
async fn counting_stops_at_a_live_bar_and_after_a_count_past_its_limit(
    store: Ephemeral,
    clock: ManualClock,
) {
    let bar = keys::lock("dave");
    let (ip, email) = (keys::counter("ip", "10.0.0.9"), keys::counter("em", "dave"));
    let tallies = [(&ip, MINUTE, 2), (&email, MINUTE, u64::MAX)];
    let counts = |gated: Gated<i64>| match gated {
        Gated::Counted(counts) => counts.iter().map(|c| c.count).collect::<Vec<_>>(),
        Gated::Barred(until) => panic!("barred until {until}"),
    };
    assert_eq!(
        counts(store.count_unless(&bar, &tallies).await.unwrap()),
        [1, 1]
    );
    assert_eq!(
        counts(store.count_unless(&bar, &tallies).await.unwrap()),
        [2, 2]
    );
    // The network's third is past its limit: the address is not counted.
    assert_eq!(
        counts(store.count_unless(&bar, &tallies).await.unwrap()),
        [3]
    );
    assert_eq!(store.get(&email).await.unwrap(), Some(2));

    // A live lock: its value comes back and nothing is counted.
    store.put(&bar, &1_900_000_000, secs(30)).await.unwrap();
    assert_eq!(
        store.count_unless(&bar, &tallies).await.unwrap(),
        Gated::Barred(1_900_000_000)
    );
    assert_eq!(store.get(&ip).await.unwrap(), Some(3));
    assert_eq!(store.get(&email).await.unwrap(), Some(2));

    // Once it has expired (by the app clock) counting goes on, in new
    // windows: the old ones ended with it.
    advance(&clock, secs(61));
    assert_eq!(
        counts(store.count_unless(&bar, &tallies).await.unwrap()),
        [1, 1]
    );
}

/// Parallel counts: however they interleave, the second counter is counted
/// exactly as often as the first stayed within its limit.
async fn a_burst_counts_the_next_counter_only_within_the_first_ones_limit(
    store: Ephemeral,
    _clock: ManualClock,
) {
    let bar = keys::lock("erin");
    let (ip, email) = (keys::counter("ip", "10.0.0.7"), keys::counter("em", "erin"));
    let burst = (0..40).map(|_| {
        let (store, bar, ip, email) = (store.clone(), bar.clone(), ip.clone(), email.clone());
        tokio::spawn(async move {
            store
                .count_unless(&bar, &[(&ip, MINUTE, 10), (&email, MINUTE, u64::MAX)])
                .await
                .unwrap()
        })
    });
    let mut firsts = Vec::new();
    for task in burst.collect::<Vec<_>>() {
        let Gated::Counted(counts) = task.await.unwrap() else {
            panic!("barred without a lock");
        };
        assert_eq!(counts.len(), if counts[0].count <= 10 { 2 } else { 1 });
        firsts.push(counts[0].count);
    }
    firsts.sort_unstable();
    assert_eq!(firsts, (1..=40).collect::<Vec<_>>());
    assert_eq!(store.get(&ip).await.unwrap(), Some(40));
    assert_eq!(store.get(&email).await.unwrap(), Some(10));
}

/// A right password gives back both counts and learns, in the same step,
/// whether a parallel attempt locked the address meanwhile.
async fn counts_given_back_together_then_the_bar_is_read(store: Ephemeral, clock: ManualClock) {
    let bar = keys::lock("frank");
    let (ip, email) = (
        keys::counter("ip", "10.0.0.5"),
        keys::counter("em", "frank"),
    );
    let tallies = [(&ip, MINUTE, 5), (&email, MINUTE, u64::MAX)];
    store.count_unless(&bar, &tallies).await.unwrap();
    let Gated::Counted(counts) = store.count_unless(&bar, &tallies).await.unwrap() else {
        panic!("barred without a lock");
    };
    let given = [(ip.clone(), counts[0]), (email.clone(), counts[1])];
    assert_eq!(store.give_back_then_get(&given, &bar).await.unwrap(), None);
    assert_eq!(store.get(&ip).await.unwrap(), Some(1));
    assert_eq!(store.get(&email).await.unwrap(), Some(1));

    // A lock taken meanwhile is read after the give-back.
    let Gated::Counted(counts) = store.count_unless(&bar, &tallies).await.unwrap() else {
        panic!("barred without a lock");
    };
    store.put(&bar, &1_900_000_000, secs(30)).await.unwrap();
    let given = [(ip.clone(), counts[0]), (email.clone(), counts[1])];
    assert_eq!(
        store.give_back_then_get(&given, &bar).await.unwrap(),
        Some(1_900_000_000)
    );
    assert_eq!(store.get(&ip).await.unwrap(), Some(1));
    assert_eq!(store.get(&email).await.unwrap(), Some(1));

    // After the windows ended nothing is taken from the new ones.
    advance(&clock, secs(61));
    store.count(&ip, MINUTE).await.unwrap();
    assert_eq!(store.give_back_then_get(&given, &bar).await.unwrap(), None);
    assert_eq!(store.get(&ip).await.unwrap(), Some(1));
}

/// A mail request's two counts (its network, its address), taken in one
/// step and given back in one, each to its own window.
async fn two_counts_taken_and_given_back_together(store: Ephemeral, clock: ManualClock) {
    let (ip, to) = (keys::counter("ip", "10.0.0.3"), keys::counter("to", "gil"));
    store.count(&to, secs(120)).await.unwrap();
    let (a, b) = store
        .count_both((&ip, MINUTE), (&to, MINUTE))
        .await
        .unwrap();
    assert_eq!((a.count, b.count), (1, 2));
    assert_ne!(a.window, b.window, "each counter keeps its own window");
    store
        .give_back_many(&[(ip.clone(), a), (to.clone(), b)])
        .await
        .unwrap();
    assert_eq!(store.get(&ip).await.unwrap(), Some(0));
    assert_eq!(store.get(&to).await.unwrap(), Some(1));

    // The network's window ends and a new one begins; the address's goes on.
    let (a, b) = store
        .count_both((&ip, MINUTE), (&to, MINUTE))
        .await
        .unwrap();
    advance(&clock, secs(61));
    let (next, _) = store
        .count_both((&ip, MINUTE), (&to, MINUTE))
        .await
        .unwrap();
    assert_eq!(next.count, 1);
    store
        .give_back_many(&[(ip.clone(), a), (to.clone(), b)])
        .await
        .unwrap();
    assert_eq!(
        store.get(&ip).await.unwrap(),
        Some(1),
        "the new window keeps its count"
    );
    assert_eq!(store.get(&to).await.unwrap(), Some(2));
}

async fn counter_reads_as_number(store: Ephemeral, clock: ManualClock) {
    let key = keys::counter("rate", "10.0.0.1");
    assert_eq!(store.get(&key).await.unwrap(), None);
    for _ in 0..3 {
        store.increment(&key, MINUTE).await.unwrap();
    }
    assert_eq!(store.get(&key).await.unwrap(), Some(3));
    // The raw payload is the decimal count, the same on every backend.
    assert_eq!(
        store.raw().get(key.as_str()).await.unwrap(),
        Some(b"3".to_vec())
    );
    advance(&clock, secs(61));
    assert_eq!(store.get(&key).await.unwrap(), None);
}

async fn delete_removes(store: Ephemeral, _clock: ManualClock) {
    let key = keys::probe("deleted");
    let kept = keys::probe("kept");
    store.put(&key, &"v".to_owned(), MINUTE).await.unwrap();
    store.put(&kept, &"w".to_owned(), MINUTE).await.unwrap();
    store.delete(&key).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert_eq!(store.take(&key).await.unwrap(), None);
    assert_eq!(store.get(&kept).await.unwrap().as_deref(), Some("w"));
    // Deleting what is not there is not an error.
    store.delete(&key).await.unwrap();
}

async fn put_replaces_value_and_ttl(store: Ephemeral, clock: ManualClock) {
    let key = keys::probe("replaced");
    store.put(&key, &"old".to_owned(), MINUTE).await.unwrap();
    advance(&clock, secs(50));
    store.put(&key, &"new".to_owned(), MINUTE).await.unwrap();
    advance(&clock, secs(50));
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some("new"));
    advance(&clock, secs(11));
    assert_eq!(store.get(&key).await.unwrap(), None);
}

async fn ping_succeeds(store: Ephemeral, _clock: ManualClock) {
    store.ping().await.unwrap();
}

async fn put_if_present_never_brings_a_value_back(store: Ephemeral, clock: ManualClock) {
    let key = keys::probe("sliding");
    assert!(
        !store
            .put_if_present(&key, &"new".to_owned(), MINUTE)
            .await
            .unwrap(),
        "nothing to replace"
    );
    assert_eq!(store.get(&key).await.unwrap(), None);
    store.put(&key, &"old".to_owned(), MINUTE).await.unwrap();
    advance(&clock, secs(50));
    assert!(
        store
            .put_if_present(&key, &"new".to_owned(), MINUTE)
            .await
            .unwrap()
    );
    // Replaced with its new ttl, counted from now.
    advance(&clock, secs(50));
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some("new"));
    store.delete(&key).await.unwrap();
    assert!(
        !store
            .put_if_present(&key, &"again".to_owned(), MINUTE)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get(&key).await.unwrap(),
        None,
        "deleted stays deleted"
    );
}

fn sorted(mut members: Vec<String>) -> Vec<String> {
    members.sort();
    members
}

async fn set_members_come_and_go(store: Ephemeral, _clock: ManualClock) {
    let key = keys::typed::<Set>("probe-set", "a");
    let other = keys::typed::<Set>("probe-set", "b");
    assert_eq!(store.set_members(&key).await.unwrap(), Vec::<String>::new());
    for member in ["x", "y|z", "ünï", "x"] {
        store.set_add(&key, member, MINUTE).await.unwrap();
    }
    store.set_add(&other, "w", MINUTE).await.unwrap();
    assert_eq!(
        sorted(store.set_members(&key).await.unwrap()),
        ["x", "y|z", "ünï"],
        "a member added twice is there once"
    );
    store.set_remove(&key, "y|z").await.unwrap();
    // Removing what is not there is not an error.
    store.set_remove(&key, "never").await.unwrap();
    store
        .set_remove(&keys::typed::<Set>("probe-set", "none"), "x")
        .await
        .unwrap();
    assert_eq!(sorted(store.set_members(&key).await.unwrap()), ["x", "ünï"]);
    store.delete(&key).await.unwrap();
    assert_eq!(store.set_members(&key).await.unwrap(), Vec::<String>::new());
    assert_eq!(store.set_members(&other).await.unwrap(), ["w"]);
}

async fn set_members_expire_one_by_one(store: Ephemeral, clock: ManualClock) {
    let key = keys::typed::<Set>("probe-set", "expiring");
    store.set_add(&key, "short", MINUTE).await.unwrap();
    store.set_add(&key, "long", secs(300)).await.unwrap();
    advance(&clock, secs(50));
    // Added again: its ttl starts again from now.
    store.set_add(&key, "renewed", MINUTE).await.unwrap();
    store.set_add(&key, "renewed", MINUTE).await.unwrap();
    advance(&clock, secs(11));
    assert_eq!(
        sorted(store.set_members(&key).await.unwrap()),
        ["long", "renewed"]
    );
    advance(&clock, secs(50));
    assert_eq!(store.set_members(&key).await.unwrap(), ["long"]);
    // A member added after others expired joins the live ones.
    store.set_add(&key, "late", MINUTE).await.unwrap();
    assert_eq!(
        sorted(store.set_members(&key).await.unwrap()),
        ["late", "long"]
    );
    advance(&clock, secs(300));
    assert_eq!(store.set_members(&key).await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn redis_prefixes_isolate_stores() {
    let clock = ManualClock::default();
    let a = redis_raw(fresh_prefix(), &clock).await;
    let b = redis_raw(fresh_prefix(), &clock).await;
    let key = "probe:shared-name";

    a.put(key, b"\"from a\"", MINUTE).await.unwrap();
    assert_eq!(b.get(key).await.unwrap(), None);
    assert_eq!(b.take(key).await.unwrap(), None);
    assert!(b.put_if_absent(key, b"\"from b\"", MINUTE).await.unwrap());
    assert_eq!(b.increment("count:x:y", MINUTE).await.unwrap().count, 1);
    assert_eq!(a.increment("count:x:y", MINUTE).await.unwrap().count, 1);
    b.delete(key).await.unwrap();

    // A's value survived everything done through B.
    assert_eq!(a.get(key).await.unwrap(), Some(b"\"from a\"".to_vec()));
}

#[tokio::test]
async fn redis_values_carry_a_real_ttl() {
    // The clock-based envelope decides expiry, but Redis must still collect
    // the garbage. The manual clock stays put here, so a value that disappears
    // was removed by a real Redis TTL. (The only test that sleeps.)
    let clock = ManualClock::default();
    let store = redis_raw(fresh_prefix(), &clock).await;
    // Margins of seconds: on a busy two-core machine a 200 ms sleep may take
    // far longer than asked, and a TTL must never pass before the check.
    let short = Duration::from_secs(3);
    store.put("probe:a", b"1", short).await.unwrap();
    assert!(store.put_if_absent("probe:b", b"1", short).await.unwrap());
    assert_eq!(store.increment("count:c", short).await.unwrap().count, 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Incrementing a live counter must keep its TTL, not make it persistent.
    assert_eq!(store.increment("count:c", short).await.unwrap().count, 2);
    tokio::time::sleep(short + Duration::from_millis(300)).await;
    assert_eq!(store.get("probe:a").await.unwrap(), None);
    assert_eq!(store.get("probe:b").await.unwrap(), None);
    assert_eq!(store.increment("count:c", short).await.unwrap().count, 1);

    // A set lives as long as its longest-lived member asked for, then Redis
    // drops it (the clock did not move: its members are still live by it).
    let brief = Duration::from_millis(100);
    store.set_add("set:d", "n", brief).await.unwrap();
    store.set_add("set:d", "m", short).await.unwrap();
    store.set_add("set:d", "o", brief).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        sorted(store.set_members("set:d").await.unwrap()),
        ["m", "n", "o"]
    );
    tokio::time::sleep(short).await;
    assert_eq!(
        store.set_members("set:d").await.unwrap(),
        Vec::<String>::new()
    );
}
