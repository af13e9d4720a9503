//! Imported accounts as their owners meet them (issue 15): a two-step
//! sign-in brought over from the portal works at once. The import itself
//! (every hash format, idempotence, bad input) is checked through the
//! command line in idp/tests/import.rs.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::{Backend, TestApp};

on_both_backends!(an_imported_80_bit_authenticator_works_at_once_and_is_sealed_at_rest);

const EMAIL: &str = "imported@example.com";
/// The argon2id fixture of tests/fixtures/legacy-hashes (argon2-cffi).
const HASH: &str = "$argon2id$v=19$m=64,t=1,p=1$M82OBR0pPhMqt92DO17aBQ$ZK8kbh5623L/4N+RCuhb5lZLwnr+QckVuQhq4/Yz5Qo";
const PASSWORD: &str = "correct horse battery staple";
/// 80 bits, as older systems issued (pyotp's fixture, tests/fixtures/legacy-hashes/totp.jsonl).
const SECRET: &str = "33VZEXI5ORWAKYWH";

async fn an_imported_80_bit_authenticator_works_at_once_and_is_sealed_at_rest(backend: Backend) {
    let kek = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let app = TestApp::spawn_with(backend, |c| {
        c.keys.encryption_key = Some(idp::config::Secret::new(kek));
    })
    .await;
    let store = app.state.store.as_ref();
    let portals = idp::migration::Portals::new(["default".to_owned()]);
    let target = idp::migration::Target {
        store,
        kek: app.state.kek.as_deref(),
        portals: &portals,
        now: app.clock_now(),
        actor: "test",
    };
    let line = json!({
        "email": EMAIL, "name": "Imported Ida", "email_verified": true,
        "password_hash": HASH, "totp_secret": SECRET.to_lowercase(),
        "external_id": "1001", "portal": "default",
    });
    let records = [(1, idp::migration::parse_line(line.to_string().as_bytes()))];
    let options = idp::migration::ImportOptions::default();
    let summary = idp::migration::import(&target, records, &options, &mut |_: usize| {})
        .await
        .unwrap();
    assert_eq!(
        (summary.imported, summary.refused.len()),
        (1, 0),
        "{summary:?}"
    );

    let user = store
        .user_by_email(&idp::domain::Email::parse(EMAIL).unwrap())
        .await
        .unwrap()
        .expect("imported");
    let stored = store
        .totp_credential(&user.id)
        .await
        .unwrap()
        .expect("an authenticator");
    assert!(stored.is_active(), "confirmed: it is in use already");
    assert!(stored.secret_encrypted, "sealed like an enrolled one");
    assert!(!stored.secret.contains(SECRET) && !stored.secret.contains(&SECRET[..8]));

    let browser = app.other_browser();
    let answer = browser.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    let to = answer.location.clone().unwrap_or_default();
    assert!(
        to.ends_with("/login/otp"),
        "the second step is asked for: {to}"
    );
    let form = browser.page("/login/otp").await;
    let wrong = browser
        .submit_on(&form, "/login/otp", &[("code", "000000")])
        .await;
    assert_ne!(
        wrong.status,
        StatusCode::SEE_OTHER,
        "a wrong code is refused"
    );
    let form = browser.page("/login/otp").await;
    let code = tests::totp::code_at(SECRET, app.clock_now());
    let done = browser
        .submit_on(&form, "/login/otp", &[("code", &code)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    let account = browser.page("/account").await;
    assert_eq!(
        account.status,
        StatusCode::OK,
        "signed in with the imported code"
    );

    let events = store.audit_events(Some(&user.id), 20).await.unwrap();
    let imported = events
        .iter()
        .find(|e| e.event.kind == "user.imported")
        .expect("the import is audited");
    assert_eq!(imported.event.actor.as_deref(), Some("test"));
    assert_eq!(imported.event.detail["portal"], "default");
    assert_eq!(imported.event.detail["password_format"], "argon2id");
    assert_eq!(imported.event.detail["totp"], true);
    let detail = imported.event.detail.to_string();
    assert!(
        !detail.contains(HASH) && !detail.contains(SECRET),
        "{detail}"
    );
}
