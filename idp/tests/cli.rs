//! The `idp` binary as an operator uses it: real processes, real databases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use kit::Backend;

/// Runs `idp` with `--config` pointing at the shipped embedded default, in `dir`,
/// with the database (and Redis) of `db` in the environment.
fn idp(dir: &Path, db: &Db, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idp"));
    cmd.current_dir(dir)
        .arg("--config")
        .arg(shipped_config())
        .args(args)
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "1")
        .env("IDP__DATABASE__URL", &db.url)
        .env(
            "IDP__THEMES__DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../themes"),
        )
        .env("IDP__PASSWORD_HASHING__MEMORY_KIB", "8192")
        .env("IDP__PASSWORD_HASHING__ITERATIONS", "1");
    if let Some(redis) = &db.redis {
        cmd.env("IDP__REDIS__URL", redis)
            .env("IDP__REDIS__PREFIX", kit::fresh_redis_prefix());
    }
    cmd.output().expect("idp runs")
}

fn shipped_config() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/idp.toml")
}

struct Db {
    url: String,
    redis: Option<String>,
}

async fn fresh(backend: Backend, dir: &Path) -> Db {
    match backend {
        Backend::Postgres => Db {
            url: kit::fresh_postgres_database().await,
            redis: Some(kit::env_url("IDP_TEST_REDIS_URL")),
        },
        Backend::Sqlite => Db {
            url: format!("sqlite://{}", dir.join("data/idp.db").display()),
            redis: None,
        },
    }
}

/// `idp user create --email EMAIL --password PASSWORD MORE…`.
fn user_create(dir: &Path, db: &Db, email: &str, password: &str, more: &[&str]) -> Output {
    let mut args = vec!["user", "create", "--email", email, "--password", password];
    args.extend_from_slice(more);
    idp(dir, db, &args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failed command: non-zero exit, one line on stderr, no panic or backtrace.
fn assert_clean_failure(o: &Output, mentions: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err:?}"
    );
    assert!(err.starts_with("error: "), "{err:?}");
    assert!(
        err.contains(mentions),
        "{err:?} should mention {mentions:?}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err:?}"
    );
}

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn postgres_redis() {
                super::$name(crate::kit::Backend::Postgres).await
            }
            #[tokio::test]
            async fn sqlite_memory() {
                super::$name(crate::kit::Backend::Sqlite).await
            }
        }
    )+};
}

on_both_backends!(
    users_are_created_and_listed,
    bad_user_input_gets_one_line_errors,
    clients_are_created_with_a_secret_shown_once,
    bad_client_input_gets_one_line_errors,
    migrate_applies_and_reports,
    keys_are_listed_and_rotated,
    reset_mfa_turns_off_two_step_sign_in_and_tells_the_owner,
    administration_is_bootstrapped_from_the_cli,
);

async fn users_are_created_and_listed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(backend, dir.path()).await;
    let created = user_create(
        dir.path(),
        &db,
        " Jane@Example.COM",
        "correct horse battery",
        &["--name", "Jane Doe", "--verified"],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let json: Value = serde_json::from_str(&stdout(&created)).unwrap();
    assert_eq!(json["email"], "Jane@example.com");
    assert!(json["user_id"].as_str().unwrap().len() == 36);

    let listed = idp(dir.path(), &db, &["user", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let users: Vec<Value> = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], "Jane@example.com");
    assert_eq!(users[0]["name"], "Jane Doe");
    assert_eq!(users[0]["email_verified"], true);
    assert!(
        !stdout(&listed).contains("argon2"),
        "hashes are never listed"
    );
}

