//! The admin console's pages over HTTP, as a browser without JavaScript
//! uses them: signing in through the provider (password, then setting up or
//! entering a one-time code), every form with its CSRF token, confirmations
//! before destructive actions, and what an administrator sees afterwards.
//! The console itself is the real one `idp serve` mounts at `/admin/`.

use reqwest::StatusCode;

use super::*;
use tests::browser::Page;
use tests::signin::{Person, resolve};

on_both_backends!(
    the_first_console_sign_in_sets_up_a_code_and_later_ones_ask_for_it,
    a_person_without_the_admin_role_is_turned_away,
    forms_need_their_csrf_token_and_destructive_actions_a_confirmation,
    clients_are_registered_edited_rotated_and_deleted_from_the_console,
    a_locked_user_is_found_and_unlocked,
    signing_out_ends_the_console_session_and_its_tokens,
    the_console_client_is_built_in_with_one_secret_for_every_node,
    the_console_runs_on_its_own_in_front_of_a_remote_provider,
    the_console_renews_its_token_and_asks_again_when_the_sign_in_is_too_old,
    users_are_created_edited_and_their_sessions_and_tokens_ended_from_the_console,
    outbox_keys_and_audit_filters_from_the_console,
    console_actions_are_audited_with_the_administrators_browser,
    every_nodes_console_signs_in_whatever_the_start_order,
);

/// A browser using the console: its own cookies, and the person at the
/// provider's pages (the authenticator key they set up, the pages shown).
pub(super) struct Admin {
    pub(super) browser: TestApp,
    pub(super) person: Person,
    /// Every `Set-Cookie` the console sent during the sign-in.
    console_cookies: Vec<String>,
}

impl Admin {
    pub(super) fn new(app: &TestApp) -> Self {
        Self {
            browser: app.other_browser(),
            person: Person::new("").password(PW),
            console_cookies: Vec::new(),
        }
    }

    /// Opens a console page; when sent to sign in, goes through the
    /// provider's pages as `email`; returns the console page reached.
    pub(super) async fn open(&mut self, app: &TestApp, path: &str, email: &str) -> Page {
        let base = app.admin_base_url.clone();
        self.open_at(&base, path, email).await
    }

    /// As [`Admin::open`], for a console served at `base`.
    pub(super) async fn open_at(&mut self, base: &str, path: &str, email: &str) -> Page {
        self.person.email = email.to_owned();
        let mut next = format!("{base}{path}");
        for _ in 0..8 {
            let page = self.browser.page_at(&next).await;
            let sent = page.headers.get_all("set-cookie").iter();
            let sent = sent.filter_map(|v| v.to_str().ok().map(str::to_owned));
            self.console_cookies.extend(sent);
            if !page.status.is_redirection() {
                return page;
            }
            next = resolve(&page.url, page.location.as_deref().unwrap());
            if !next.starts_with(base) {
                // Sent to the provider: sign in there, and come back.
                let back = |u: &str| u.starts_with(base);
                next = self.person.walk(&self.browser, &next, back).await;
            }
        }
        panic!("the console went round in circles: {:?}", self.person.pages);
    }

    /// Submits a console form: the page's CSRF token plus `fields`.
    pub(super) async fn post(
        &self,
        app: &TestApp,
        form: &Page,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let mut values = vec![("csrf".to_owned(), form.input("csrf").expect("a CSRF token"))];
        values.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.post_raw(app, action, &values).await
    }

    pub(super) async fn post_raw(
        &self,
        app: &TestApp,
        action: &str,
        values: &[(String, String)],
    ) -> Page {
        let r = self
            .browser
            .http
            .post(app.admin_url(action))
            .form(values)
            .send()
            .await
            .unwrap();
        Page::from(r).await
    }

    /// Follows a console redirect (after an action) to its page.
    pub(super) async fn follow(&self, app: &TestApp, answer: &Page) -> Page {
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
        let to = resolve(
            &app.admin_url("/admin/"),
            answer.location.as_deref().unwrap(),
        );
        Page::from(self.browser.http.get(to).send().await.unwrap()).await
    }
}

pub(super) async fn administrator(app: &TestApp, email: &str) -> User {
    let user = app.create_user(email, PW, "Root Admin").await;
    app.state
        .store
        .set_user_admin(&user.id, true, app.clock_now())
        .await
        .unwrap()
        .unwrap()
}

/// An administrator signed in to the console (setting up their code).
pub(super) async fn signed_in(app: &TestApp) -> (Admin, User, Page) {
    let user = administrator(app, "root@example.com").await;
    let mut admin = Admin::new(app);
    let dashboard = admin.open(app, "/admin/", "root@example.com").await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.text());
    (admin, user, dashboard)
}

