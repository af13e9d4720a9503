//! Mail: the durable outbox, its delivery worker and both transports, with a
//! real SMTP server on loopback ([`tests::smtp::SmtpSink`]) that can go down
//! and come back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use idp::clock::Clock;
use idp::config::{Config, MailTransport, SmtpTls};
use idp::store::{self, MailStatus, OutgoingMail, QueuedMail, SharedStore};
use tests::smtp::SmtpSink;
use time::OffsetDateTime;

use crate::{Backend, TestApp};

on_both_backends!(
    a_queued_message_arrives_with_its_html_alternative,
    an_smtp_outage_loses_nothing_and_sends_nothing_twice,
    a_message_out_of_attempts_fails_until_an_administrator_retries,
    the_file_transport_writes_one_eml_per_message,
    the_worker_stops_with_the_server,
    concurrent_claims_never_share_a_message,
    a_claim_hides_a_message_until_its_lease_passes,
    failed_mail_is_listed_and_can_be_retried,
);

/// Generous: the worker polls every 50 ms in these tests.
const WAIT: Duration = Duration::from_secs(20);

/// Plain SMTP to the sink; the worker polls often so the tests are quick.
fn smtp_to(port: u16) -> impl FnOnce(&mut Config) {
    move |c| {
        c.mail.transport = MailTransport::Smtp;
        c.mail.smtp.host = "127.0.0.1".into();
        c.mail.smtp.port = port;
        c.mail.smtp.tls = SmtpTls::None;
        c.mail.smtp.timeout_secs = 5;
        c.mail.poll_interval_ms = 50;
    }
}

fn reset_mail(n: usize) -> OutgoingMail {
    OutgoingMail {
        recipient: format!("user{n}@example.com"),
        subject: format!("Reset your password #{n}"),
        body_text: format!(
            "Open https://id.example.com/reset-password?token=t{n} within 60 minutes."
        ),
        body_html: None,
        sender: None,
    }
}