async fn bad_user_input_gets_one_line_errors(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(backend, dir.path()).await;
    let malformed = user_create(dir.path(), &db, "not-an-email", "long enough pw", &[]);
    assert_clean_failure(&malformed, "--email");

    let ok = user_create(dir.path(), &db, "jane@example.com", "long enough pw", &[]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let duplicate = user_create(dir.path(), &db, "JANE@example.com", "long enough pw", &[]);
    assert_clean_failure(&duplicate, "already exists");

    let listed = idp(dir.path(), &db, &["user", "list"]);
    assert_eq!(
        stdout(&listed).lines().count(),
        1,
        "the failures changed nothing"
    );
}

async fn clients_are_created_with_a_secret_shown_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(backend, dir.path()).await;
    let confidential = idp(
        dir.path(),
        &db,
        &[
            "client",
            "create",
            "--client-id",
            "support-portal",
            "--name",
            "Support Portal",
            "--redirect-uri",
            "https://support.example.com/cb",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--post-logout-redirect-uri",
            "https://support.example.com/",
            "--first-party",
            "--theme",
            "helix",
            "--require-mfa",
        ],
    );
    assert!(confidential.status.success(), "{}", stderr(&confidential));
    let json: Value = serde_json::from_str(&stdout(&confidential)).unwrap();
    assert_eq!(json["client_id"], "support-portal");
    let secret = json["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43, "256 bits, base64url");

    let public = idp(
        dir.path(),
        &db,
        &[
            "client",
            "create",
            "--client-id",
            "spa",
            "--name",
            "SPA",
            "--redirect-uri",
            "http://localhost:3000/cb",
            "--public",
        ],
    );
    assert!(public.status.success(), "{}", stderr(&public));
    let json: Value = serde_json::from_str(&stdout(&public)).unwrap();
    assert_eq!(json["client_secret"], Value::Null);

    let listed = idp(dir.path(), &db, &["client", "list"]);
    let out = stdout(&listed);
    assert!(!out.contains(secret), "the secret is never shown again");
    let clients: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(clients.len(), 2);
    let portal = clients
        .iter()
        .find(|c| c["client_id"] == "support-portal")
        .unwrap();
    assert_eq!(portal["redirect_uris"].as_array().unwrap().len(), 2);
    assert_eq!(portal["first_party"], true);
    assert_eq!(portal["theme"], "helix");
    assert_eq!(portal["require_mfa"], true);
    assert_eq!(portal["grant_types"].as_array().unwrap().len(), 3);
    let spa = clients.iter().find(|c| c["client_id"] == "spa").unwrap();
    assert_eq!(spa["kind"], "public");
    assert_eq!(spa["require_mfa"], false);
    assert_eq!(
        spa["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
}

async fn bad_client_input_gets_one_line_errors(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(backend, dir.path()).await;
    let base = [
        "client",
        "create",
        "--name",
        "Portal",
        "--redirect-uri",
        "https://p.example.com/cb",
    ];
    let with = |extra: &[&str]| -> Output {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        idp(dir.path(), &db, &args)
    };
    assert!(with(&["--client-id", "portal"]).status.success());
    assert_clean_failure(&with(&["--client-id", "portal"]), "already exists");
    assert_clean_failure(&with(&["--client-id", "bad id"]), "--client-id");
    assert_clean_failure(
        &with(&[
            "--client-id",
            "p2",
            "--redirect-uri",
            "http://evil.example.com/cb",
        ]),
        "--redirect-uri",
    );
    assert_clean_failure(
        &with(&["--client-id", "p3", "--grant", "password"]),
        "--grant",
    );
    assert_clean_failure(
        &with(&[
            "--client-id",
            "p4",
            "--public",
            "--grant",
            "client_credentials",
        ]),
        "public client",
    );
    assert_clean_failure(
        &with(&["--client-id", "p5", "--id-token-alg", "HS256"]),
        "--id-token-alg",
    );
    let listed = idp(dir.path(), &db, &["client", "list"]);
    assert_eq!(
        stdout(&listed).lines().count(),
        1,
        "the failures changed nothing"
    );
}

async fn migrate_applies_and_reports(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(backend, dir.path()).await;
    let out = idp(dir.path(), &db, &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("migrations applied"));
}

async fn keys_are_listed_and_rotated(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(backend, dir.path()).await;
    let list = |dir: &Path| -> Vec<Value> {
        let out = idp(dir, &db, &["keys", "list"]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let first = list(dir.path());
    assert_eq!(first.len(), 3, "{first:?}");
    let mut algs: Vec<&str> = first.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for key in &first {
        assert_eq!(key["state"], "active", "{key}");
        assert!(key["kid"].as_str().unwrap().len() >= 20, "{key}");
        let created = key["created_at"].as_str().unwrap();
        assert!(
            created.contains('T') && created.ends_with('Z'),
            "RFC 3339: {key}"
        );
        assert_eq!(key["retires_at"], Value::Null);
    }

    let rotated = idp(dir.path(), &db, &["keys", "rotate"]);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let new_kids: Vec<String> = stdout(&rotated)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(new_kids.len(), 3);

    let after = list(dir.path());
    assert_eq!(after.len(), 6, "{after:?}");
    let next: Vec<&Value> = after.iter().filter(|k| k["state"] == "next").collect();
    assert_eq!(next.len(), 3, "{after:?}");
    for key in next {
        assert!(
            new_kids.iter().any(|kid| key["kid"] == kid.as_str()),
            "{key}"
        );
    }
    for key in after.iter().filter(|k| k["state"] == "active") {
        // Still signing until the new ones activate, then published a day more.
        assert!(key["retires_at"].is_string(), "{key}");
        assert!(key["expires_at"].is_string(), "{key}");
    }
}

#[tokio::test]
async fn unreachable_database_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = kit::free_port();
    let db = Db {
        url: format!("postgres://idp:secret-pw@127.0.0.1:{port}/idp"),
        redis: None,
    };
    let out = Command::new(env!("CARGO_BIN_EXE_idp"))
        .current_dir(dir.path())
        .args(["user", "list"])
        .env("IDP__DATABASE__URL", &db.url)
        .env("IDP__DATABASE__CONNECT_TIMEOUT_SECS", "1")
        .output()
        .unwrap();
    assert_clean_failure(&out, "database");
    assert!(
        !stderr(&out).contains("secret-pw"),
        "the password is never printed"
    );
}

/// Sentinels that do not answer: `serve` stops at start-up with one line
/// naming the key, not a panic and not a server that is never ready.
#[test]
fn unreachable_sentinels_are_a_one_line_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let sentinels = format!(
        "[\"127.0.0.1:{}\", \"127.0.0.1:{}\"]",
        kit::free_port(),
        kit::free_port()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_idp"))
        .current_dir(dir.path())
        .arg("--config")
        .arg(shipped_config())
        .arg("serve")
        .env("IDP__SERVER__LISTEN", "127.0.0.1:0")
        .env("IDP__ADMIN__LISTEN", "127.0.0.1:0")
        .env(
            "IDP__THEMES__DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../themes"),
        )
        .env("IDP__REDIS__SENTINEL__ADDRESSES", &sentinels)
        .env("IDP__REDIS__SENTINEL__SERVICE", "mymaster")
        .env("IDP__REDIS__SENTINEL__PASSWORD", "node-secret-pw")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_clean_failure(&out, "redis.sentinel.addresses");
    assert!(stderr(&out).contains("mymaster"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("node-secret-pw"), "{}", stderr(&out));
}

#[test]
fn check_config_prints_effective_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_idp"))
        .current_dir(dir.path())
        .arg("--config")
        .arg(shipped_config())
        .arg("check-config")
        .env(
            "IDP__DATABASE__URL",
            "postgres://idp:hunter2@db.internal/idp",
        )
        // check-config loads the themes, as serve does.
        .env(
            "IDP__THEMES__DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../themes"),
        )
        .env("IDP__SERVER__LISTEN", "0.0.0.0:9999")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("listen = \"0.0.0.0:9999\""), "{text}");
    assert!(text.contains("db.internal"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn invalid_config_exits_1_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\ndev_mode = false\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_idp"))
        .arg("--config")
        .arg(&file)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_clean_failure(&out, "server.issuer");

    let missing = Command::new(env!("CARGO_BIN_EXE_idp"))
        .args(["--config", "/nonexistent/idp.toml", "check-config"])
        .output()
        .unwrap();
    assert_clean_failure(&missing, "/nonexistent/idp.toml");
}

/// The README's first command, in a fresh directory: `idp serve` on the
/// embedded default answers /healthz and /readyz, logs JSON when told to, and
/// stops cleanly on SIGTERM.
#[tokio::test]
async fn serve_runs_on_the_embedded_default_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = kit::free_port();
    let admin_port = kit::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_idp"))
        .current_dir(dir.path())
        .arg("--config")
        .arg(shipped_config())
        .arg("serve")
        .env("IDP__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("IDP__ADMIN__LISTEN", format!("127.0.0.1:{admin_port}"))
        .env("IDP__LOG__FORMAT", "json")
        .env(
            "IDP__THEMES__DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../themes"),
        )
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = None;
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            ready = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = ready.expect("the server answers");
    assert_eq!(ready.status(), 200);
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        dir.path().join("data/idp.db").exists(),
        "SQLite file created under data/"
    );
    // The admin API answers on its own port only.
    let openapi = "/admin/api/openapi.json";
    let admin = http
        .get(format!("http://127.0.0.1:{admin_port}{openapi}"))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    let public = http.get(format!("{base}{openapi}")).send().await.unwrap();
    assert_eq!(public.status(), 404);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "graceful shutdown exits 0: {:?}",
        out.status
    );
    let logs = stderr(&out);
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["message"] == "listening"), "{logs}");
    assert!(
        lines.iter().any(|l| l["message"] == "shutting down"),
        "{logs}"
    );
}

