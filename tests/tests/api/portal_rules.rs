//! Each portal's own password rules and the words of its help page
//! ("real browsers, in the portal's look", items 4 and 8). Which portal's
//! rules apply is the server's record of the flow (a pending authorization
//! request, the portal stored with a reset token), never what a link or
//! form names: `client_id` there picks only the look.

use reqwest::StatusCode;
use scraper::Selector;
use tests::browser::{MailApp, NewClient, Page, link_in, register_client};
use time::Duration;

use crate::{Backend, TestApp};

on_both_backends!(
    each_portal_lists_exactly_its_rules_and_tips,
    each_broken_customer_rule_gets_one_message_once,
    a_form_naming_another_portal_gets_no_weaker_policy,
    the_reset_link_lifetime_follows_the_flow_not_the_form,
    typed_passwords_survive_an_error_in_another_field,
    each_portal_shows_its_help_pages_words,
    bad_portal_markers_get_a_clear_page,
    a_session_from_a_portals_flow_keeps_its_rules_on_the_account_pages,
);

const PW: &str = "Correct-Horse-Battery-9";
/// Meets seed 002's rules and the default policy.
const GOOD: &str = "Violet-Anchor-Tundra-47";

/// The rules seed 002 publishes, as the customer portal lists them.
const CUSTOMER_RULES: &[&str] = &[
    "At least 8 characters",
    "At least one uppercase letter",
    "At least one digit",
    "At least one symbol, such as # $ % &",
    "Not a commonly used password",
    "Does not contain your name or email address",
];

const SHORT: &str = "The password must be at least 8 characters long.";
const UPPER: &str = "The password must contain at least one uppercase letter.";
const DIGIT: &str = "The password must contain at least one digit.";
const SYMBOL: &str = "The password must contain at least one symbol, such as # $ % &.";
const COMMON: &str = "This password is too common: it is on lists of frequently used passwords.";
const PERSONAL: &str = "The password must not contain your name or email address.";
const WEAK: &str = "This password is too easy to guess: add more words or characters.";

/// Every message the policy can give, to check that no other one shows.
const ALL_MESSAGES: &[&str] = &[SHORT, UPPER, DIGIT, SYMBOL, COMMON, PERSONAL, WEAK];

/// The three seed portals, registered.
async fn portals(app: &TestApp) {
    for (id, theme) in [
        ("helix-support", "helix"),
        ("hosting-portal", "hosting"),
        ("customer-portal", "customer"),
    ] {
        register_client(app, NewClient::portal(id, theme)).await;
    }
}

/// Starts `client`'s sign-in in `browser` as its portal would; returns the
/// sign-in page it lands on (`/login?…req=…`).
async fn start_flow(browser: &TestApp, client: &str) -> Page {
    let start = browser
        .page(&format!(
            "/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid&state=s1&nonce=n1",
            url::form_urlencoded::byte_serialize(b"https://portal.example.com/cb")
                .collect::<String>()
        ))
        .await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.text());
    let login = start.location.clone().unwrap();
    assert!(login.contains("req="), "{login}");
    let page = browser.page(&login).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    page
}

fn label(app: &TestApp, theme: &str, key: &str) -> String {
    app.state.themes.get(Some(theme)).labels[key].clone()
}

/// The register page of `client`'s flow, reached by its sign-in page's link.
async fn flow_register_page(browser: &TestApp, client: &str, theme: &str) -> Page {
    let login = start_flow(browser, client).await;
    let link = login
        .link(&label(browser, theme, "register_link"))
        .expect("a register link");
    assert!(link.contains("req="), "the flow goes along: {link}");
    browser.page(&link).await
}

/// The rules listed above the password field.
fn rules(page: &Page) -> Vec<String> {
    let sel = Selector::parse("#password-policy .policy-list li").unwrap();
    page.html()
        .select(&sel)
        .map(|li| li.text().collect::<String>().trim().to_owned())
        .collect()
}

/// The reset link mailed after forgot-password in `client`'s flow.
async fn flow_reset_link(
    app: &MailApp,
    client: &str,
    theme: &str,
    email: &str,
    n: usize,
) -> String {
    let login = start_flow(app, client).await;
    let forgot = login
        .link(&label(app, theme, "forgot_password_link"))
        .expect("a forgot-password link");
    assert!(forgot.contains("req="), "the flow goes along: {forgot}");
    let sent = app
        .submit(&forgot, "/forgot-password", &[("email", email)])
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
    link_in(&app.wait_for_mail_to(email, n).await, "/reset-password")
}