/// Polls the outbox until `done` holds; panics with the outbox after [`WAIT`].
async fn wait_outbox(
    store: &SharedStore,
    what: &str,
    done: impl Fn(&[QueuedMail]) -> bool,
) -> Vec<QueuedMail> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let all = store.list_mail(None, 1000).await.unwrap();
        if done(&all) {
            return all;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("the outbox never reached \"{what}\": {all:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn all_sent(n: usize) -> impl Fn(&[QueuedMail]) -> bool {
    move |all| all.len() == n && all.iter().all(|m| m.status == MailStatus::Sent)
}

/// Each message once: as many distinct subjects and Message-IDs as messages.
fn assert_each_once(received: &[tests::smtp::ReceivedMail], n: usize) {
    let subjects: HashSet<String> = received.iter().map(|m| m.subject()).collect();
    let ids: HashSet<String> = received.iter().map(|m| m.message_id()).collect();
    assert_eq!(received.len(), n, "{subjects:#?}");
    assert_eq!(subjects.len(), n, "a subject arrived twice: {subjects:#?}");
    assert_eq!(ids.len(), n, "a Message-ID arrived twice: {ids:#?}");
}

async fn a_queued_message_arrives_with_its_html_alternative(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(backend, smtp_to(sink.port())).await;
    let subject = "Réinitialisez votre mot de passe";
    let link = "https://id.example.com/reset-password?token=abc123";
    let id = app
        .state
        .mail
        .enqueue(OutgoingMail {
            recipient: "Jane Doe <jane@example.com>".into(),
            subject: subject.into(),
            body_text: format!("Bonjour Jane,\n\nOuvrez {link} (valable 60 minutes).\n"),
            body_html: Some(format!(
                "<p>Bonjour Jane,</p><p><a href=\"{link}\">Réinitialiser</a></p>"
            )),
            sender: None,
        })
        .await
        .unwrap();

    let received = sink.wait_for(1, WAIT).await;
    let m = &received[0];
    assert_eq!(m.to, ["jane@example.com"], "envelope recipient");
    assert_eq!(m.from, "no-reply@localhost", "envelope sender");
    assert_eq!(m.to_header(), "jane@example.com");
    assert_eq!(m.from_header(), "no-reply@localhost");
    assert_eq!(m.subject(), subject);
    assert_eq!(m.message_id(), format!("{id}@localhost"));
    assert!(m.data.contains("multipart/alternative"), "{}", m.data);
    let text = m.text_body();
    assert!(
        text.contains("Bonjour Jane") && text.contains(link),
        "{text}"
    );
    let html = m.html_body().expect("an HTML alternative");
    assert!(
        html.contains(&format!("<a href=\"{link}\">Réinitialiser</a>")),
        "{html}"
    );

    let outbox = wait_outbox(&app.state.store, "sent", all_sent(1)).await;
    assert_eq!(outbox[0].id, id);
    assert_eq!(outbox[0].attempts, 0);
    assert!(outbox[0].sent_at.is_some());
}

/// SMTP unreachable while resets are requested: every mail is delivered once
/// it is back, none twice.
async fn an_smtp_outage_loses_nothing_and_sends_nothing_twice(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(backend, smtp_to(sink.port())).await;
    sink.stop().await;

    for n in 0..5 {
        app.state.mail.enqueue(reset_mail(n)).await.unwrap();
    }
    let outbox = wait_outbox(&app.state.store, "one failed attempt each", |all| {
        all.len() == 5 && all.iter().all(|m| m.attempts == 1)
    })
    .await;
    for m in &outbox {
        assert_eq!(m.status, MailStatus::Pending, "{m:#?}");
        assert!(
            m.last_error.as_deref().is_some_and(|e| !e.is_empty()),
            "{m:#?}"
        );
        assert!(
            m.next_attempt_at > app.clock.now(),
            "a retry is scheduled: {m:#?}"
        );
    }
    assert!(sink.messages().is_empty());

    sink.restart().await;
    // Back up, but the retries are not due yet.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.messages().is_empty(), "sent before its retry was due");

    app.clock.advance(time::Duration::seconds(31));
    sink.wait_for(5, WAIT).await;
    let outbox = wait_outbox(&app.state.store, "all sent", all_sent(5)).await;
    assert!(
        outbox
            .iter()
            .all(|m| m.attempts == 1 && m.sent_at.is_some())
    );

    // Much later, still nothing twice.
    app.clock.advance(time::Duration::hours(3));
    app.state.mail.notify();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = sink.messages();
    assert_each_once(&received, 5);
    let recipients: HashSet<&str> = received.iter().map(|m| m.to[0].as_str()).collect();
    assert_eq!(recipients.len(), 5);
}

async fn a_message_out_of_attempts_fails_until_an_administrator_retries(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(backend, |c| {
        smtp_to(sink.port())(c);
        c.mail.max_attempts = 2;
    })
    .await;
    sink.stop().await;
    let id = app.state.mail.enqueue(reset_mail(1)).await.unwrap();
    wait_outbox(&app.state.store, "first attempt failed", |all| {
        all.iter().all(|m| m.attempts == 1)
    })
    .await;

    app.clock.advance(time::Duration::seconds(31));
    let outbox = wait_outbox(&app.state.store, "failed", |all| {
        all.iter().all(|m| m.status == MailStatus::Failed)
    })
    .await;
    assert_eq!(outbox[0].attempts, 2);

    let failed = app
        .state
        .store
        .list_mail(Some(MailStatus::Failed), 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, id);
    assert_eq!(failed[0].mail, reset_mail(1));
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .is_some_and(|e| !e.is_empty())
    );
    let pending = app.state.store.list_mail(Some(MailStatus::Pending), 10);
    assert!(pending.await.unwrap().is_empty());

    // A failed message stays failed, however long we wait.
    sink.restart().await;
    app.clock.advance(time::Duration::hours(3));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.messages().is_empty());

    app.state
        .store
        .retry_mail(&id, app.clock.now())
        .await
        .unwrap();
    app.state.mail.notify();
    sink.wait_for(1, WAIT).await;
    wait_outbox(&app.state.store, "sent", all_sent(1)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_each_once(&sink.messages(), 1);
    // Only failed messages can be retried.
    let again = app.state.store.retry_mail(&id, app.clock.now()).await;
    assert!(matches!(again, Err(store::Error::NotFound)), "{again:?}");
}