/// `idp user reset-mfa`: the user's authenticator and recovery codes are
/// gone, the owner gets a mail, the audit trail names the CLI; bad input
/// is a one-line error that changes nothing.
async fn reset_mfa_turns_off_two_step_sign_in_and_tells_the_owner(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(backend, dir.path()).await;
    let created = user_create(
        dir.path(),
        &db,
        "jane@example.com",
        "correct horse battery",
        &[],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let user_id: Value = serde_json::from_str(&stdout(&created)).unwrap();
    let user_id = idp::domain::UserId::from_trusted(user_id["user_id"].as_str().unwrap().into());

    let store = idp::store::connect(&idp::config::DatabaseConfig {
        url: idp::config::ConnectionUrl::new(db.url.clone()),
        ..idp::config::DatabaseConfig::default()
    })
    .await
    .unwrap();
    let no_mfa = idp(
        dir.path(),
        &db,
        &["user", "reset-mfa", "--email", "jane@example.com"],
    );
    assert_clean_failure(&no_mfa, "has no two-step sign-in");

    // Jane turned TOTP on (as the /account/mfa page does through the store).
    let now = time::OffsetDateTime::now_utc();
    let totp = idp::store::NewTotp {
        secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into(),
        secret_encrypted: false,
        digits: 6,
        period_secs: 30,
    };
    assert!(
        store
            .start_totp_enrolment(&user_id, totp, now)
            .await
            .unwrap()
    );
    let hashes: Vec<String> = (0..10).map(|i| format!("hash-{i}")).collect();
    assert!(store.confirm_totp(&user_id, 1, &hashes, now).await.unwrap());

    let unknown = idp(
        dir.path(),
        &db,
        &["user", "reset-mfa", "--email", "nobody@example.com"],
    );
    assert_clean_failure(&unknown, "no account has the address");
    let malformed = idp(
        dir.path(),
        &db,
        &["user", "reset-mfa", "--email", "not-an-email"],
    );
    assert_clean_failure(&malformed, "--email");
    assert!(
        store.totp_credential(&user_id).await.unwrap().is_some(),
        "bad input changed nothing"
    );

    let reset = idp(
        dir.path(),
        &db,
        &["user", "reset-mfa", "--email", "Jane@Example.com"],
    );
    assert!(reset.status.success(), "{}", stderr(&reset));
    let out: Value = serde_json::from_str(&stdout(&reset)).unwrap();
    assert_eq!(out["mfa"], "reset");
    assert!(store.totp_credential(&user_id).await.unwrap().is_none());
    assert_eq!(store.recovery_codes_remaining(&user_id).await.unwrap(), 0);
    let mail = store.list_mail(None, 10).await.unwrap();
    assert!(
        mail.iter().any(|m| m.mail.recipient == "jane@example.com"
            && m.mail.subject.to_lowercase().contains("two-step")),
        "the owner is told: {:?}",
        mail.iter().map(|m| &m.mail.subject).collect::<Vec<_>>()
    );
    let events = store.audit_events(Some(&user_id), 10).await.unwrap();
    let event = events
        .iter()
        .find(|e| e.event.kind == "mfa.reset")
        .expect("audited");
    assert_eq!(event.event.actor.as_deref(), Some("cli"));
}

/// The first administrator and an automation client come from the CLI:
/// `user create --admin`, `user grant-admin`, `client create --scope admin`,
/// each role given audited with the actor `cli`.
async fn administration_is_bootstrapped_from_the_cli(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(backend, dir.path()).await;
    let root = user_create(
        dir.path(),
        &db,
        "root@example.com",
        "correct horse battery",
        &["--admin"],
    );
    assert!(root.status.success(), "{}", stderr(&root));
    let root: Value = serde_json::from_str(&stdout(&root)).unwrap();
    assert_eq!(root["admin"], true);
    let jane = user_create(
        dir.path(),
        &db,
        "jane@example.com",
        "correct horse battery",
        &[],
    );
    assert!(jane.status.success(), "{}", stderr(&jane));
    let granted = idp(
        dir.path(),
        &db,
        &["user", "grant-admin", "--email", "JANE@example.com"],
    );
    assert!(granted.status.success(), "{}", stderr(&granted));
    let listed = idp(dir.path(), &db, &["user", "list"]);
    let admins: Vec<Value> = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|u| u["admin"] == true)
        .collect();
    assert_eq!(admins.len(), 2, "{}", stdout(&listed));
    let nobody = idp(
        dir.path(),
        &db,
        &["user", "grant-admin", "--email", "nobody@example.com"],
    );
    assert_clean_failure(&nobody, "nobody@example.com");

    let bot = idp(
        dir.path(),
        &db,
        &[
            "client",
            "create",
            "--client-id",
            "ops-bot",
            "--name",
            "Ops bot",
            "--grant",
            "client_credentials",
            "--scope",
            "admin",
        ],
    );
    assert!(bot.status.success(), "{}", stderr(&bot));
    let unknown = idp(
        dir.path(),
        &db,
        &[
            "client",
            "create",
            "--client-id",
            "x",
            "--name",
            "X",
            "--grant",
            "client_credentials",
            "--scope",
            "root",
        ],
    );
    assert_clean_failure(&unknown, "unknown scope root");
    let clients = idp(dir.path(), &db, &["client", "list"]);
    let bot: Value = serde_json::from_str(stdout(&clients).lines().next().unwrap()).unwrap();
    assert_eq!(bot["client_id"], "ops-bot");
    assert_eq!(bot["scopes"], serde_json::json!(["admin"]));

    let store = idp::store::connect(&idp::config::DatabaseConfig {
        url: idp::config::ConnectionUrl::new(db.url.clone()),
        ..idp::config::DatabaseConfig::default()
    })
    .await
    .unwrap();
    let events: Vec<(String, Option<String>)> = store
        .audit_events(None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event.kind, e.event.actor))
        .collect();
    let granted = ("admin.admin_granted".to_string(), Some("cli".to_string()));
    assert_eq!(events, [granted.clone(), granted], "jane, then root");
}

