//! The configuration as a whole: the shipped files, the environment,
//! secrets from files, and that every check names its key.

use std::path::{Path, PathBuf};

use super::redis::parse_host_port;
use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(name)
}

#[test]
fn shipped_default_file_is_the_embedded_default() {
    let config = Config::load_from(Some(&shipped("idp.toml")), env(&[])).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.database.url.scheme(), Some("sqlite"));
    assert!(config.redis.url.is_none());
    assert_eq!(config.mail.transport, MailTransport::File);
}

#[test]
fn production_example_parses_and_validates() {
    let config = Config::load_from(Some(&shipped("production.example.toml")), env(&[])).unwrap();
    assert_eq!(config.database.url.scheme(), Some("postgres"));
    assert!(config.redis.url.is_some());
    assert_eq!(config.mail.transport, MailTransport::Smtp);
    assert!(!config.server.dev_mode);
}

#[test]
fn environment_overrides_nested_keys() {
    let config = Config::load_from(
        None,
        env(&[
            ("IDP__DATABASE__URL", "postgres://u:pw@127.0.0.1/idp"),
            ("IDP__SERVER__LISTEN", "127.0.0.1:0"),
            ("IDP__MAIL__SMTP__PORT", "2525"),
            ("IDP__REDIS__URL", "redis://127.0.0.1:6379"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(
        config.database.url.expose(),
        "postgres://u:pw@127.0.0.1/idp"
    );
    assert_eq!(config.server.listen.port(), 0);
    assert_eq!(config.mail.smtp.port, 2525);
    assert!(config.redis.url.is_some());
}

#[test]
fn secrets_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("smtp-password");
    std::fs::write(&file, "s3cr3t\n").unwrap();
    let config = Config::load_from(
        None,
        env(&[("IDP__MAIL__SMTP__PASSWORD_FILE", file.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(config.mail.smtp.password.unwrap().expose(), "s3cr3t");
}

#[test]
fn missing_secret_file_names_the_variable() {
    let err = Config::load_from(
        None,
        env(&[("IDP__MAIL__SMTP__PASSWORD_FILE", "/nonexistent/file")]),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("IDP__MAIL__SMTP__PASSWORD_FILE"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("idp.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n").unwrap();
    let err = Config::load_from(Some(&file), env(&[])).unwrap_err();
    assert!(err.to_string().contains("listne"), "{err}");
    let err = Config::load_from(None, env(&[("IDP__SERVER__NOPE", "1")])).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn validation_names_the_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("IDP__SERVER__DEV_MODE", "false")], "server.issuer"),
        (&[("IDP__DATABASE__URL", "mysql://x")], "database.url"),
        (&[("IDP__REDIS__URL", "http://x")], "redis.url"),
        (
            &[
                ("IDP__REDIS__URL", "redis://127.0.0.1:6379"),
                ("IDP__REDIS__SENTINEL__SERVICE", "mymaster"),
            ],
            "redis.sentinel",
        ),
        (
            &[("IDP__REDIS__SENTINEL__SERVICE", "mymaster")],
            "redis.sentinel.addresses",
        ),
        (
            &[
                ("IDP__REDIS__SENTINEL__ADDRESSES", "[\"sentinel-1\"]"),
                ("IDP__REDIS__SENTINEL__SERVICE", "mymaster"),
            ],
            "redis.sentinel.addresses",
        ),
        (
            &[("IDP__REDIS__SENTINEL__ADDRESSES", "[\"127.0.0.1:26379\"]")],
            "redis.sentinel.service",
        ),
        (
            &[("IDP__SERVER__REQUEST_TIMEOUT_SECS", "0")],
            "server.request_timeout_secs",
        ),
        (&[("IDP__LOG__LEVEL", "[[[")], "log.level"),
        (
            &[("IDP__MAIL__POLL_INTERVAL_MS", "5")],
            "mail.poll_interval_ms",
        ),
        (&[("IDP__MAIL__MAX_ATTEMPTS", "0")], "mail.max_attempts"),
        (
            &[("IDP__ACCOUNT__EMAIL_CHANGE_LINK_TTL_MINUTES", "1")],
            "account.email_change_link_ttl_minutes",
        ),
        (&[("IDP__KEYS__ROTATION_DAYS", "0")], "keys.rotation_days"),
        (
            &[("IDP__KEYS__PUBLISH_AHEAD_MINUTES", "5")],
            "keys.publish_ahead_minutes",
        ),
        (
            &[("IDP__KEYS__ENCRYPTION_KEY", "c2hvcnQ")],
            "keys.encryption_key",
        ),
        (&[("IDP__ADMIN__LISTEN", "0.0.0.0:8080")], "admin.listen"),
        (
            &[(
                "IDP__ADMIN__CONSOLE__URL",
                "https://admin.example.com/console/",
            )],
            "admin.console.url",
        ),
        (
            &[("IDP__ADMIN__CONSOLE__URL", "http://10.0.0.5:8081/admin/")],
            "admin.console.url",
        ),
        (
            &[(
                "IDP__ADMIN__CONSOLE__STANDALONE_URLS",
                "[\"http://admin.example.com/admin/\"]",
            )],
            "admin.console.standalone_urls",
        ),
        (
            &[(
                "IDP__ADMIN__CONSOLE__ALL_URLS",
                "[\"https://admin.example.com/console/\"]",
            )],
            "admin.console.all_urls",
        ),
        (
            &[("IDP__ADMIN__CONSOLE__CLIENT_SECRET", "short")],
            "admin.console.client_secret",
        ),
    ];
    for (vars, key) in cases {
        let err = Config::load_from(None, env(vars)).unwrap_err();
        assert!(err.to_string().contains(key), "{err} should name {key}");
    }
}

#[test]
fn a_sentinel_section_parses_with_its_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("idp.toml");
    std::fs::write(
        &file,
        "[redis.sentinel]\naddresses = [\"10.0.0.7:26379\", \"[::1]:26380\"]\n\
         service = \"mymaster\"\npassword = \"node-pw\"\nsentinel_password = \"s-pw\"\n",
    )
    .unwrap();
    let config = Config::load_from(Some(&file), env(&[])).unwrap();
    let sentinel = config.redis.sentinel.as_ref().unwrap();
    assert_eq!(
        sentinel.endpoints().unwrap(),
        [("10.0.0.7".to_owned(), 26379), ("::1".to_owned(), 26380)]
    );
    assert_eq!(sentinel.replica_ack_timeout_ms, 100);
    let shown = config.to_redacted_toml();
    assert!(
        !shown.contains("node-pw") && !shown.contains("s-pw"),
        "{shown}"
    );
    for bad in ["host", "host:0", ":26379", "::1:26379", "a b:1", "h:99999"] {
        assert!(parse_host_port(bad).is_none(), "{bad}");
    }
}

#[test]
fn https_issuer_is_accepted_outside_dev_mode() {
    let config = Config::load_from(
        None,
        env(&[
            ("IDP__SERVER__DEV_MODE", "false"),
            ("IDP__SERVER__ISSUER", "https://id.example.com"),
        ]),
    )
    .unwrap();
    assert!(!config.server.dev_mode);
}

#[test]
fn secrets_are_redacted_in_debug_and_output() {
    let mut config = Config::default();
    config.database.url = ConnectionUrl::new("postgres://idp:hunter2@db/idp");
    config.mail.smtp.password = Some(Secret::new("hunter3"));
    let debug = format!("{config:?}");
    let toml = config.to_redacted_toml();
    for shown in [debug, toml] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("hunter3"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}

mod captcha {
    use super::super::CaptchaConfig;

    #[test]
    fn validate_names_the_key() {
        assert_eq!(CaptchaConfig::default().validate(), Ok(()));
        for difficulty in [0, 29] {
            let config = CaptchaConfig {
                difficulty,
                ..CaptchaConfig::default()
            };
            assert_eq!(
                config.validate().unwrap_err(),
                "captcha.difficulty: must be between 1 and 28"
            );
        }
        let config = CaptchaConfig {
            ttl_secs: 0,
            ..CaptchaConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("captcha.ttl_secs:")
        );
    }
}

mod password_policy {
    use super::super::{PASSWORD_MAX_LENGTH as MAX_LENGTH, PasswordPolicyConfig};

    #[test]
    fn validate_names_the_key() {
        assert_eq!(PasswordPolicyConfig::default().validate(), Ok(()));
        let strength = PasswordPolicyConfig {
            min_strength: 5,
            ..PasswordPolicyConfig::default()
        };
        assert_eq!(
            strength.validate().unwrap_err(),
            "password_policy.min_strength: must be between 0 and 4"
        );
        for min_length in [0, MAX_LENGTH + 1] {
            let length = PasswordPolicyConfig {
                min_length,
                ..PasswordPolicyConfig::default()
            };
            assert!(
                length
                    .validate()
                    .unwrap_err()
                    .starts_with("password_policy.min_length:")
            );
        }
    }

    #[test]
    fn config_reads_partial_toml_with_defaults_and_refuses_unknown_keys() {
        let config: PasswordPolicyConfig = toml::from_str("require_digit = true").unwrap();
        assert_eq!(
            config,
            PasswordPolicyConfig {
                require_digit: true,
                ..PasswordPolicyConfig::default()
            }
        );
        assert!(toml::from_str::<PasswordPolicyConfig>("min_lenght = 9").is_err());
    }
}

mod retention {
    use crate::config::Config;

    fn load(vars: &[(&str, &str)]) -> Result<Config, String> {
        let env = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load_from(None, env).map_err(|e| e.to_string())
    }

    #[test]
    fn out_of_range_values_fail_with_the_key_name() {
        for (var, value, key) in [
            (
                "IDP__RETENTION__INTERVAL_MINUTES",
                "0",
                "retention.interval_minutes",
            ),
            ("IDP__RETENTION__BATCH_SIZE", "0", "retention.batch_size"),
            (
                "IDP__RETENTION__BATCH_SIZE",
                "1000000",
                "retention.batch_size",
            ),
            (
                "IDP__RETENTION__BATCH_PAUSE_MS",
                "60001",
                "retention.batch_pause_ms",
            ),
            (
                "IDP__RETENTION__SENT_MAIL_DAYS",
                "0",
                "retention.sent_mail_days",
            ),
            (
                "IDP__RETENTION__FAILED_MAIL_DAYS",
                "3651",
                "retention.failed_mail_days",
            ),
            (
                "IDP__RETENTION__AUDIT_DAYS",
                "36501",
                "retention.audit_days",
            ),
            (
                "IDP__RETENTION__REFRESH_TOKEN_DAYS",
                "0",
                "retention.refresh_token_days",
            ),
            ("IDP__RETENTION__LINK_DAYS", "0", "retention.link_days"),
        ] {
            let err = load(&[(var, value)]).unwrap_err();
            assert!(err.contains(key), "{var}={value}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn zero_audit_days_keeps_events_forever_and_defaults_validate() {
        let config = load(&[("IDP__RETENTION__AUDIT_DAYS", "0")]).unwrap();
        assert_eq!(config.retention.audit_days, 0);
        let config = load(&[]).unwrap();
        assert_eq!(config.retention.audit_days, 400);
        assert_eq!(config.retention.interval_minutes, 60);
    }
}