/// The client secret on the page shown after registering or rotating.
fn shown_secret(page: &Page) -> String {
    page.html()
        .select(&scraper::Selector::parse("#client-secret").unwrap())
        .next()
        .and_then(|e| e.value().attr("value").map(str::to_owned))
        .unwrap_or_else(|| panic!("no secret shown: {}", page.text()))
}

pub(super) fn flash(page: &Page) -> String {
    page.html()
        .select(&scraper::Selector::parse("#flash").unwrap())
        .next()
        .map(|e| e.text().collect::<String>())
        .unwrap_or_default()
}

/// Every kind in `expected` is in the audit trail.
async fn assert_audited(app: &TestApp, expected: &[&str]) {
    let events: Vec<String> = kinds(app).await.into_iter().map(|(k, _)| k).collect();
    for kind in expected {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
}

async fn kinds(app: &TestApp) -> Vec<(String, Option<String>)> {
    let events = app.state.store.audit_events(None, 200).await.unwrap();
    events
        .into_iter()
        .map(|e| (e.event.kind, e.event.actor))
        .collect()
}

async fn the_first_console_sign_in_sets_up_a_code_and_later_ones_ask_for_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (first, user, dashboard) = signed_in(&app).await;
    assert_eq!(
        first.person.pages,
        ["/login", "/login/mfa-setup"],
        "set up at the first sign-in"
    );
    assert!(dashboard.contains("Dashboard") && dashboard.contains("Root Admin"));
    assert_eq!(dashboard.headers["cache-control"], "no-store");
    let count = |id: &str| {
        dashboard
            .html()
            .select(&scraper::Selector::parse(&format!("#{id}")).unwrap())
            .next()
            .map(|e| e.text().collect::<String>())
    };
    assert_eq!(count("count-users").as_deref(), Some("1"));
    assert_eq!(count("count-admins").as_deref(), Some("1"));
    assert!(
        app.state
            .store
            .totp_credential(&user.id)
            .await
            .unwrap()
            .is_some_and(|c| c.is_active()),
        "the administrator now has an authenticator"
    );

    // The session cookie is HttpOnly and holds a random id, not a token.
    let session = first
        .console_cookies
        .iter()
        .find(|c| c.starts_with("idp_console=") && !c.starts_with("idp_console=;"))
        .unwrap_or_else(|| panic!("a session cookie in {:?}", first.console_cookies));
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    let value = session["idp_console=".len()..].split(';').next().unwrap();
    assert_eq!(value.len(), 43, "256 random bits, base64url: {session}");
    assert!(!value.contains('.'), "not a JWT: {session}");

    // Another browser, later: password and code, no set-up.
    app.clock.advance(time::Duration::seconds(60));
    let mut second = Admin::new(&app);
    second.person.totp = first.person.totp.clone();
    let page = second.open(&app, "/admin/users", "root@example.com").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(second.person.pages, ["/login", "/login/otp"]);
    assert!(
        page.contains("root@example.com"),
        "back on the page asked for"
    );

    // A page that does not exist: the console's page; the API keeps JSON.
    let missing = first
        .browser
        .page_at(&app.admin_url("/admin/nowhere"))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.contains("There is no such page in the console."));
    let api = first
        .browser
        .page_at(&app.admin_url("/admin/api/nowhere"))
        .await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.headers["content-type"], "application/json");

    // A forged session cookie opens nothing.
    let stranger = app.other_browser();
    let r = stranger
        .http
        .get(app.admin_url("/admin/"))
        .header("cookie", "idp_console=forged-session-id")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/admin/login")
    );
}

