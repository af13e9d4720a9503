//! What the ephemeral store holds must not open anything: a copy of Redis
//! (a dump, a replica, a backup) or of the in-process store must not contain
//! the bearer secrets a browser holds: its session id, its pending second
//! step's id, the id of its authorization request in progress.

use reqwest::StatusCode;
use tests::browser::{NewClient, Page, register_client};

use crate::{Backend, TestApp};

on_both_backends!(no_bearer_secret_of_a_browser_is_stored_raw);

const EMAIL: &str = "jane@example.com";
const PW: &str = "Correct-Horse-Battery-9";
const CB: &str = "https://portal.example.com/cb";

/// The value of the cookie whose name ends with `suffix` set by `page`.
fn set_cookie(page: &Page, suffix: &str) -> Option<String> {
    page.headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let (name, rest) = c.split_once('=')?;
            let value = rest.split(';').next().unwrap_or("");
            (name.ends_with(suffix) && !value.is_empty()).then(|| value.to_owned())
        })
}

/// Every key and value of the app's ephemeral store, as text.
async fn store_dump(app: &TestApp) -> Vec<(String, String)> {
    app.state
        .ephemeral
        .raw()
        .entries()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

fn assert_absent(dump: &[(String, String)], what: &str, secret: &str) {
    assert!(secret.len() >= 32, "{what}: {secret:?} is not a secret");
    for (key, value) in dump {
        assert!(!key.contains(secret), "{what} stored raw in the key {key}");
        assert!(
            !value.contains(secret),
            "{what} stored raw in the value of {key}: {value}"
        );
    }
}

async fn no_bearer_secret_of_a_browser_is_stored_raw(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, "Jane Doe").await;
    register_client(
        &app,
        NewClient {
            require_mfa: true,
            ..NewClient::app("vault", "Vault", CB)
        },
    )
    .await;

    // A browser with a session.
    let session_id = app.signed_in(EMAIL, PW).await;
    assert_eq!(app.page("/account").await.status, StatusCode::OK);

    // Another browser halfway through a sign-in for an app that needs the
    // second step: an authorization request and a pending sign-in.
    let other = app.other_browser();
    let authorize = format!(
        "/authorize?response_type=code&client_id=vault&redirect_uri={}&scope=openid&state=s1",
        url::form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>()
    );
    let to_login = other.page(&authorize).await;
    assert_eq!(
        to_login.status,
        StatusCode::SEE_OTHER,
        "{}",
        to_login.text()
    );
    let login_url = to_login.location.clone().unwrap();
    let req = url::Url::parse(&other.url("/"))
        .unwrap()
        .join(&login_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "req")
        .map(|(_, v)| v.into_owned())
        .expect("the sign-in page carries the request id");
    let form = other.page(&login_url).await;
    let answer = other
        .submit_on(&form, "/login", &[("email", EMAIL), ("password", PW)])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    let pending_id = set_cookie(&answer, "idp_mfa").expect("a pending second step");
    // The pending step is live: its page opens.
    let next = answer.location.clone().unwrap();
    assert_eq!(other.page(&next).await.status, StatusCode::OK);

    let dump = store_dump(&app).await;
    assert!(!dump.is_empty());
    assert_absent(&dump, "the session id", &session_id);
    assert_absent(&dump, "the authorization request id", &req);
    assert_absent(&dump, "the pending sign-in id", &pending_id);

    // Everything still works from the hashed keys: the session page, and an
    // administrator's view of the sessions by handle.
    assert_eq!(app.page("/account").await.status, StatusCode::OK);
    let user = app
        .state
        .store
        .user_by_email(&idp::domain::Email::parse(EMAIL).unwrap())
        .await
        .unwrap()
        .unwrap();
    let sessions = idp::web::session::list(&app.state, &user.id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].handle, idp::web::session::handle(&session_id));
}