async fn each_portal_lists_exactly_its_rules_and_tips(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    portals(&app).await;
    app.create_user("ann@example.com", PW, "Ann Smith").await;

    // Customer portal (seed 002): exactly its published rules, on register and reset.
    let register = flow_register_page(&app.other_browser(), "customer-portal", "customer").await;
    assert_eq!(rules(&register), CUSTOMER_RULES);
    let reset = app
        .page(&flow_reset_link(&app, "customer-portal", "customer", "ann@example.com", 1).await)
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text());
    assert_eq!(rules(&reset), CUSTOMER_RULES);

    // The hosting portal keeps the deployment's policy, with seed 001's tips,
    // on its register page and on its change-password page alike.
    let hosting = flow_register_page(&app.other_browser(), "hosting-portal", "hosting").await;
    let deployment = app.state.policy.describe();
    assert_eq!(rules(&hosting), deployment);
    let tips = "The recommended length is 12 characters or more";
    assert!(hosting.contains(tips), "{}", hosting.text());
    let signed_in = app.other_browser();
    signed_in.signed_in("ann@example.com", PW).await;
    let change = signed_in
        .page("/account/password?client_id=hosting-portal")
        .await;
    assert_eq!(change.status, StatusCode::OK);
    assert!(change.contains(tips), "{}", change.text());
    assert!(change.contains("Don't use dictionary words"));

    // Without a flow nobody knows the portal yet (the session's portal is
    // not recorded): the strictest rules of all portals, which include
    // every customer-portal rule.
    let customer_change = signed_in
        .page("/account/password?client_id=customer-portal")
        .await;
    let listed = rules(&customer_change);
    for rule in CUSTOMER_RULES {
        assert!(listed.iter().any(|r| r == rule), "{rule}: {listed:?}");
    }
}

async fn each_broken_customer_rule_gets_one_message_once(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    portals(&app).await;
    let cases: &[(&str, &[&str])] = &[
        ("Qz7!vtk", &[SHORT]),
        ("qzvtkm7!", &[UPPER]),
        ("Qzvtkmw!", &[DIGIT]),
        ("Qzvtkmw7", &[SYMBOL]),
        ("password123", &[UPPER, SYMBOL, COMMON]),
        ("Password123!", &[COMMON]),
        ("Smith#Qz7x", &[PERSONAL]),
        ("annxq", &[SHORT, UPPER, DIGIT, SYMBOL, PERSONAL]),
    ];
    let browser = app.other_browser();
    for (password, expected) in cases {
        let form = flow_register_page(&browser, "customer-portal", "customer").await;
        let answer = browser
            .submit_on(
                &form,
                "/register",
                &[
                    ("name", "Ann Smith"),
                    ("email", "ann@example.com"),
                    ("password", password),
                    ("password_confirm", password),
                ],
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{password}"
        );
        let text = answer.text();
        for message in ALL_MESSAGES {
            let want = usize::from(expected.contains(message));
            assert_eq!(
                text.matches(message).count(),
                want,
                "{password}: {message:?} shown {want} time(s) in {text}"
            );
        }
        // One line each: no zxcvbn advice appended.
        assert!(!text.contains("Add another word"), "{text}");
    }
    // A password meeting every rule, not on the list: accepted (the
    // deployment's strength estimate is not part of this portal's rules).
    let weak_elsewhere = "Qzvtkm7!";
    let form = flow_register_page(&browser, "customer-portal", "customer").await;
    let accepted = browser
        .submit_on(
            &form,
            "/register",
            &[
                ("name", "Ann Smith"),
                ("email", "ann@example.com"),
                ("password", weak_elsewhere),
                ("password_confirm", weak_elsewhere),
            ],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    assert!(accepted.contains("ann@example.com"), "{}", accepted.text());
}

/// A password the customer portal accepts and the deployment's policy
/// refuses (too easy to guess), checked with the server's own policies.
fn customer_only_password(app: &TestApp) -> &'static str {
    let customer = app
        .state
        .themes
        .get(Some("customer"))
        .meta
        .password_policy
        .clone()
        .unwrap();
    let customer = app.state.policy.with_config(customer);
    let personal = ["Ann Smith", "ann@example.com"];
    ["Qzvtkm7!", "Abcd123!", "Jan1990!", "Qwer1234!"]
        .into_iter()
        .find(|p| {
            customer.check(p, &personal).is_empty()
                && app.state.policy.check(p, &personal) == [WEAK]
        })
        .expect("a password only the customer portal accepts")
}