async fn a_person_without_the_admin_role_is_turned_away(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("ann@example.com", PW, "Ann").await;
    let mut ann = Admin::new(&app);
    let page = ann.open(&app, "/admin/", "ann@example.com").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text());
    assert!(
        page.contains("Only administrators can use the console"),
        "{}",
        page.text()
    );
    let users = Page::from(
        ann.browser
            .http
            .get(app.admin_url("/admin/users"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(users.status, StatusCode::FORBIDDEN);
    assert!(!users.contains("ann@example.com"), "no user list");
}

async fn forms_need_their_csrf_token_and_destructive_actions_a_confirmation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, root, _) = signed_in(&app).await;
    let bob = app.create_user("bob@example.com", PW, "Bob").await;
    let user_page = admin
        .browser
        .page_at(&app.admin_url(&format!("/admin/users/{}", bob.id)))
        .await;
    assert_eq!(user_page.status, StatusCode::OK, "{}", user_page.text());
    let action = format!("/admin/users/{}/disable", bob.id);

    // Without the token, or with another one: refused, nothing changed.
    let forged = [
        ("csrf".to_owned(), "x".repeat(43)),
        ("confirmed".to_owned(), "yes".to_owned()),
    ];
    let refused = admin.post_raw(&app, &action, &forged).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.contains("The form is out of date"));
    let stored = |app: &TestApp| {
        let id = bob.id.clone();
        let store = app.state.store.clone();
        async move { store.user_by_id(&id).await.unwrap().unwrap() }
    };
    assert!(!stored(&app).await.disabled);

    // With the token: first the question, still nothing changed.
    let ask = admin.post(&app, &user_page, &action, &[]).await;
    assert_eq!(ask.status, StatusCode::OK, "{}", ask.text());
    assert!(
        ask.contains("Disable account — bob@example.com?"),
        "{}",
        ask.text()
    );
    assert!(!stored(&app).await.disabled);

    // Confirmed: done, said, audited with the administrator.
    let done = admin
        .post(&app, &ask, &action, &[("confirmed", "yes")])
        .await;
    let after = admin.follow(&app, &done).await;
    assert_eq!(flash(&after), "The account is disabled.");
    assert!(stored(&app).await.disabled);
    let events = kinds(&app).await;
    let actor = format!("user:{}", root.id);
    assert!(
        events.contains(&("admin.user_disabled".into(), Some(actor))),
        "{events:?}"
    );

    // The administrator cannot disable themself: not offered (it is on
    // others' pages), and refused.
    assert!(user_page.body.contains("id=\"action-disable\""));
    let own = admin
        .browser
        .page_at(&app.admin_url(&format!("/admin/users/{}", root.id)))
        .await;
    assert!(!own.body.contains("id=\"action-disable\""));
    let own_action = format!("/admin/users/{}/disable", root.id);
    let refused = admin
        .post(&app, &own, &own_action, &[("confirmed", "yes")])
        .await;
    let back = admin.follow(&app, &refused).await;
    assert!(!flash(&back).is_empty(), "the refusal is said");
    assert!(
        !app.state
            .store
            .user_by_id(&root.id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
}

async fn clients_are_registered_edited_rotated_and_deleted_from_the_console(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, _, _) = signed_in(&app).await;
    let form = admin
        .browser
        .page_at(&app.admin_url("/admin/clients/new"))
        .await;
    assert_eq!(form.status, StatusCode::OK);

    // A mistake comes back with the form filled in and nothing registered.
    let bad = admin
        .post(
            &app,
            &form,
            "/admin/clients",
            &[
                ("client_id", "billing"),
                ("name", "Billing"),
                ("redirect_uris", "http://example.com/cb"),
                ("grant_types", "authorization_code"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.contains("https"), "{}", bad.text());
    assert_eq!(bad.input("client_id").as_deref(), Some("billing"));
    let billing = ClientId::parse("billing").unwrap();
    assert!(
        app.state
            .store
            .client_by_id(&billing)
            .await
            .unwrap()
            .is_none()
    );

    let created = admin
        .post(
            &app,
            &form,
            "/admin/clients",
            &[
                ("client_id", "billing"),
                ("name", "Billing"),
                ("redirect_uris", "https://billing.example.com/cb"),
                ("grant_types", "authorization_code"),
                ("grant_types", "client_credentials"),
                ("scopes", "openid email"),
                ("theme", "helix"),
                ("id_token_alg", "ES256"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    assert_eq!(created.headers["cache-control"], "no-store");
    let secret = shown_secret(&created);
    let token = |id: &'static str, secret: String| {
        let app = app.clone();
        async move {
            app.http
                .post(app.url("/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        token("billing", secret.clone()).await,
        StatusCode::OK,
        "the shown secret works"
    );
    let stored = app
        .state
        .store
        .client_by_id(&billing)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.theme.as_deref(), Some("helix"));
    assert_eq!(stored.id_token_alg, IdTokenAlg::ES256);
    assert_eq!(
        stored.secret_hash.as_deref(),
        Some(idp::crypto::sha256_hex(&secret)).as_deref()
    );
    let listed = admin
        .browser
        .page_at(&app.admin_url("/admin/clients"))
        .await;
    assert!(listed.contains("billing") && listed.contains("admin-console"));

    // Edit: a second redirect URI, no theme, two-step sign-in required.
    let page = admin
        .browser
        .page_at(&app.admin_url("/admin/clients/billing"))
        .await;
    assert!(!page.contains(&secret), "never shown again");
    let saved = admin
        .post(
            &app,
            &page,
            "/admin/clients/billing",
            &[
                ("name", "Billing"),
                (
                    "redirect_uris",
                    "https://billing.example.com/cb\r\nhttps://billing.example.com/cb2",
                ),
                ("grant_types", "authorization_code"),
                ("grant_types", "client_credentials"),
                ("scopes", "openid email"),
                ("theme", ""),
                ("id_token_alg", "ES256"),
                ("require_mfa", "yes"),
            ],
        )
        .await;
    assert_eq!(flash(&admin.follow(&app, &saved).await), "Saved.");
    let stored = app
        .state
        .store
        .client_by_id(&billing)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.redirect_uris.len(), 2);
    assert_eq!(stored.theme, None);
    assert!(stored.require_mfa);

    // Rotate (after confirming): the new secret works, the old one no longer.
    let page = admin
        .browser
        .page_at(&app.admin_url("/admin/clients/billing"))
        .await;
    let ask = admin
        .post(&app, &page, "/admin/clients/billing/rotate-secret", &[])
        .await;
    assert!(ask.contains("Rotate the secret of billing?"));
    let rotated = admin
        .post(
            &app,
            &ask,
            "/admin/clients/billing/rotate-secret",
            &[("confirmed", "yes")],
        )
        .await;
    let new_secret = shown_secret(&rotated);
    assert_ne!(new_secret, secret);
    assert_eq!(token("billing", new_secret).await, StatusCode::OK);
    assert_eq!(token("billing", secret).await, StatusCode::UNAUTHORIZED);

    // Delete (after confirming): gone. The console's own client offers no delete.
    assert!(page.body.contains("id=\"delete-client\""));
    let ask = admin
        .post(&app, &page, "/admin/clients/billing/delete", &[])
        .await;
    assert!(
        app.state
            .store
            .client_by_id(&billing)
            .await
            .unwrap()
            .is_some(),
        "asked first"
    );
    let deleted = admin
        .post(
            &app,
            &ask,
            "/admin/clients/billing/delete",
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(
        flash(&admin.follow(&app, &deleted).await),
        "The client billing was deleted."
    );
    assert!(
        app.state
            .store
            .client_by_id(&billing)
            .await
            .unwrap()
            .is_none()
    );
    let own = admin
        .browser
        .page_at(&app.admin_url("/admin/clients/admin-console"))
        .await;
    assert!(!own.body.contains("id=\"delete-client\""));

    assert_audited(
        &app,
        &[
            "admin.client_created",
            "admin.client_updated",
            "admin.client_secret_rotated",
            "admin.client_deleted",
        ],
    )
    .await;
}

async fn a_locked_user_is_found_and_unlocked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, _, _) = signed_in(&app).await;
    app.create_user("carol@example.com", PW, "Carol").await;
    let carol = app.other_browser();
    for _ in 0..5 {
        carol
            .sign_in("carol@example.com", "Wrong-Horse-Battery-1")
            .await;
    }
    let locked = carol.sign_in("carol@example.com", PW).await;
    assert!(
        !locked.status.is_redirection(),
        "locked: the right password does not help"
    );

    let dashboard = admin.browser.page_at(&app.admin_url("/admin/")).await;
    assert!(
        dashboard.contains("account.locked"),
        "the lock is on the dashboard"
    );
    let found = admin
        .browser
        .page_at(&app.admin_url("/admin/users?q=CAROL"))
        .await;
    let link = found
        .link("carol@example.com")
        .expect("found by the start of the address");
    let page = admin
        .browser
        .page_at(&resolve(&app.admin_url("/admin/"), &link))
        .await;
    assert!(page.contains("locked until"), "{}", page.text());
    assert!(
        page.contains("login.failed"),
        "the trail shows the failures"
    );

    let action = format!(
        "{}/unlock",
        url::Url::parse(&resolve(&app.admin_url("/"), &link))
            .unwrap()
            .path()
    );
    let done = admin.post(&app, &page, &action, &[]).await;
    let after = admin.follow(&app, &done).await;
    assert!(flash(&after).contains("unlocked"), "{}", after.text());
    assert!(!after.contains("locked until"));
    assert!(
        carol
            .sign_in("carol@example.com", PW)
            .await
            .status
            .is_redirection(),
        "signs in again"
    );
    assert!(
        kinds(&app)
            .await
            .iter()
            .any(|(k, _)| k == "admin.user_unlocked")
    );
}

async fn signing_out_ends_the_console_session_and_its_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, root, dashboard) = signed_in(&app).await;
    let live = |app: &TestApp| {
        let (store, id, now) = (app.state.store.clone(), root.id.clone(), app.clock_now());
        async move { store.live_refresh_families(&id, now).await.unwrap().len() }
    };
    assert_eq!(live(&app).await, 1, "the console holds a refresh token");
    let out = admin.post(&app, &dashboard, "/admin/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let to = out.location.unwrap();
    assert!(to.starts_with(&app.url("/logout?")), "{to}");
    assert!(to.contains("id_token_hint=") && to.contains("post_logout_redirect_uri="));
    let back = Page::from(admin.browser.http.get(&to).send().await.unwrap()).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.text());
    let signed_out = back.location.unwrap();
    assert!(
        signed_out.starts_with(&app.admin_url("/admin/signed-out")),
        "{signed_out}"
    );
    let page = admin.browser.page_at(&signed_out).await;
    assert!(page.contains("You are signed out"));

    // The console asks to sign in again; the refresh token is revoked.
    let r = admin
        .browser
        .http
        .get(app.admin_url("/admin/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let families = app
        .state
        .store
        .live_refresh_families(&root.id, app.clock_now())
        .await
        .unwrap();
    assert!(families.is_empty(), "{families:?}");
}

async fn the_console_client_is_built_in_with_one_secret_for_every_node(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = ClientId::parse(idp::admin_api::CONSOLE_CLIENT_ID).unwrap();
    let client = app.state.store.client_by_id(&id).await.unwrap().unwrap();
    assert_eq!(client.kind, ClientKind::Confidential);
    assert!(client.require_mfa && client.first_party);
    assert_eq!(
        client.redirect_uris[0].as_str(),
        app.admin_url("/admin/callback")
    );
    assert!(client.scopes.iter().any(|s| s == "admin"));

    // A second node on the same database keeps the first one's secret.
    let hash = client.secret_hash.clone();
    let other = app.spawn_beside(|_| {}).await;
    let again = other.state.store.client_by_id(&id).await.unwrap().unwrap();
    assert_eq!(
        again.secret_hash, hash,
        "one generated secret for every node"
    );
    // Signing in across nodes needs the shared ephemeral store (Redis); the
    // embedded default is one node.
    if backend == Backend::Postgres {
        let mut admin = Admin::new(&other);
        administrator(&other, "ops@example.com").await;
        let page = admin.open(&other, "/admin/", "ops@example.com").await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "the second node's console signs in"
        );
    }

    // A secret from the configuration replaces the generated one.
    let configured = "a-configured-console-secret-of-40-characters";
    let third = app
        .spawn_beside(|c| {
            c.admin.console.client_secret = Some(idp::config::Secret::new(configured))
        })
        .await;
    let client = third.state.store.client_by_id(&id).await.unwrap().unwrap();
    assert_eq!(
        client.secret_hash.unwrap(),
        idp::crypto::sha256_hex(configured)
    );
}

async fn the_console_runs_on_its_own_in_front_of_a_remote_provider(backend: Backend) {
    // The standalone consoles' addresses are known first: the provider
    // registers their pages (`admin.console.standalone_urls`).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let spare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let spare_base = format!("http://{}", spare.local_addr().unwrap());
    let secret = "a-console-secret-shared-by-configuration-0123";
    let urls: Vec<url::Url> = [&base, &spare_base]
        .iter()
        .map(|b| format!("{b}/admin/").parse().unwrap())
        .collect();
    let app = TestApp::spawn_with(backend, move |c| {
        c.admin.console.standalone_urls = urls;
        c.admin.console.client_secret = Some(idp::config::Secret::new(secret));
    })
    .await;
    let issuer: url::Url = app.base_url.parse().unwrap();
    let console = |at: &str, secret: &str| {
        admin::Console::new(
            admin::ConsoleConfig {
                url: format!("{at}/admin/").parse().unwrap(),
                endpoints: admin::Endpoints::of_issuer(&issuer, &issuer),
                api: app.admin_base_url.parse().unwrap(),
                client_id: idp::admin_api::CONSOLE_CLIENT_ID.into(),
                client_secret: secret.into(),
                trusted_proxy_hops: 0,
                time_zone: "UTC".into(),
            },
            std::sync::Arc::new(admin::MemorySessions::default()),
        )
        .unwrap()
        .router()
    };
    let good = console(&base, secret);
    let good = good.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, good).await });
    let wrong = console(&spare_base, "not-the-console-secret");
    tokio::spawn(async move { axum::serve(spare, wrong).await });

    administrator(&app, "root@example.com").await;
    let mut admin = Admin::new(&app);
    let dashboard = admin.open_at(&base, "/admin/", "root@example.com").await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.text());
    assert!(dashboard.contains("Dashboard"));
    let users = admin.browser.page_at(&format!("{base}/admin/users")).await;
    assert!(
        users.contains("root@example.com"),
        "the remote provider's users"
    );

    // A console with a wrong secret: the provider refuses its code
    // redemption; the console says so with a page (no 500), and holds no session.
    app.clock.advance(time::Duration::seconds(60));
    let mut lost = Admin::new(&app);
    lost.person.totp = admin.person.totp.clone();
    let page = lost
        .open_at(&spare_base, "/admin/", "root@example.com")
        .await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.text());
    assert!(page.contains("The identity provider did not answer"));
    let again = lost.browser.page_at(&format!("{spare_base}/admin/")).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "not signed in");
}

