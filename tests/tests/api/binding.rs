//! Pending flow state belongs to the browser that started it and to the
//! person it was decided for (security issue, hole 1), and the pages whose
//! forms end a flow let the browser reach that flow's client and no other
//! (Chromium applies CSP `form-action` to every redirect after a POST).
//! Attacks are played with two browsers (two cookie jars), as an attacker
//! would: a `req` link handed to a victim opens nothing for them.

use reqwest::StatusCode;
use tests::TestApp;
use tests::browser::{NewClient, Page, register_client};
use tests::signin::resolve;

use crate::Backend;

on_both_backends!(
    a_consent_given_in_one_browser_does_not_issue_a_code_in_another,
    a_consent_counts_only_for_the_person_who_gave_it,
    flow_pages_let_their_forms_end_at_the_client_and_nowhere_else,
    an_address_csp_cannot_name_ends_on_a_page_with_a_link,
    the_captcha_is_not_chosen_by_the_form,
    a_native_app_is_sent_back_to_the_loopback_port_it_listens_on,
    a_confidential_client_can_be_made_to_require_pkce,
);

const PW: &str = "Correct-Horse-Battery-9";
const EVIL_CB: &str = "https://evil.example/cb";

fn authorize(client: &str, redirect_uri: &str, extra: &str) -> String {
    format!(
        "/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid%20email%20offline_access&state=s1&nonce=n1{extra}",
        url::form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect::<String>()
    )
}

/// Follows redirects on the provider from `path`; returns the page that ends them.
async fn follow(browser: &TestApp, path: &str) -> Page {
    let mut next = browser.url(path);
    for _ in 0..8 {
        let page = browser.page_at(&next).await;
        match page.location.clone() {
            Some(to) if page.status.is_redirection() => {
                let to = resolve(&page.url, &to);
                if !to.starts_with(&browser.url("/")) {
                    return page;
                }
                next = to;
            }
            _ => return page,
        }
    }
    panic!("too many redirects from {path}");
}

