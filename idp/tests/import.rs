//! `idp user import` as an operator uses it (issue 15): real processes on
//! real databases, both backends. The hashes are the fixtures of
//! tests/fixtures/legacy-hashes, made by passlib, bcrypt, argon2-cffi and
//! the portals' own algorithms (generate.py).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use idp::domain::Email;
use idp::store::SharedStore;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Postgres,
    Sqlite,
}

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn postgres_redis() {
                super::$name(crate::Backend::Postgres).await
            }
            #[tokio::test]
            async fn sqlite_memory() {
                super::$name(crate::Backend::Sqlite).await
            }
        }
    )+};
}

on_both_backends!(
    every_fixture_format_is_imported_as_written_once_and_only_once,
    a_dry_run_reports_the_same_and_writes_nothing,
    bad_lines_are_refused_by_number_and_the_others_imported,
    all_or_nothing_writes_nothing_when_one_line_is_bad,
    a_second_portal_links_its_external_id_and_keeps_the_password,
    a_line_of_2_gb_is_refused_in_bounded_time,
    a_record_that_collides_meanwhile_is_left_out_alone_or_stops_all_or_nothing,
);

struct Deployment {
    dir: tempfile::TempDir,
    url: String,
    store: SharedStore,
}

impl Deployment {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::Postgres => fresh_postgres_database().await,
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("idp.db").display()),
        };
        let store = idp::store::connect(&idp::config::DatabaseConfig {
            url: idp::config::ConnectionUrl::new(url.clone()),
            ..idp::config::DatabaseConfig::default()
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        Self { dir, url, store }
    }

    /// `idp ARGS…` with `stdin` as its standard input.
    fn idp(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_idp"))
            .current_dir(self.dir.path())
            .arg("--config")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/idp.toml"))
            .args(args)
            .env_remove("RUST_LOG")
            .env("RUST_BACKTRACE", "1")
            .env("IDP__DATABASE__URL", &self.url)
            .env(
                "IDP__THEMES__DIR",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../themes"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("idp runs");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    /// `idp user import --file FILE MORE…` of `lines`, written to a file.
    fn import(&self, lines: &[Value], more: &[&str]) -> Import {
        let path = self.file(lines);
        let mut args = vec!["user", "import", "--file", path.to_str().unwrap()];
        args.extend_from_slice(more);
        Import::of(self.idp(&args, b""))
    }

    fn file(&self, lines: &[Value]) -> PathBuf {
        let path = self
            .dir
            .path()
            .join(format!("export-{}.jsonl", uuid::Uuid::new_v4()));
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn hash_of(&self, email: &str) -> Option<String> {
        self.store
            .user_by_email(&Email::parse(email).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{email} exists"))
            .password_hash
    }

    async fn user_count(&self) -> usize {
        self.store.list_users(100_000, 0).await.unwrap().len()
    }
}

/// What `idp user import` answered.
struct Import {
    output: Output,
    summary: Value,
    stderr: String,
}

impl Import {
    fn of(output: Output) -> Self {
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let summary = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|_| panic!("a JSON summary: {stdout:?} {stderr}"));
        assert!(!stderr.contains("panicked"), "{stderr}");
        Self {
            output,
            summary,
            stderr,
        }
    }

    /// (imported, updated, linked, skipped, refused)
    fn counts(&self) -> (u64, u64, u64, u64, u64) {
        let n = |k: &str| self.summary[k].as_u64().unwrap();
        (
            n("imported"),
            n("updated"),
            n("linked"),
            n("skipped"),
            n("refused"),
        )
    }

    fn succeeded(&self) -> bool {
        self.output.status.success()
    }

    /// The reason printed for `line`.
    fn refusal(&self, line: usize) -> &str {
        let prefix = format!("line {line}: ");
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("line {line} refused: {}", self.stderr))
    }
}

/// The fixtures: (format, password, hash).
fn fixtures() -> Vec<(String, String, String)> {
    let text = include_str!("../../tests/fixtures/legacy-hashes/hashes.jsonl");
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            (s("format"), s("password"), s("hash"))
        })
        .collect()
}

fn fixture_lines() -> Vec<Value> {
    fixtures()
        .into_iter()
        .enumerate()
        .map(|(i, (format, _, hash))| {
            json!({
                "email": format!("{format}-{i}@Example.com"), "name": format!("Customer {i}"),
                "email_verified": true, "password_hash": hash,
                "created_at": "2019-03-04T05:06:07Z", "external_id": format!("c{i}"), "portal": "helix",
            })
        })
        .collect()
}