async fn the_console_renews_its_token_and_asks_again_when_the_sign_in_is_too_old(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, root, _) = signed_in(&app).await;
    let families = app
        .state
        .store
        .live_refresh_families(&root.id, app.clock_now())
        .await
        .unwrap();
    assert_eq!(families.len(), 1, "the console holds a refresh token");
    assert_eq!(
        families[0].client_id.as_str(),
        idp::admin_api::CONSOLE_CLIENT_ID
    );
    assert_eq!(families[0].last_used_at, None);

    // Past the access token's 10 minutes: renewed without asking.
    app.clock.advance(time::Duration::minutes(11));
    let page = admin.browser.page_at(&app.admin_url("/admin/users")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let families = app
        .state
        .store
        .live_refresh_families(&root.id, app.clock_now())
        .await
        .unwrap();
    assert!(
        families[0].last_used_at.is_some(),
        "renewed with the refresh token"
    );

    // Past admin.max_sign_in_age_minutes: the admin API refuses the
    // renewed token, and the console asks to sign in again.
    for _ in 0..72 {
        app.clock.advance(time::Duration::minutes(10));
        let page = admin.browser.page_at(&app.admin_url("/admin/users")).await;
        if page.status == StatusCode::SEE_OTHER {
            let to = page.location.unwrap();
            assert!(to.starts_with("/admin/login"), "{to}");
            let elapsed = app.clock_now() - families[0].created_at;
            assert!(elapsed > time::Duration::minutes(720), "{elapsed}");
            return;
        }
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    }
    panic!("still signed in after 12 hours");
}