async fn the_file_transport_writes_one_eml_per_message(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.mail.poll_interval_ms = 50).await;
    assert_eq!(app.state.config.mail.transport, MailTransport::File);
    for n in 0..3 {
        app.state.mail.enqueue(reset_mail(n)).await.unwrap();
    }
    wait_outbox(&app.state.store, "sent", all_sent(3)).await;

    let dir = &app.state.config.mail.dir;
    let mut contents = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("eml"),
            "{path:?}"
        );
        contents.push(std::fs::read_to_string(&path).unwrap());
    }
    assert_eq!(contents.len(), 3, "one file per message");
    for n in 0..3 {
        let subject = format!("Subject: Reset your password #{n}");
        assert_eq!(
            contents.iter().filter(|c| c.contains(&subject)).count(),
            1,
            "{subject} in {contents:#?}"
        );
    }
}

async fn the_worker_stops_with_the_server(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tests::config_for(backend, dir.path()).await;
    config.mail.poll_interval_ms = 50;
    let clock = Arc::new(idp::clock::ManualClock::default());
    let app = idp::Application::build_with(config, clock, None)
        .await
        .unwrap();
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    state.mail.enqueue(reset_mail(1)).await.unwrap();
    wait_outbox(&state.store, "sent", all_sent(1)).await;

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server and its mail worker stop")
        .unwrap()
        .unwrap();
    // No worker any more: mail queued now waits in the outbox for the next start.
    state.mail.enqueue(reset_mail(2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pending = state.store.list_mail(Some(MailStatus::Pending), 10);
    assert_eq!(pending.await.unwrap().len(), 1);
}

/// Several nodes on one PostgreSQL database, one SMTP server: every message
/// is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_deliver_each_message_once() {
    let sink = SmtpSink::start().await;
    // A slow server keeps both workers busy at the same time.
    sink.set_delay(Duration::from_millis(15));
    let first = TestApp::spawn_with(Backend::Postgres, smtp_to(sink.port())).await;
    // Another issuer only so that the SMTP greeting tells the nodes apart.
    let second = first
        .spawn_beside(|c| c.server.issuer = "http://node-2.test".parse().unwrap())
        .await;
    assert_eq!(
        second.state.config.database.url.expose(),
        first.state.config.database.url.expose()
    );

    for n in 0..30 {
        let node = if n % 2 == 0 { &first } else { &second };
        node.state.mail.enqueue(reset_mail(n)).await.unwrap();
    }
    sink.wait_for(30, WAIT).await;
    wait_outbox(&first.state.store, "all sent", all_sent(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = sink.messages();
    assert_each_once(&received, 30);
    // Both nodes worked at once, or this proved nothing.
    let by_second = received.iter().filter(|m| m.helo == "node-2.test").count();
    assert!(
        (1..30).contains(&by_second),
        "node 2 delivered {by_second} of 30"
    );
}

// --- the store's side of the outbox ------------------------------------------

async fn open(backend: Backend) -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = tests::config_for(backend, dir.path()).await;
    let store = store::connect(&config.database).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

const LEASE: time::Duration = time::Duration::seconds(60);

async fn concurrent_claims_never_share_a_message(backend: Backend) {
    let (store, _dir) = open(backend).await;
    let now = OffsetDateTime::now_utc();
    let mut queued = HashSet::new();
    for n in 0..60 {
        queued.insert(store.enqueue_mail(reset_mail(n), now).await.unwrap());
    }
    let claimer = |store: SharedStore| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_due_mail(now, LEASE, 7).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|m| m.id));
            }
        })
    };
    let (a, b) = (claimer(store.clone()), claimer(store.clone()));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut seen = HashSet::new();
    for id in a.iter().chain(&b) {
        assert!(seen.insert(id.clone()), "{id} was claimed twice");
    }
    assert_eq!(seen, queued, "every message claimed once");
}