async fn every_fixture_format_is_imported_as_written_once_and_only_once(backend: Backend) {
    let d = Deployment::new(backend).await;
    let mut lines = fixture_lines();
    lines.push(json!({"email": "nopassword@example.com", "name": "No Password"}));
    let n = lines.len() as u64;
    let first = d.import(&lines, &[]);
    assert!(first.succeeded(), "{}", first.stderr);
    assert_eq!(first.counts(), (n, 0, 0, 0, 0));
    assert_eq!(first.summary["written"], true);
    assert!(
        !String::from_utf8_lossy(&first.output.stdout).contains('$'),
        "no hash is printed"
    );
    for (i, (format, _, hash)) in fixtures().into_iter().enumerate() {
        let email = format!("{format}-{i}@example.com");
        assert_eq!(
            d.hash_of(&email).await.as_deref(),
            Some(hash.as_str()),
            "{email}"
        );
    }
    assert_eq!(
        d.hash_of("nopassword@example.com").await,
        None,
        "no usable password yet"
    );

    let user = d
        .store
        .user_by_email(&Email::parse("bcrypt-2a-0@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.created_at.year(), 2019, "the portal's date is kept");
    assert!(user.email_verified);
    let events = d.store.audit_events(Some(&user.id), 10).await.unwrap();
    let event = events
        .iter()
        .find(|e| e.event.kind == "user.imported")
        .expect("audited as imported");
    assert_eq!(event.event.actor.as_deref(), Some("cli"));
    assert_eq!(event.event.detail["portal"], "helix");
    assert_eq!(event.event.detail["password_format"], "bcrypt");
    assert!(
        !event.event.detail.to_string().contains('$'),
        "never the hash"
    );

    // A second run of the same file changes nothing.
    let again = d.import(&lines, &[]);
    assert!(again.succeeded(), "{}", again.stderr);
    assert_eq!(again.counts(), (0, 0, 0, n, 0));
    let events_after = d.store.audit_events(Some(&user.id), 10).await.unwrap();
    assert_eq!(
        events_after.len(),
        events.len(),
        "nothing written, not even audit"
    );

    // With --update, the file's values win (here a new name and hash).
    let mut changed = lines.clone();
    changed[0]["name"] = json!("Renamed");
    changed[0]["password_hash"] = lines[1]["password_hash"].clone();
    let updated = d.import(&changed, &["--update"]);
    assert!(updated.succeeded(), "{}", updated.stderr);
    assert_eq!(updated.counts(), (0, n, 0, 0, 0));
    let first_email = changed[0]["email"].as_str().unwrap();
    assert_eq!(
        d.hash_of(first_email).await.as_deref(),
        lines[1]["password_hash"].as_str()
    );
    assert_eq!(d.user_count().await, n as usize);

    // An update from a thinner export (another portal's: address and hash
    // only) takes what it says and leaves what it does not say.
    let second = changed[1]["email"].as_str().unwrap();
    let before = d
        .store
        .user_by_email(&Email::parse(second).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        before.email_verified && !before.name.is_empty(),
        "{before:?}"
    );
    let thin = [json!({"email": second, "password_hash": lines[0]["password_hash"]})];
    let thinned = d.import(&thin, &["--update"]);
    assert_eq!(thinned.counts(), (0, 1, 0, 0, 0), "{}", thinned.stderr);
    let after = d
        .store
        .user_by_email(&Email::parse(second).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.name, before.name, "the name is kept");
    assert!(after.email_verified, "the address stays verified");
    assert_eq!(
        after.password_hash.as_deref(),
        lines[0]["password_hash"].as_str(),
        "the hash it gave is taken"
    );

    // A password already in use here (set here, or upgraded at a first
    // sign-in) is never replaced by a file's: a stale export cannot revert it.
    let own = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
    d.store
        .set_password_hash(&after.id, own, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let stale = d.import(&thin, &["--update"]);
    assert_eq!(stale.counts(), (0, 1, 0, 0, 0), "{}", stale.stderr);
    assert_eq!(d.hash_of(second).await.as_deref(), Some(own));

    // An administrator's account is not a file's to update.
    d.store
        .set_user_admin(&after.id, true, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let admin = d.import(&thin, &["--update"]);
    assert_eq!(admin.counts(), (0, 0, 0, 0, 1), "{}", admin.stderr);
    assert!(
        admin.stderr.contains("an administrator's account"),
        "{}",
        admin.stderr
    );
    assert_eq!(d.hash_of(second).await.as_deref(), Some(own));
}

async fn a_dry_run_reports_the_same_and_writes_nothing(backend: Backend) {
    let d = Deployment::new(backend).await;
    let mut lines = fixture_lines();
    lines.push(json!({"email": "bad@example.com", "password_hash": "md5:0123"}));
    let dry = d.import(&lines, &["--dry-run"]);
    let n = lines.len() as u64 - 1;
    assert_eq!(dry.counts(), (n, 0, 0, 0, 1));
    assert_eq!(dry.summary["written"], false);
    assert_eq!(dry.summary["dry_run"], true);
    assert!(!dry.succeeded(), "a refused line makes the exit status 1");
    assert_eq!(d.user_count().await, 0, "a dry run writes nothing");

    let real = d.import(&lines, &[]);
    assert_eq!(
        real.counts(),
        dry.counts(),
        "the same counts as the dry run"
    );
    assert_eq!(d.user_count().await, n as usize);
}

async fn bad_lines_are_refused_by_number_and_the_others_imported(backend: Backend) {
    let d = Deployment::new(backend).await;
    let bcrypt = &fixtures()[0].2;
    let good = |email: &str| json!({"email": email, "password_hash": bcrypt}).to_string();
    let mut file: Vec<u8> = Vec::new();
    for line in [
        good("one@example.com"),                     // 1
        "{\"email\": \"broken@example.com\"".into(), // 2
        String::new(),                               // 3: blank, ignored
        json!({"email": "unknown@example.com", "password_hash": "{MD5}X03MO1qnZdYdgyfeuILPmQ=="})
            .to_string(), // 4
        good("ONE@example.com"),                     // 5
        json!({"email": "elsewhere@example.com", "portal": "no-such-portal"}).to_string(), // 6
        json!({"email": "cost@example.com", "password_hash": bcrypt.replace("$04$", "$31$")})
            .to_string(), // 7
        json!({"email": "id1@example.com", "external_id": "7", "portal": "helix"}).to_string(), // 8
        json!({"email": "id2@example.com", "external_id": "7", "portal": "helix"}).to_string(), // 9
        json!({"email": "short@example.com", "totp_secret": "JBSWY3DP"}).to_string(), // 10
    ] {
        file.extend(line.as_bytes());
        file.push(b'\n');
    }
    file.extend(b"{\"email\": \"bad\xff\xfe@example.com\"}\n"); // 11
    file.extend(good("two@example.com").as_bytes()); // 12, no final newline
    let out = Import::of(d.idp(&["user", "import", "--file", "-"], &file));
    assert!(!out.succeeded());
    assert_eq!(out.counts(), (3, 0, 0, 0, 8), "{}", out.stderr);
    assert!(out.refusal(2).contains("malformed JSON"));
    assert!(
        out.refusal(4)
            .contains("not a password hash format we know")
    );
    assert!(out.refusal(5).contains("already on line 1"));
    assert!(
        out.refusal(6)
            .contains("no client or theme named no-such-portal")
    );
    assert!(out.refusal(7).contains("too costly"));
    assert!(out.refusal(9).contains("already on line 8"));
    assert!(out.refusal(10).contains("80 bits"));
    assert!(out.refusal(11).contains("not UTF-8"));
    assert!(
        out.stderr
            .contains("8 line(s) refused; the others were imported"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("X03MO1qnZdYdgyfeuILPmQ"),
        "hashes are not repeated"
    );
    for email in ["one@example.com", "id1@example.com", "two@example.com"] {
        assert!(
            d.store
                .user_by_email(&Email::parse(email).unwrap())
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(
        d.user_count().await,
        3,
        "nothing of a refused line is written"
    );

    // An external id taken by another account in the same portal.
    let clash = d.import(
        &[json!({"email": "id3@example.com", "external_id": "7", "portal": "helix"})],
        &[],
    );
    assert_eq!(clash.counts(), (0, 0, 0, 0, 1));
    assert!(clash.refusal(1).contains("belongs to another account"));

    // An unreadable file: one line, nothing else.
    let missing = d.idp(&["user", "import", "--file", "no-such-file.jsonl"], b"");
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: --file: cannot read no-such-file.jsonl"),
        "{err}"
    );
}

async fn all_or_nothing_writes_nothing_when_one_line_is_bad(backend: Backend) {
    let d = Deployment::new(backend).await;
    let mut lines = fixture_lines();
    lines.insert(
        50,
        json!({"email": "bad@example.com", "password_hash": "plain text"}),
    );
    let refused = d.import(&lines, &["--all-or-nothing"]);
    assert!(!refused.succeeded());
    assert_eq!(refused.counts().4, 1);
    assert!(refused.refusal(51).contains("password_hash"));
    assert_eq!(refused.summary["written"], false);
    assert!(
        refused.stderr.contains("nothing was written"),
        "{}",
        refused.stderr
    );
    assert_eq!(d.user_count().await, 0);

    lines.remove(50);
    let whole = d.import(&lines, &["--all-or-nothing"]);
    assert!(whole.succeeded(), "{}", whole.stderr);
    assert_eq!(d.user_count().await, lines.len());
}

async fn a_second_portal_links_its_external_id_and_keeps_the_password(backend: Backend) {
    let d = Deployment::new(backend).await;
    let (hash_a, hash_b) = (&fixtures()[0].2, &fixtures()[40].2);
    let first = d.import(
        &[json!({"email": "Jane@example.com", "password_hash": hash_a, "external_id": "A-1", "portal": "helix"})],
        &[],
    );
    assert_eq!(first.counts(), (1, 0, 0, 0, 0));
    let second = d.import(
        &[
            json!({"email": "jane@EXAMPLE.com", "password_hash": hash_b, "external_id": "B-9", "portal": "hosting"}),
            json!({"email": "jane@example.com", "external_id": "A-2", "portal": "helix"}),
        ],
        &[],
    );
    assert_eq!(second.counts(), (0, 0, 1, 0, 1), "{}", second.stderr);
    assert!(second.refusal(2).contains("already on line 1"));
    assert_eq!(
        d.hash_of("jane@example.com").await.as_deref(),
        Some(hash_a.as_str())
    );
    assert_eq!(d.user_count().await, 1, "one account per address");
    let accounts = d
        .store
        .existing_accounts(&["jane@example.com".to_owned()])
        .await
        .unwrap();
    let ids = &accounts["jane@example.com"].external_ids;
    assert_eq!(ids.get("helix").map(String::as_str), Some("A-1"));
    assert_eq!(ids.get("hosting").map(String::as_str), Some("B-9"));

    // Another id for a portal the account already has one in is refused.
    let other = d.import(
        &[json!({"email": "jane@example.com", "external_id": "A-2", "portal": "helix"})],
        &["--update"],
    );
    assert!(other.refusal(1).contains("already has the external id A-1"));
}

async fn a_line_of_2_gb_is_refused_in_bounded_time(backend: Backend) {
    let d = Deployment::new(backend).await;
    let path = d.dir.path().join("huge.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"{\"email\": \"before@example.com\"}\n")
        .unwrap();
    // A sparse file: 2 GB of one line of zero bytes, then a good line.
    f.set_len(2 << 30).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"\n{\"email\": \"after@example.com\"}\n")
        .unwrap();
    drop(f);
    let started = std::time::Instant::now();
    let out = Import::of(d.idp(&["user", "import", "--file", path.to_str().unwrap()], b""));
    let took = started.elapsed();
    assert_eq!(out.counts(), (2, 0, 0, 0, 1), "{}", out.stderr);
    assert!(out.refusal(2).contains("longer than 64 KiB"));
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
}

/// A sign-up between the look-up and the write (here: a write decided
/// without a look-up) collides; the batch is written again record by
/// record, so only the colliding one is left out. All or nothing: none is
/// written.
async fn a_record_that_collides_meanwhile_is_left_out_alone_or_stops_all_or_nothing(
    backend: Backend,
) {
    use idp::store::{AuditEvent, ImportAction, ImportWrite, ImportedUser};
    let d = Deployment::new(backend).await;
    let taken = d.import(&[json!({"email": "taken@example.com"})], &[]);
    assert_eq!(taken.counts(), (1, 0, 0, 0, 0));
    let now = time::OffsetDateTime::now_utc();
    let write = |email: &str| ImportWrite {
        action: ImportAction::Create,
        user: ImportedUser {
            id: idp::domain::UserId::generate(),
            email: Email::parse(email).unwrap(),
            name: None,
            email_verified: None,
            password_hash: None,
            created_at: now,
        },
        totp: None,
        external_id: None,
        audit: AuditEvent {
            kind: "user.imported".into(),
            user_id: None,
            actor: Some("test".into()),
            client_id: None,
            ip: None,
            user_agent: None,
            detail: json!({}),
        },
    };
    let writes = [
        write("first@example.com"),
        write("TAKEN@example.com"),
        write("third@example.com"),
    ];
    let whole = d.store.write_import(&writes, now, true).await;
    assert!(
        matches!(whole, Err(idp::store::Error::Conflict)),
        "{whole:?}"
    );
    assert_eq!(d.user_count().await, 1, "all or nothing: nothing");

    let collided = d.store.write_import(&writes, now, false).await.unwrap();
    assert_eq!(collided, [1]);
    assert_eq!(d.user_count().await, 3, "the two others are written");
}

fn env_url(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `bash scripts/test`, which starts PostgreSQL and Redis")
    })
}

/// A new, empty PostgreSQL database; returns its URL.
async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin = env_url("IDP_TEST_DATABASE_URL");
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    url.to_string()
}