async fn users_are_created_edited_and_their_sessions_and_tokens_ended_from_the_console(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (admin, root, _) = signed_in(&app).await;

    // Create: a taken address comes back on the form; a new one is created.
    let form = admin
        .browser
        .page_at(&app.admin_url("/admin/users/new"))
        .await;
    let taken = admin
        .post(
            &app,
            &form,
            "/admin/users",
            &[("email", "ROOT@example.com"), ("name", "Dup")],
        )
        .await;
    assert_eq!(taken.status, StatusCode::OK);
    assert!(taken.body.contains("id=\"form-error\""), "{}", taken.text());
    assert!(taken.contains("An account with this email already exists"));
    assert_eq!(taken.input("email").as_deref(), Some("ROOT@example.com"));
    let created = admin
        .post(
            &app,
            &form,
            "/admin/users",
            &[
                ("email", "dan@example.com"),
                ("name", "Dan"),
                ("password", PW),
                ("email_verified", "yes"),
            ],
        )
        .await;
    let page = admin.follow(&app, &created).await;
    assert_eq!(flash(&page), "The account dan@example.com was created.");
    let dan = app
        .state
        .store
        .user_by_email(&idp::domain::Email::parse("dan@example.com").unwrap())
        .await
        .unwrap()
        .expect("created");
    assert!(dan.email_verified && !dan.is_admin);

    // Edit: a new name and address (unverified unless ticked).
    let path = format!("/admin/users/{}", dan.id);
    let edited = admin
        .post(
            &app,
            &page,
            &path,
            &[("name", "Daniel"), ("email", "daniel@example.com")],
        )
        .await;
    assert_eq!(flash(&admin.follow(&app, &edited).await), "Saved.");
    let stored = app.state.store.user_by_id(&dan.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.email.as_str()),
        ("Daniel", "daniel@example.com")
    );
    assert!(!stored.email_verified);

    // Send a reset link: queued for the new address.
    let page = admin.browser.page_at(&app.admin_url(&path)).await;
    let sent = admin
        .post(&app, &page, &format!("{path}/send-password-reset"), &[])
        .await;
    assert_eq!(
        flash(&admin.follow(&app, &sent).await),
        "A password reset link is on its way."
    );

    // The administrator's own page: two consoles signed in, two sessions and
    // two refresh tokens; one of each ended from the page.
    app.clock.advance(time::Duration::seconds(60));
    let mut other = Admin::new(&app);
    other.person.totp = admin.person.totp.clone();
    assert_eq!(
        other.open(&app, "/admin/", "root@example.com").await.status,
        StatusCode::OK
    );
    let own = format!("/admin/users/{}", root.id);
    let page = admin.browser.page_at(&app.admin_url(&own)).await;
    let forms = |page: &Page, kind: &str| -> Vec<String> {
        page.html()
            .select(&scraper::Selector::parse("form").unwrap())
            .filter_map(|f| f.value().attr("action").map(str::to_owned))
            .filter(|a| a.ends_with(kind))
            .collect()
    };
    let sessions = forms(&page, "/end");
    let tokens = forms(&page, "/revoke");
    assert_eq!((sessions.len(), tokens.len()), (2, 2), "{}", page.text());
    assert!(page.contains(tests::USER_AGENT), "the browser is named");
    let ask = admin.post(&app, &page, &sessions[0], &[]).await;
    assert!(ask.contains("End this session?"));
    let ended = admin
        .post(&app, &ask, &sessions[0], &[("confirmed", "yes")])
        .await;
    assert_eq!(
        flash(&admin.follow(&app, &ended).await),
        "The session ended."
    );
    let page = admin.browser.page_at(&app.admin_url(&own)).await;
    assert_eq!(forms(&page, "/end").len(), 1);
    let revoked = admin
        .post(&app, &page, &tokens[0], &[("confirmed", "yes")])
        .await;
    assert_eq!(
        flash(&admin.follow(&app, &revoked).await),
        "The refresh token was revoked."
    );
    let live = app
        .state
        .store
        .live_refresh_families(&root.id, app.clock_now())
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
    assert_audited(
        &app,
        &[
            "admin.user_created",
            "admin.user_updated",
            "admin.password_reset_sent",
            "admin.session_revoked",
            "admin.refresh_token_revoked",
        ],
    )
    .await;
}