fn req_of(location: &str) -> String {
    url::Url::parse(&format!("http://x{location}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "req")
        .map(|(_, v)| v.into_owned())
        .expect("a req parameter")
}

/// The attacker's own third-party client, and a request they start for it
/// with `prompt=consent`, signed in as themselves, Allow pressed and the
/// redirect not followed. Returns the `req`.
async fn attacker_consents(app: &TestApp, attacker: &TestApp) -> String {
    register_client(
        app,
        NewClient {
            first_party: false,
            ..NewClient::app("evil-app", "Totally Normal App", EVIL_CB)
        },
    )
    .await;
    app.create_user("mallory@example.com", PW, "Mallory").await;
    let start = attacker
        .page(&authorize("evil-app", EVIL_CB, "&prompt=consent"))
        .await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.text());
    let login = start.location.clone().unwrap();
    let req = req_of(&login);
    let signed_in = attacker
        .submit(
            &login,
            "/login",
            &[("email", "mallory@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text()
    );
    let consent = follow(attacker, signed_in.location.as_deref().unwrap()).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    assert!(consent.url.contains("/consent"), "{}", consent.url);
    let allowed = attacker
        .submit_on(&consent, "/consent", &[("decision", "allow")])
        .await;
    assert_eq!(allowed.status, StatusCode::SEE_OTHER, "{}", allowed.text());
    req
}

/// Hole 1: the attacker's consented request, sent to a signed-in victim as
/// a plain link, issued the victim's code to the attacker's client.
async fn a_consent_given_in_one_browser_does_not_issue_a_code_in_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let attacker = app.other_browser();
    let req = attacker_consents(&app, &attacker).await;

    let victim = app.other_browser();
    app.create_user("victim@example.com", PW, "Victim").await;
    victim.signed_in("victim@example.com", PW).await;
    for path in [
        format!("/authorize/continue?req={req}"),
        format!("/consent?req={req}"),
        format!("/login?req={req}"),
    ] {
        let answer = victim.page(&path).await;
        assert!(
            !answer
                .location
                .as_deref()
                .is_some_and(|l| l.starts_with(EVIL_CB)),
            "{path} sent the victim's code to the attacker: {:?}",
            answer.location
        );
        assert!(
            !answer.text().contains("Totally Normal App") || path.starts_with("/login"),
            "{path} shows the attacker's request to the victim"
        );
    }
    let expired = victim.page(&format!("/authorize/continue?req={req}")).await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST);
    assert!(expired.text().contains("expired"), "{}", expired.text());
    // Signing in with the attacker's req continues nothing either.
    let signin = victim
        .submit(
            &format!("/login?req={req}"),
            "/login",
            &[("email", "victim@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(signin.status, StatusCode::SEE_OTHER);
    assert!(
        !signin
            .location
            .as_deref()
            .unwrap_or("")
            .contains("/authorize/continue"),
        "{:?}",
        signin.location
    );
    // Nothing was granted in the victim's name.
    let grants = victim.page("/account/grants").await;
    assert!(
        !grants.text().contains("Totally Normal App"),
        "{}",
        grants.text()
    );
    // The attacker's own browser still finishes its own request.
    let own = attacker
        .page(&format!("/authorize/continue?req={req}"))
        .await;
    assert!(
        own.location
            .as_deref()
            .is_some_and(|l| l.starts_with(EVIL_CB)),
        "{:?} {}",
        own.location,
        own.text()
    );
}

/// Hole 1, same browser: a consent given by one person does not carry over
/// to the next person signed in to that browser.
async fn a_consent_counts_only_for_the_person_who_gave_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = app.other_browser();
    let req = attacker_consents(&app, &browser).await;
    // Someone else signs in on this browser (a shared computer).
    app.create_user("next@example.com", PW, "Next Person").await;
    browser.signed_in("next@example.com", PW).await;
    let answer = follow(&browser, &format!("/authorize/continue?req={req}")).await;
    assert!(
        !answer
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with(EVIL_CB)),
        "a code for the next person without their consent: {:?}",
        answer.location
    );
    assert!(
        answer.url.contains("/consent"),
        "the next person is asked: {} {}",
        answer.url,
        answer.text()
    );
}

/// The answer is a redirect whose address starts with `prefix`.
fn assert_redirects_to(page: &Page, prefix: &str) {
    assert!(
        page.location
            .as_deref()
            .is_some_and(|l| l.starts_with(prefix)),
        "{:?}",
        page.location
    );
}

fn form_action(page: &Page) -> String {
    let csp = page
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    csp.split(';')
        .map(str::trim)
        .find(|d| d.starts_with("form-action"))
        .unwrap_or_default()
        .to_owned()
}

/// Issue "Real browsers", item 1, as far as HTTP can see it: each page whose
/// form can end a flow names the flow's client in `form-action`, and only it.
async fn flow_pages_let_their_forms_end_at_the_client_and_nowhere_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = app.other_browser();
    app.create_user("jane@example.com", PW, "Jane").await;
    register_client(
        &app,
        NewClient {
            first_party: false,
            post_logout_redirect_uri: Some("https://portal.example.com/bye"),
            ..NewClient::portal("portal", "helix")
        },
    )
    .await;
    register_client(
        &app,
        NewClient::app("native", "Phone App", "com.example.app:/cb"),
    )
    .await;
    let plain = browser.page("/login").await;
    assert_eq!(form_action(&plain), "form-action 'self'");

    let login = follow(
        &browser,
        &authorize("portal", "https://portal.example.com/cb", ""),
    )
    .await;
    assert!(login.url.contains("/login?req="), "{}", login.url);
    assert_eq!(
        form_action(&login),
        "form-action 'self' https://portal.example.com"
    );
    // A mistake re-renders the form: still allowed to end there.
    let wrong = browser
        .submit(
            &login.url.replace(&browser.url(""), ""),
            "/login",
            &[("email", "jane@example.com"), ("password", "not-it-at-all")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        form_action(&wrong),
        "form-action 'self' https://portal.example.com"
    );
    let ok = browser
        .submit_on(
            &wrong,
            "/login",
            &[("email", "jane@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    let consent = follow(&browser, ok.location.as_deref().unwrap()).await;
    assert!(consent.url.contains("/consent"), "{}", consent.url);
    assert_eq!(
        form_action(&consent),
        "form-action 'self' https://portal.example.com"
    );
    let done = browser
        .submit_on(&consent, "/consent", &[("decision", "allow")])
        .await;
    let back = follow(&browser, done.location.as_deref().unwrap()).await;
    assert!(
        back.location
            .as_deref()
            .is_some_and(|l| l.starts_with("https://portal.example.com/cb?code=")),
        "{:?}",
        back.location
    );

    // A native app's private-use scheme is named by its scheme.
    let other = app.other_browser();
    let native = follow(&other, &authorize("native", "com.example.app:/cb", "")).await;
    assert!(native.url.contains("/login?req="), "{}", native.url);
    assert_eq!(form_action(&native), "form-action 'self' com.example.app:");

    // The sign-out confirmation may end at the client's post-logout page.
    let confirm = browser
        .page("/logout?client_id=portal&post_logout_redirect_uri=https%3A%2F%2Fportal.example.com%2Fbye")
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text());
    assert_eq!(
        form_action(&confirm),
        "form-action 'self' https://portal.example.com"
    );
    // Account pages end nowhere else.
    assert_eq!(
        form_action(&browser.page("/account/password").await),
        "form-action 'self'"
    );
}

/// A loopback IPv6 redirect URI (`http://[::1]:port`) cannot be named in
/// CSP: after the sign-in form, the browser gets a page with a link to the
/// application instead of a redirect the browser would block.
async fn an_address_csp_cannot_name_ends_on_a_page_with_a_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = app.other_browser();
    app.create_user("jane@example.com", PW, "Jane").await;
    let cb = "http://[::1]:49152/cb";
    register_client(
        &app,
        NewClient {
            post_logout_redirect_uri: Some("http://[::1]:49152/bye"),
            ..NewClient::app("desktop", "Desktop App", cb)
        },
    )
    .await;
    let login = follow(&browser, &authorize("desktop", cb, "")).await;
    assert!(login.url.contains("/login?req="), "{}", login.url);
    assert_eq!(form_action(&login), "form-action 'self'");
    let ok = browser
        .submit_on(
            &login,
            "/login",
            &[("email", "jane@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    let end = follow(&browser, ok.location.as_deref().unwrap()).await;
    assert_eq!(end.status, StatusCode::OK, "{}", end.text());
    let link = end
        .link("Continue to the application")
        .expect("a link to the application");
    assert!(link.starts_with("http://[::1]:49152/cb?code="), "{link}");
    assert!(link.contains("state=s1"), "{link}");
    // With a live session and no form on the way, /authorize redirects.
    let again = browser.page(&authorize("desktop", cb, "")).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(again.location.unwrap().starts_with(cb));
    // Signing out after the confirmation form ends on a link as well.
    let confirm = browser
        .page("/logout?client_id=desktop&post_logout_redirect_uri=http%3A%2F%2F%5B%3A%3A1%5D%3A49152%2Fbye")
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text());
    // The confirmation's own form (the header has a sign-out form too).
    let values: Vec<(String, String)> = vec![
        ("csrf_token".into(), confirm.input("csrf_token").unwrap()),
        ("client_id".into(), "desktop".into()),
        (
            "post_logout_redirect_uri".into(),
            confirm.input("post_logout_redirect_uri").unwrap(),
        ),
    ];
    let out = browser.post("/logout", &values).await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.text());
    assert_eq!(
        out.link("Continue to the application").as_deref(),
        Some("http://[::1]:49152/bye")
    );
    assert_eq!(browser.page("/account").await.status, StatusCode::SEE_OTHER);
}

/// Hole 5: the proof-of-work requirement came from the `client_id` the POST
/// itself carried; leaving it out skipped the captcha.
async fn the_captcha_is_not_chosen_by_the_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register_client(&app, NewClient::portal("hosting-portal", "hosting")).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let form = app.page("/login?client_id=hosting-portal").await;
    assert!(form.input("captcha_challenge").is_some());
    // The shared door (no portal named) asks too, and shows the puzzle.
    let plain = app.page("/login").await;
    assert!(plain.input("captcha_challenge").is_some(), "{}", plain.body);
    // The form as an attacker sends it: no client_id, no captcha.
    let mut values: Vec<(String, String)> = form
        .hidden_fields("/login")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("captcha") && k != "client_id")
        .collect();
    values.push(("email".into(), "jane@example.com".into()));
    values.push(("password".into(), PW.into()));
    let answer = app.post("/login", &values).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "signed in without the captcha: {:?}",
        answer.location
    );
    assert!(answer.text().contains("robot"), "{}", answer.text());
    // The same for forgot-password: no mail without the captcha.
    let forgot = app.page("/forgot-password").await;
    assert!(
        forgot.input("captcha_challenge").is_some(),
        "the shared door asks too"
    );
    let mut values: Vec<(String, String)> = forgot
        .hidden_fields("/forgot-password")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("captcha") && k != "client_id")
        .collect();
    values.push(("email".into(), "jane@example.com".into()));
    let answer = app.post("/forgot-password", &values).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text()
    );
}