/// `idp` with a configuration file written for the test, in `dir`.
fn with_config(dir: &Path, toml: &str, args: &[&str]) -> Output {
    let file = dir.join("idp.toml");
    std::fs::write(&file, toml).unwrap();
    Command::new(env!("CARGO_BIN_EXE_idp"))
        .current_dir(dir)
        .arg("--config")
        .arg(&file)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// No Rust type name, no figment profile, in anything an operator reads.
fn assert_no_type_names(o: &Output) {
    let err = stderr(o);
    for leak in [
        "alloc::",
        "figment::",
        "::",
        "struct ",
        "u64",
        "default.",
        "global.",
        "TOML file",
    ] {
        assert!(!err.contains(leak), "{leak:?} shown: {err:?}");
    }
}

#[test]
fn configuration_errors_read_as_words_with_the_key_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let wrong_type = with_config(
        dir.path(),
        "[server]\nrequest_timeout_secs = \"abc\"\n",
        &["check-config"],
    );
    assert_clean_failure(
        &wrong_type,
        "server.request_timeout_secs: expected a whole number",
    );
    assert!(
        stderr(&wrong_type).contains("found \"abc\" (in "),
        "{}",
        stderr(&wrong_type)
    );
    assert_no_type_names(&wrong_type);

    let section = with_config(dir.path(), "server = 3\n", &["check-config"]);
    assert_clean_failure(&section, "server: expected a table of settings");
    assert_no_type_names(&section);

    let unknown = with_config(dir.path(), "[server]\nbogus = 1\n", &["check-config"]);
    assert_clean_failure(&unknown, "server: unknown key bogus");
    assert!(stderr(&unknown).contains("known keys: listen, issuer"));
    assert_no_type_names(&unknown);

    // From the environment: the variable is named, not a Rust tuple type.
    let env = Command::new(env!("CARGO_BIN_EXE_idp"))
        .current_dir(dir.path())
        .arg("--config")
        .arg(shipped_config())
        .arg("check-config")
        .env("IDP__SERVER__LISTEN", "[1]")
        .output()
        .unwrap();
    assert_clean_failure(&env, "server.listen: expected an address and port");
    assert!(
        stderr(&env).contains("(from IDP__SERVER__LISTEN)"),
        "{}",
        stderr(&env)
    );
    assert_no_type_names(&env);

    // A section's own rule: its key once, not "password_policy: password_policy...".
    let rule = with_config(
        dir.path(),
        "[password_policy]\nmin_strength = 9\n",
        &["check-config"],
    );
    assert_clean_failure(
        &rule,
        "error: invalid configuration: password_policy.min_strength: must be between 0 and 4",
    );
    assert!(!stderr(&rule).contains("password_policy: password_policy"));
}