async fn outbox_keys_and_audit_filters_from_the_console(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, root, _) = signed_in(&app).await;

    let keys = admin.browser.page_at(&app.admin_url("/admin/keys")).await;
    let before = app.state.store.signing_keys().await.unwrap().len();
    assert!(
        keys.contains("RS256") && keys.contains("active"),
        "{}",
        keys.text()
    );
    let ask = admin.post(&app, &keys, "/admin/keys", &[]).await;
    assert!(ask.contains("Rotate the signing keys?"));
    assert_eq!(
        app.state.store.signing_keys().await.unwrap().len(),
        before,
        "asked first"
    );
    let done = admin
        .post(&app, &ask, "/admin/keys", &[("confirmed", "yes")])
        .await;
    let after = admin.follow(&app, &done).await;
    assert!(
        flash(&after).starts_with("New keys created: "),
        "{}",
        flash(&after)
    );
    assert!(app.state.store.signing_keys().await.unwrap().len() > before);
    let states: Vec<String> = after
        .html()
        .select(&scraper::Selector::parse("#keys .badge").unwrap())
        .map(|e| e.text().collect())
        .collect();
    assert!(
        states.iter().any(|s| s == "next"),
        "the new keys wait to sign: {states:?}"
    );

    // The outbox: the set-up mail of the administrator's authenticator.
    let mail = admin.browser.page_at(&app.admin_url("/admin/mail")).await;
    assert!(mail.contains("root@example.com"), "{}", mail.text());
    let failed = admin
        .browser
        .page_at(&app.admin_url("/admin/mail?status=failed"))
        .await;
    assert!(failed.contains("No messages."));

    // The audit log: filtered by type and user; a bad time is said, not a 500.
    let path = format!("/admin/audit?type=mfa.enrolled&user_id={}", root.id);
    let audit = admin.browser.page_at(&app.admin_url(&path)).await;
    assert!(
        audit.contains("mfa.enrolled") && !audit.contains("admin.keys_rotated"),
        "{}",
        audit.text()
    );
    let bad = admin
        .browser
        .page_at(&app.admin_url("/admin/audit?since=yesterday"))
        .await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.body.contains("id=\"form-error\""), "{}", bad.text());
}