async fn a_claim_hides_a_message_until_its_lease_passes(backend: Backend) {
    let (store, _dir) = open(backend).await;
    // Whole milliseconds: the stores keep microseconds.
    let t0 = OffsetDateTime::now_utc().replace_millisecond(0).unwrap();
    let later = |secs: i64| t0 + time::Duration::seconds(secs);
    assert!(
        store
            .claim_due_mail(t0, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let id = store.enqueue_mail(reset_mail(1), t0).await.unwrap();
    // Not due before it was queued.
    assert!(
        store
            .claim_due_mail(later(-1), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let claimed = store.claim_due_mail(t0, LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, id);
    assert_eq!(claimed[0].mail, reset_mail(1));
    assert_eq!(claimed[0].status, MailStatus::Pending);
    assert_eq!(claimed[0].attempts, 0);
    assert!(
        store
            .claim_due_mail(later(30), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The claimer went silent: once its lease passes another worker takes over.
    let again = store.claim_due_mail(later(61), LEASE, 10).await.unwrap();
    assert_eq!(again.len(), 1);

    // A failed attempt with a retry: invisible until the retry is due.
    store
        .mark_mail_attempt_failed(&id, "421 try later", Some(later(300)))
        .await
        .unwrap();
    assert!(
        store
            .claim_due_mail(later(299), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let retried = store.claim_due_mail(later(300), LEASE, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 1);
    assert_eq!(retried[0].last_error.as_deref(), Some("421 try later"));

    store.mark_mail_sent(&id, later(301)).await.unwrap();
    assert!(
        store
            .claim_due_mail(later(9999), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let sent = store.list_mail(Some(MailStatus::Sent), 10).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].sent_at, Some(later(301)));
    assert!(matches!(
        store.mark_mail_sent("no-such-id", t0).await,
        Err(store::Error::NotFound)
    ));
}

async fn failed_mail_is_listed_and_can_be_retried(backend: Backend) {
    let (store, _dir) = open(backend).await;
    let t0 = OffsetDateTime::now_utc();
    let mut ids = Vec::new();
    for n in 0..3 {
        let at = t0 + time::Duration::milliseconds(n as i64);
        ids.push(store.enqueue_mail(reset_mail(n), at).await.unwrap());
    }
    let claimed = store.claim_due_mail(t0 + LEASE, LEASE, 2).await.unwrap();
    let claimed: Vec<&str> = claimed.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(claimed, [ids[0].as_str(), ids[1].as_str()], "oldest first");
    store
        .mark_mail_attempt_failed(&ids[0], "550 no such user", None)
        .await
        .unwrap();

    let all = store.list_mail(None, 10).await.unwrap();
    let listed: Vec<&str> = all.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        listed,
        [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()],
        "newest first"
    );
    assert_eq!(store.list_mail(None, 1).await.unwrap().len(), 1);
    let failed = store.list_mail(Some(MailStatus::Failed), 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, ids[0]);
    assert_eq!(failed[0].attempts, 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("550 no such user"));
    assert_eq!(
        store
            .list_mail(Some(MailStatus::Pending), 10)
            .await
            .unwrap()
            .len(),
        2
    );

    // Only failed messages can be retried; a retry is due at once.
    assert!(matches!(
        store.retry_mail(&ids[2], t0).await,
        Err(store::Error::NotFound)
    ));
    let t1 = t0 + time::Duration::hours(1);
    store.retry_mail(&ids[0], t1).await.unwrap();
    let due = store.claim_due_mail(t1, LEASE, 10).await.unwrap();
    let due: HashSet<&str> = due.iter().map(|m| m.id.as_str()).collect();
    assert!(due.contains(ids[0].as_str()), "{due:?}");
    let retried = store.list_mail(None, 10).await.unwrap();
    let retried = retried.iter().find(|m| m.id == ids[0]).unwrap();
    assert_eq!(retried.status, MailStatus::Pending);
    assert_eq!(retried.attempts, 0);
}