#[test]
fn a_toml_syntax_error_keeps_its_caret_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = with_config(dir.path(), "[server]\nlisten = \"x\n", &["check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.trim_end().lines().collect();
    assert!(
        lines[0].starts_with("error: invalid configuration: ")
            && lines[0].ends_with("TOML syntax error at line 2, column 12"),
        "{err}"
    );
    assert!(lines.contains(&"2 | listen = \"x"), "{err}");
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start_matches([' ', '|']).starts_with('^')),
        "the caret line: {err}"
    );
    assert!(
        !err.contains("TOML file") && !err.contains("default."),
        "{err}"
    );
}

#[test]
fn check_config_fails_without_the_themes_folder_as_serve_does() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_idp"))
        .current_dir(dir.path())
        .arg("--config")
        .arg(shipped_config())
        .arg("check-config")
        .output()
        .unwrap();
    assert_clean_failure(&out, "themes.dir: there is no themes folder at themes");
}

#[tokio::test]
async fn client_create_refuses_an_unknown_theme_and_an_unknown_grant_naming_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(Backend::Sqlite, dir.path()).await;
    let base = [
        "client",
        "create",
        "--client-id",
        "p",
        "--name",
        "P",
        "--redirect-uri",
        "https://p.example.com/cb",
    ];
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        idp(dir.path(), &db, &args)
    };
    let theme = with(&["--theme", "nope"]);
    assert_clean_failure(&theme, "--theme: no theme named nope is installed");
    assert!(
        stderr(&theme).contains("; installed: ") && stderr(&theme).contains("default, "),
        "{}",
        stderr(&theme)
    );
    assert!(stderr(&theme).contains("helix"), "{}", stderr(&theme));
    let grant = with(&["--grant", "password"]);
    assert_clean_failure(
        &grant,
        "--grant: unknown grant type password; valid: authorization_code, refresh_token, client_credentials",
    );
    let claim = with(&["--external-id-claim", "sub"]);
    assert_clean_failure(
        &claim,
        "external_id_claim cannot be sub: it is a registered OpenID Connect or JWT claim",
    );
    let listed = idp(dir.path(), &db, &["client", "list"]);
    assert_eq!(stdout(&listed).lines().count(), 0, "nothing registered");

    // A portal that reads its own customer number from the tokens.
    let made = with(&["--external-id-claim", "whmcs_client_id"]);
    assert!(made.status.success(), "{}", stderr(&made));
    let listed = idp(dir.path(), &db, &["client", "list"]);
    let client: serde_json::Value = serde_json::from_str(stdout(&listed).trim()).unwrap();
    assert_eq!(client["external_id_claim"], "whmcs_client_id");
}