/// The console calls the API from its own address; the audit trail names
/// the administrator's browser instead (behind one trusted proxy here), and
/// believes nobody else who claims to speak for a browser.
async fn console_actions_are_audited_with_the_administrators_browser(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.admin.trusted_proxy_hops = 1).await;
    administrator(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let unlocked = async |app: &TestApp| {
        let last = latest_event(app, &jane.id, "admin.user_unlocked").await;
        (last.ip, last.user_agent)
    };

    // The proxy in front of the console appends the address it saw.
    let mut admin = Admin::new(&app);
    let mut forwarded = reqwest::header::HeaderMap::new();
    forwarded.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
    admin.browser.http = reqwest::Client::builder()
        .cookie_store(true)
        .user_agent("Firefox/140 (the administrator's laptop)")
        .default_headers(forwarded)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = admin
        .open(
            &app,
            &format!("/admin/users/{}", jane.id),
            "root@example.com",
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let action = format!("/admin/users/{}/unlock", jane.id);
    let done = admin.post(&app, &page, &action, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    let (ip, agent) = unlocked(&app).await;
    assert_eq!(ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(
        agent.as_deref(),
        Some("Firefox/140 (the administrator's laptop)")
    );

    // Automation speaks for itself, whatever it says about a browser.
    app.clock.advance(time::Duration::seconds(1));
    let token = automation_token(&app).await;
    let r = app
        .http
        .post(app.admin_url(&format!("/admin/api/users/{}/unlock", jane.id)))
        .bearer_auth(&token)
        .header(admin::BROWSER_IP, "198.51.100.7")
        .header(admin::BROWSER_AGENT, "Forged/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (ip, agent) = unlocked(&app).await;
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(agent.as_deref(), Some(tests::USER_AGENT));
}

/// Several nodes on one database and one Redis, each with its own admin
/// listener (so its own console address): every node's console signs in,
/// whatever the order the nodes started in. A node adds its console's pages
/// to the built-in client without removing the other nodes'.
async fn every_nodes_console_signs_in_whatever_the_start_order(backend: Backend) {
    // Signing in across nodes needs the shared ephemeral store (Redis); the
    // embedded default is one node.
    if backend != Backend::Postgres {
        return;
    }
    let first = TestApp::spawn(backend).await;
    let second = first.spawn_beside(|_| {}).await;
    assert_ne!(first.admin_base_url, second.admin_base_url);
    // Past the nodes' in-memory client cache: what counts is what the
    // database holds, as when a load balancer picks any node.
    let later = |nodes: &[&TestApp]| {
        for node in nodes {
            node.clock.advance(time::Duration::minutes(5));
        }
    };
    later(&[&first, &second]);
    administrator(&first, "root@example.com").await;
    let mut admin = Admin::new(&first);
    let page = admin.open(&first, "/admin/", "root@example.com").await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the first node's console: {}",
        page.text()
    );
    let mut admin = Admin::new(&second);
    administrator(&second, "ops@example.com").await;
    let page = admin.open(&second, "/admin/", "ops@example.com").await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the second node's console: {}",
        page.text()
    );

    // A restarted first node (a new address, as after a redeploy) signs in
    // too, and so does the second node still.
    let third = second.spawn_beside(|_| {}).await;
    third.clock.set(first.clock_now());
    later(&[&first, &second, &third]);
    for (node, email) in [
        (&third, "third@example.com"),
        (&second, "fourth@example.com"),
    ] {
        administrator(node, email).await;
        let mut admin = Admin::new(node);
        let page = admin.open(node, "/admin/", email).await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "{}: {}",
            node.admin_base_url,
            page.text()
        );
    }
    let id = ClientId::parse(idp::admin_api::CONSOLE_CLIENT_ID).unwrap();
    let client = first.state.store.client_by_id(&id).await.unwrap().unwrap();
    for node in [&first, &second, &third] {
        let callback = node.admin_url("/admin/callback");
        assert!(
            client.redirect_uris.iter().any(|u| u.as_str() == callback),
            "{callback} in {:?}",
            client.redirect_uris
        );
    }

    // The full set from the configuration: a retired node's address (the
    // first's) is dropped, the listed ones and the starting node's own stay.
    let listed: Vec<url::Url> = [&second, &third]
        .iter()
        .map(|n| n.admin_url("/admin/").parse().unwrap())
        .collect();
    let fourth = second
        .spawn_beside(move |c| c.admin.console.all_urls = listed)
        .await;
    let client = first.state.store.client_by_id(&id).await.unwrap().unwrap();
    let mut registered: Vec<&str> = client.redirect_uris.iter().map(|u| u.as_str()).collect();
    registered.sort();
    let mut expected = [&second, &third, &fourth].map(|n| n.admin_url("/admin/callback"));
    expected.sort();
    assert_eq!(registered, expected);
    assert_eq!(client.post_logout_redirect_uris.len(), 3);
}