async fn a_form_naming_another_portal_gets_no_weaker_policy(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    portals(&app).await;
    app.create_user("ann@example.com", PW, "Ann Smith").await;
    let weak = customer_only_password(&app);

    // Registration in the hosting portal's flow, the form rewritten to
    // name the customer portal.
    let browser = app.other_browser();
    let form = flow_register_page(&browser, "hosting-portal", "hosting").await;
    let answer = browser
        .submit_on(
            &form,
            "/register",
            &[
                ("client_id", "customer-portal"),
                ("name", "Bob Stone"),
                ("email", "bob@example.com"),
                ("password", weak),
                ("password_confirm", weak),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.text().matches(WEAK).count(), 1, "{}", answer.text());

    // The same without any flow: only the look is the customer portal's.
    let plain = app.page("/register?client_id=customer-portal").await;
    assert!(plain.body.contains("theme-customer"));
    let answer = app
        .submit_on(
            &plain,
            "/register",
            &[
                ("name", "Bob Stone"),
                ("email", "bob@example.com"),
                ("password", weak),
                ("password_confirm", weak),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A reset link asked for in the hosting flow, posted naming the customer portal.
    let link = flow_reset_link(&app, "hosting-portal", "hosting", "ann@example.com", 1).await;
    let reset = app.page(&link).await;
    assert_eq!(rules(&reset), app.state.policy.describe());
    let refused = app
        .submit_on(
            &reset,
            "/reset-password",
            &[
                ("client_id", "customer-portal"),
                ("password", weak),
                ("password_confirm", weak),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    // And the link's own query rewritten: still the flow's rules.
    let token = link.split("token=").nth(1).unwrap();
    let rewritten = app
        .page(&format!(
            "/reset-password?client_id=customer-portal&token={token}"
        ))
        .await;
    assert_eq!(rules(&rewritten), app.state.policy.describe());
}

async fn the_reset_link_lifetime_follows_the_flow_not_the_form(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    portals(&app).await;
    app.create_user("ann@example.com", PW, "Ann Smith").await;

    // The hosting portal's customers, from its flow: 2 hours (seed 001).
    let hosting = flow_reset_link(&app, "hosting-portal", "hosting", "ann@example.com", 1).await;
    // The customer portal's flow, the form rewritten to name the hosting
    // portal: still the customer portal's 60 minutes.
    let login = start_flow(&app, "customer-portal").await;
    let forgot = login
        .link(&label(&app, "customer", "forgot_password_link"))
        .unwrap();
    let sent = app
        .submit(
            &forgot,
            "/forgot-password",
            &[
                ("email", "ann@example.com"),
                ("client_id", "hosting-portal"),
            ],
        )
        .await;
    assert!(sent.contains("1 hour"), "{}", sent.text());
    let customer = link_in(
        &app.wait_for_mail_to("ann@example.com", 2).await,
        "/reset-password",
    );
    // No flow, a link naming the hosting portal: the deployment's 60 minutes.
    let sent = app
        .submit(
            "/forgot-password?client_id=hosting-portal",
            "/forgot-password",
            &[("email", "ann@example.com")],
        )
        .await;
    assert!(sent.contains("1 hour"), "{}", sent.text());
    let plain = link_in(
        &app.wait_for_mail_to("ann@example.com", 3).await,
        "/reset-password",
    );

    app.clock.advance(Duration::minutes(61));
    assert_eq!(app.page(&hosting).await.status, StatusCode::OK);
    assert_eq!(app.page(&customer).await.status, StatusCode::GONE);
    assert_eq!(app.page(&plain).await.status, StatusCode::GONE);
    app.clock.advance(Duration::minutes(60));
    assert_eq!(app.page(&hosting).await.status, StatusCode::GONE);
}

/// The value of the input named `name`, as the browser would fill it.
fn typed(page: &Page, name: &str) -> Option<String> {
    page.input(name).filter(|v| !v.is_empty())
}

async fn typed_passwords_survive_an_error_in_another_field(backend: Backend) {
    let app = MailApp::spawn_with(backend, |c| {
        c.account.blocked_email_domains = vec!["blocked.example".into()];
    })
    .await;
    // Registration: the address is refused, the password was fine.
    let answer = app
        .submit(
            "/register",
            "/register",
            &[
                ("name", "Bob Stone"),
                ("email", "bob@blocked.example"),
                ("password", GOOD),
                ("password_confirm", GOOD),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.location.is_none() && !answer.url.contains(GOOD));
    assert_eq!(typed(&answer, "password").as_deref(), Some(GOOD));
    assert_eq!(typed(&answer, "password_confirm").as_deref(), Some(GOOD));
    // The confirmation did not match: the password stays, the confirmation not.
    let answer = app
        .submit(
            "/register",
            "/register",
            &[
                ("name", "Bob Stone"),
                ("email", "bob@example.com"),
                ("password", GOOD),
                ("password_confirm", "something else"),
            ],
        )
        .await;
    assert_eq!(typed(&answer, "password").as_deref(), Some(GOOD));
    assert_eq!(typed(&answer, "password_confirm"), None);
    // A refused password is not given back.
    let answer = app
        .submit(
            "/register",
            "/register",
            &[
                ("name", "Bob Stone"),
                ("email", "bob@blocked.example"),
                ("password", "password123"),
                ("password_confirm", "password123"),
            ],
        )
        .await;
    assert_eq!(typed(&answer, "password"), None);

    // Change of password: the current one was wrong, the new one fine.
    app.create_user("ann@example.com", PW, "Ann Smith").await;
    app.signed_in("ann@example.com", PW).await;
    let answer = app
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", "Not-The-Password-1"),
                ("password", GOOD),
                ("password_confirm", GOOD),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(typed(&answer, "current_password"), None);
    assert_eq!(typed(&answer, "password").as_deref(), Some(GOOD));
    assert_eq!(typed(&answer, "password_confirm").as_deref(), Some(GOOD));
}

/// Label key → the words a help page tells its customers to look for.
type Labels = &'static [(&'static str, &'static str)];

async fn each_portal_shows_its_help_pages_words(backend: Backend) {
    let app = MailApp::spawn_with(backend, |c| {
        c.account.blocked_email_domains = vec!["blocked.example".into()];
    })
    .await;
    portals(&app).await;
    app.create_user("ann@example.com", PW, "Ann Smith").await;
    let words: &[(&str, &str, Labels)] = &[
        (
            "helix-support",
            "helix",
            &[
                ("forgot_password_link", "RESET YOUR PASSWORD HERE"),
                ("sign_in_button", "SIGN IN"),
                ("forgot_button", "SEND EMAIL"),
                ("reset_button", "UPDATE"),
                (
                    "blocked_domains_link",
                    "Email hosting companies that will not work with Helix Telecom service",
                ),
            ],
        ),
        (
            "hosting-portal",
            "hosting",
            &[
                ("forgot_password_link", "Forgot?"),
                ("sign_in_button", "Login"),
                ("change_password_button", "Save Changes"),
                ("change_password_title", "Change Password"),
            ],
        ),
        (
            "customer-portal",
            "customer",
            &[("forgot_password_link", "Forgot Password")],
        ),
    ];
    for (n, (client, theme, labels)) in words.iter().enumerate() {
        let want = |key: &str| {
            labels
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
                .unwrap_or_else(|| label(&app, "default", key))
        };
        let at = format!("{theme}:");
        let login = app.page(&format!("/login?client_id={client}")).await;
        assert!(login.body.contains(&format!("theme-{theme}")), "{at}");
        let forgot = login
            .link(&want("forgot_password_link"))
            .unwrap_or_else(|| panic!("{at} forgot link in {}", login.text()));
        assert!(
            login.button_form(&want("sign_in_button")).is_some(),
            "{at} sign-in button"
        );
        let forgot_page = app.page(&forgot).await;
        assert!(
            forgot_page.button_form(&want("forgot_button")).is_some(),
            "{at} {}",
            forgot_page.text()
        );
        // Seed 000, step 4: the providers that cannot receive the mail.
        assert!(
            forgot_page.contains(&want("blocked_domains_link"))
                && forgot_page.contains("blocked.example"),
            "{at} {}",
            forgot_page.text()
        );
        let link = flow_reset_link(&app, client, theme, "ann@example.com", n + 1).await;
        let reset = app.page(&link).await;
        assert!(
            reset.button_form(&want("reset_button")).is_some(),
            "{at} {}",
            reset.text()
        );
        let signed_in = app.other_browser();
        signed_in.signed_in("ann@example.com", PW).await;
        let change = signed_in
            .page(&format!("/account/password?client_id={client}"))
            .await;
        let h1 = Selector::parse("h1").unwrap();
        let heading = change
            .html()
            .select(&h1)
            .next()
            .map(|h| h.text().collect::<String>())
            .unwrap_or_default();
        assert_eq!(heading.trim(), want("change_password_title"), "{at}");
        assert!(
            change
                .button_form(&want("change_password_button"))
                .is_some(),
            "{at} {}",
            change.text()
        );
    }
    // Without blocked domains the list is not offered.
    let plain = MailApp::spawn(backend).await;
    register_client(&plain, NewClient::portal("helix-support", "helix")).await;
    let forgot = plain.page("/forgot-password?client_id=helix-support").await;
    assert!(!forgot.contains(&label(&plain, "helix", "blocked_domains_link")));
}

async fn bad_portal_markers_get_a_clear_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    portals(&app).await;
    for path in [
        "/login?client_id=nope",
        "/login?theme=no-such-theme",
        "/register?client_id=%00%20bad",
        "/register?client_id=customer-portal&req=not-a-request",
        "/forgot-password?client_id=nope&req=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/forgot-password?theme=../../etc",
    ] {
        let page = app.page(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text());
    }
    for path in [
        "/reset-password?token=short&client_id=nope",
        "/reset-password?client_id=customer-portal&token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let page = app.page(path).await;
        assert_eq!(page.status, StatusCode::GONE, "{path}: {}", page.text());
    }
    // A flow's marker naming another client: the flow wins, look and rules.
    let login = start_flow(&app, "hosting-portal").await;
    let register = login.link("Create an account").unwrap();
    let swapped = register.replace("client_id=hosting-portal", "client_id=customer-portal");
    assert_ne!(swapped, register);
    let page = app.page(&swapped).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("theme-hosting"), "{}", page.text());
    assert_eq!(rules(&page), app.state.policy.describe());
}

/// The session remembers the portal its flow came from (server-side), so
/// the customer portal's change-password page lists and enforces exactly
/// its rules; a session begun on a themed page without a flow wears the
/// look but keeps the deployment's rules (a marker never picks rules).
async fn a_session_from_a_portals_flow_keeps_its_rules_on_the_account_pages(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    portals(&app).await;
    app.create_user("ann@example.com", PW, "Ann Smith").await;

    let customer = app.other_browser();
    let login = start_flow(&customer, "customer-portal").await;
    let signed_in = customer
        .submit_on(
            &login,
            "/login",
            &[("email", "ann@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text()
    );
    let change = customer.page("/account/password").await;
    assert_eq!(change.status, StatusCode::OK);
    assert!(
        change.body.contains("/static/customer/"),
        "the portal's look"
    );
    assert_eq!(rules(&change), CUSTOMER_RULES);
    // A password meeting seed 002's rules but weaker than the deployment's
    // strength minimum is accepted under the customer portal's rules.
    let weak_ok = customer_only_password(&app);
    let done = customer
        .submit_on(
            &change,
            "/account/password",
            &[
                ("current_password", PW),
                ("password", weak_ok),
                ("password_confirm", weak_ok),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(!done.text().contains(WEAK), "{}", done.text());

    // A themed page without a flow: the customer look, the deployment's rules.
    app.create_user("bob@example.com", PW, "Bob Jones").await;
    let marker = app.other_browser();
    let page = marker.page("/login?client_id=customer-portal").await;
    marker
        .submit_on(
            &page,
            "/login",
            &[("email", "bob@example.com"), ("password", PW)],
        )
        .await;
    let change = marker.page("/account/password").await;
    assert!(
        change.body.contains("/static/customer/"),
        "the look follows"
    );
    assert_ne!(rules(&change), CUSTOMER_RULES, "the rules do not");
}