#[tokio::test]
async fn user_create_applies_the_password_policy_and_reads_the_password_from_a_file_or_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(Backend::Sqlite, dir.path()).await;
    let weak = user_create(dir.path(), &db, "weak@example.com", "password1", &[]);
    assert_clean_failure(&weak, "the password does not meet the password policy");

    let file = dir.path().join("pw");
    std::fs::write(&file, "Tr0ub4dor-horse-staple-93\n").unwrap();
    let from_file = idp(
        dir.path(),
        &db,
        &[
            "user",
            "create",
            "--email",
            "file@example.com",
            "--password-file",
            file.to_str().unwrap(),
        ],
    );
    assert!(from_file.status.success(), "{}", stderr(&from_file));

    for flags in [&["--password-stdin"][..], &["--password-file", "-"][..]] {
        let email = format!("stdin{}@example.com", flags.len());
        let mut args = vec!["user", "create", "--email", email.as_str()];
        args.extend_from_slice(flags);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_idp"));
        cmd.current_dir(dir.path())
            .arg("--config")
            .arg(shipped_config())
            .args(&args)
            .env("IDP__DATABASE__URL", &db.url)
            .env("IDP__PASSWORD_HASHING__MEMORY_KIB", "8192")
            .env("IDP__PASSWORD_HASHING__ITERATIONS", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"Quartz-lantern-Orbit-57\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{flags:?}: {}", stderr(&out));
    }
    let listed = idp(dir.path(), &db, &["user", "list"]);
    assert_eq!(stdout(&listed).lines().count(), 3, "{}", stdout(&listed));
}