/// RFC 8252 7.3: a registered loopback IP literal accepts any port; nothing
/// else about the address may change.
async fn a_native_app_is_sent_back_to_the_loopback_port_it_listens_on(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = app.other_browser();
    app.create_user("jane@example.com", PW, "Jane").await;
    register_client(
        &app,
        NewClient::app("cli-tool", "CLI", "http://127.0.0.1/cb"),
    )
    .await;
    let cb = "http://127.0.0.1:53111/cb";
    let login = follow(&browser, &authorize("cli-tool", cb, "")).await;
    assert!(
        login.url.contains("/login?req="),
        "{} {}",
        login.url,
        login.text()
    );
    assert_eq!(
        form_action(&login),
        "form-action 'self' http://127.0.0.1:53111"
    );
    let ok = browser
        .submit_on(
            &login,
            "/login",
            &[("email", "jane@example.com"), ("password", PW)],
        )
        .await;
    let back = follow(&browser, ok.location.as_deref().unwrap()).await;
    assert!(
        back.location
            .as_deref()
            .is_some_and(|l| l.starts_with("http://127.0.0.1:53111/cb?code=")),
        "{:?}",
        back.location
    );
    for wrong in [
        "http://127.0.0.1:53111/other",
        "http://localhost:53111/cb",
        "http://[::1]:53111/cb",
    ] {
        let page = browser.page(&authorize("cli-tool", wrong, "")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{wrong}");
        assert!(page.location.is_none(), "{wrong}: never redirected");
    }
}

/// RFC 9700 recommends PKCE for every client; widely deployed confidential
/// relying parties send none, so it is a per-client switch (off by default
/// for confidential clients, always on for public ones).
async fn a_confidential_client_can_be_made_to_require_pkce(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = app.other_browser();
    let cb = "https://strict.example/cb";
    register_client(
        &app,
        NewClient {
            require_pkce: true,
            ..NewClient::app("strict", "Strict App", cb)
        },
    )
    .await;
    register_client(
        &app,
        NewClient::app("relaxed", "Relaxed App", "https://relaxed.example/cb"),
    )
    .await;
    let refused = browser.page(&authorize("strict", cb, "")).await;
    let to = refused.location.expect("back to the client with an error");
    assert!(to.starts_with(cb), "{to}");
    assert!(to.contains("error=invalid_request"), "{to}");
    let challenge =
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
    let accepted = browser.page(&authorize("strict", cb, challenge)).await;
    assert_redirects_to(&accepted, "/login?req=");
    // The default for a confidential client: PKCE optional.
    let relaxed = browser
        .page(&authorize("relaxed", "https://relaxed.example/cb", ""))
        .await;
    assert_redirects_to(&relaxed, "/login?req=");
    let stored = app
        .state
        .store
        .client_by_id(&idp::domain::ClientId::parse("strict").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.require_pkce);
}