#[test]
fn a_command_outside_a_deployment_says_which_database_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_idp"))
            .current_dir(dir.path())
            .args(["user", "list"])
            .env_remove("IDP__DATABASE__URL")
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(
        stderr(&first),
        "note: no config/idp.toml here and no database configured: using the embedded database at data/idp.db (created)\n"
    );
    let second = run();
    assert!(
        stderr(&second).ends_with("data/idp.db (existing)\n"),
        "{}",
        stderr(&second)
    );
}

/// What these tests need of the black-box test kit (the `tests` crate),
/// written here: `tests` depends on `idp`, so `idp` does not depend on it.
mod kit {
    use std::net::TcpListener;

    use sqlx::Connection;

    /// The two deployments every command is checked on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Backend {
        /// PostgreSQL + Redis: production.
        Postgres,
        /// SQLite + in-process ephemeral store: the embedded default.
        Sqlite,
    }

    pub fn env_url(name: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with `bash scripts/test`, which starts PostgreSQL and Redis")
        })
    }

    /// A new, empty PostgreSQL database; returns its URL.
    pub async fn fresh_postgres_database() -> String {
        let admin = env_url("IDP_TEST_DATABASE_URL");
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to test PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("IDP_TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        url.to_string()
    }

    /// A key prefix no other test uses.
    pub fn fresh_redis_prefix() -> String {
        format!("test:{}:", uuid::Uuid::new_v4().simple())
    }

    /// A loopback port nobody listens on right now.
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }
}
