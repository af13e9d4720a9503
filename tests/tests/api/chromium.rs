//! The themed pages in a real browser: headless Chromium driven through
//! chromedriver (WebDriver), so the pages' JavaScript runs under the server's
//! Content-Security-Policy exactly as it does for a person. Each test gets its
//! own Chromium on a fresh profile from the kit's `tests::chromium` (one
//! chromedriver per test binary, one browser at a time, PostgreSQL + Redis
//! only), and checks what a person sees: text on the page, the address bar,
//! what is enabled. Sign-ins that end at a relying party are in
//! `portal_browser.rs`.

use serde_json::json;
use tests::TestApp;
use tests::browser::{MailApp, NewClient, link_in, register_client};
use tests::chromium::{Browser, open_themed_sign_in, save_screenshot, screenshot_dir, sign_in};

use crate::Backend;

in_chromium!(
    browser_signs_in_resets_and_changes_the_password,
    screenshots_of_each_theme_sign_in_page,
    password_generator_fills_both_fields,
    browser_turns_on_two_step_sign_in_and_signs_in_with_a_code,
    administrator_runs_the_console_in_a_browser,
    browser_keeps_the_profile_and_signs_out_a_forgotten_device,
);

const PW: &str = "Correct-Horse-Battery-9";
const NEW_PW: &str = "Brand-New-Staple-42!";
const NEWEST_PW: &str = "Third-Time-Lucky-77#";

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

async fn browser_signs_in_resets_and_changes_the_password(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let email = "jane@example.com";
    app.create_user(email, PW, "Jane Doe").await;
    let browser = Browser::start().await;

    // A wrong password: the form says so and stays.
    browser.open(&app.url("/login")).await;
    browser.see("Sign in").await;
    sign_in(&browser, email, "not-my-password-1").await;
    browser.see("Incorrect email or password.").await;
    assert_eq!(browser.current_url().await.path(), "/login");

    // Forgot password: the visible link, the address, the same answer for everyone.
    browser.follow_link("Forgot password?").await;
    browser.wait_for_path("/forgot-password").await;
    browser.see("Reset your password").await;
    browser.type_into("email", email).await;
    browser.click_button("Send reset link").await;
    browser.see("If that email matches an account").await;

    // The link from the mail, opened in the browser.
    let mail = app.wait_for_mail_to(email, 1).await;
    let link = link_in(&mail, "/reset-password");
    browser.open(&app.url(&link)).await;
    browser.see("Choose a new password").await;
    browser.type_into("password", NEW_PW).await;
    browser.type_into("password_confirm", NEW_PW).await;
    browser.click_button("Update password").await;
    browser.see("Your password has been changed").await;

    // Sign in with it: the account page, with her name.
    browser.follow_link("Sign in").await;
    browser.wait_for_path("/login").await;
    sign_in(&browser, email, NEW_PW).await;
    browser.wait_for_path("/account").await;
    browser.see("Jane Doe").await;
    browser.see("Your account").await;

    // Change it again from the account page.
    browser.follow_link("Change password").await;
    browser.wait_for_path("/account/password").await;
    browser.type_into("current_password", NEW_PW).await;
    browser.type_into("password", NEWEST_PW).await;
    browser.type_into("password_confirm", NEWEST_PW).await;
    browser.click_button("Save changes").await;
    let confirmation = browser
        .wait_until(
            "a confirmation with role=status",
            "const s = [...document.querySelectorAll('[role=status]')]
               .find(e => e.innerText.includes('Your password was changed'));
             if (!s) return null;
             // Computed colours come as rgb(), color(srgb ...) (from color-mix)
             // and so on: a canvas turns any of them into 0-255 RGB.
             const ctx = document.createElement('canvas').getContext('2d');
             const rgb = c => { ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = c; ctx.fillRect(0, 0, 1, 1);
                                return [...ctx.getImageData(0, 0, 1, 1).data.slice(0, 3)]; };
             const style = getComputedStyle(s);
             return { text: s.innerText, shown: s.getClientRects().length > 0,
                      border: rgb(style.borderLeftColor), background: rgb(style.backgroundColor),
                      css: [style.borderLeftColor, style.backgroundColor] };",
            vec![],
        )
        .await;
    assert_eq!(confirmation["shown"], json!(true), "{confirmation}");
    for part in ["border", "background"] {
        let [r, g, b] = [0, 1, 2].map(|i| confirmation[part][i].as_u64().unwrap_or(0));
        assert!(
            g > r && g > b,
            "the confirmation's {part} is green: {confirmation}"
        );
    }

    // Sign out: back on the sign-in page, nobody named any more.
    browser.click_button("Sign out").await;
    browser.wait_for_path("/login").await;
    browser.see("Sign in").await;
    assert!(
        !browser.text().await.contains("Jane Doe"),
        "{}",
        browser.text().await
    );

    // The newest password works.
    sign_in(&browser, email, NEWEST_PW).await;
    browser.wait_for_path("/account").await;
    browser.see("Jane Doe").await;
    browser.assert_clean_console("the account flows").await;
    browser.quit().await;
}

async fn screenshots_of_each_theme_sign_in_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane Doe").await;
    let themes = [
        ("default", "/login"),
        ("helix", "/login?client_id=helix-support"),
        ("hosting", "/login?client_id=hosting-portal"),
        ("customer", "/login?client_id=customer-portal"),
    ];
    for (theme, path) in themes {
        if let Some((_, client)) = path.split_once("client_id=") {
            register_client(&app, NewClient::portal(client, theme)).await;
        }
    }
    let dir = screenshot_dir();
    let browser = Browser::start().await;
    for (theme, path) in themes {
        open_themed_sign_in(&browser, &app, theme, path).await;
        browser.assert_clean_console(path).await;
        let png = browser.full_page_screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        // Both backends write the same files: write aside, then rename.
        let file = dir.join(format!("{theme}-login.png"));
        let partial = dir.join(format!(".{theme}-login.{}.png", uuid::Uuid::new_v4()));
        std::fs::write(&partial, &png).expect("write the screenshot");
        std::fs::rename(&partial, &file).expect("move the screenshot in place");
    }

    // The browser's own answer to the hosting portal's puzzle is accepted.
    open_themed_sign_in(&browser, &app, "hosting", themes[2].1).await;
    sign_in(&browser, "jane@example.com", PW).await;
    browser.wait_for_path("/account").await;
    browser.see("Jane Doe").await;
    let url = browser.current_url().await;
    assert_eq!(url.query(), Some("client_id=hosting-portal"), "{url}");
    browser
        .wait_until(
            "the hosting theme on the account page",
            "return document.body.classList.contains('theme-hosting');",
            vec![],
        )
        .await;
    browser
        .assert_clean_console("the hosting account page")
        .await;
    browser.quit().await;
}

async fn password_generator_fills_both_fields(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let browser = Browser::start().await;
    browser.open(&app.url("/register")).await;
    browser.see("Create an account").await;
    browser.type_into("name", "Ada Lovelace").await;
    browser.type_into("email", "ada@example.com").await;
    browser.press_button("Generate a strong password").await;

    let values = browser
        .wait_until(
            "both password boxes filled",
            "const a = document.querySelector('input[name=password]').value;
             const b = document.querySelector('input[name=password_confirm]').value;
             return a ? [a, b] : null;",
            vec![],
        )
        .await;
    let (password, confirm) = (
        values[0].as_str().unwrap_or_default(),
        values[1].as_str().unwrap_or_default(),
    );
    assert_eq!(password, confirm, "both boxes hold the same password");
    assert!(password.chars().count() >= 16, "{password:?}");
    // Top level on the meter, in words too.
    let meter = browser
        .wait_until(
            "the strength meter",
            "const m = document.querySelector('.pw-meter');
             return m ? { level: m.getAttribute('data-level'), text: m.innerText } : null;",
            vec![],
        )
        .await;
    assert_eq!(meter["level"], json!("4"), "{meter} for {password:?}");
    browser.see("Password strength: Strong").await;
    browser
        .see("A strong 16-character password is now in both boxes")
        .await;

    browser.click_button("Create account").await;
    browser.see("Check your email").await;
    browser.see("ada@example.com").await;
    assert_eq!(browser.current_url().await.path(), "/register");
    app.wait_for_mail_to("ada@example.com", 1).await;
    browser.assert_clean_console("/register").await;
    browser.quit().await;
}

async fn browser_turns_on_two_step_sign_in_and_signs_in_with_a_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "jane@example.com";
    app.create_user(email, PW, "Jane Doe").await;
    let browser = Browser::start().await;

    browser.open(&app.url("/login")).await;
    sign_in(&browser, email, PW).await;
    browser.wait_for_path("/account").await;

    // The two-step sign-in page: off, with a way to turn it on.
    browser.open(&app.url("/account/mfa")).await;
    browser.follow_link("Turn on two-step sign-in").await;
    browser.wait_for_path("/account/mfa/setup").await;
    // A QR code big enough to scan, and the key to type by hand.
    browser
        .wait_until(
            "a QR code on the page",
            "return [...document.querySelectorAll('svg')]
               .some(s => s.getBoundingClientRect().width >= 100);",
            vec![],
        )
        .await;
    let shown = browser
        .wait_until(
            "the setup key (#manual-key)",
            "const k = document.getElementById('manual-key');
             return k && k.getClientRects().length > 0 ? k.innerText : null;",
            vec![],
        )
        .await;
    let key = shown.as_str().unwrap_or_default().trim().to_owned();
    assert!(
        key.split_whitespace().count() > 1 && key.split_whitespace().all(|group| group.len() <= 4),
        "groups of four: {key:?}"
    );
    // Typed into the "app" as shown, spaces and all.
    browser
        .type_into("code", &tests::totp::code_at(&key, app.clock_now()))
        .await;
    browser.click_button("Turn on").await;
    let codes = browser
        .wait_until(
            "ten recovery codes",
            "const codes = document.body.innerText.split(/\\s+/)
               .filter(w => /^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/.test(w));
             return codes.length >= 10 ? codes : null;",
            vec![],
        )
        .await;
    assert_eq!(codes.as_array().map(Vec::len), Some(10), "{codes}");
    browser.follow_link("Continue").await;
    browser.open(&app.url("/account/mfa")).await;
    browser
        .wait_until(
            "the form to turn it off",
            "return !!document.querySelector('form[action=\"/account/mfa/disable\"]');",
            vec![],
        )
        .await;

    // Sign out, and in again: the password, then a code of the next 30 seconds.
    browser.open(&app.url("/account")).await;
    browser.click_button("Sign out").await;
    browser.wait_for_path("/login").await;
    app.clock.advance(time::Duration::seconds(30));
    sign_in(&browser, email, PW).await;
    browser.wait_for_path("/login/otp").await;
    browser.see(email).await;
    browser
        .type_into("code", &tests::totp::code_at(&key, app.clock_now()))
        .await;
    browser.click_button("Verify").await;
    browser.wait_for_path("/account").await;
    browser.see("Jane Doe").await;
    browser.assert_clean_console("two-step sign-in").await;
    browser.quit().await;
}

async fn administrator_runs_the_console_in_a_browser(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = app.create_user("root@example.com", PW, "Root Admin").await;
    app.state
        .store
        .set_user_admin(&root.id, true, app.clock_now())
        .await
        .unwrap();
    app.create_user("carol@example.com", PW, "Carol Locked")
        .await;
    let carol = app.other_browser();
    for _ in 0..5 {
        carol
            .sign_in("carol@example.com", "Wrong-Horse-Battery-1")
            .await;
    }
    let browser = Browser::start().await;

    // The console sends the administrator to sign in: password, then (the
    // first time) an authenticator is set up before the console opens.
    browser.open(&app.admin_url("/admin/")).await;
    browser.wait_for_path("/login").await;
    sign_in(&browser, "root@example.com", PW).await;
    browser.wait_for_path("/login/mfa-setup").await;
    let key = browser
        .wait_until(
            "the setup key (#manual-key)",
            "const k = document.getElementById('manual-key');
             return k && k.getClientRects().length > 0 ? k.innerText : null;",
            vec![],
        )
        .await;
    let key = key.as_str().unwrap_or_default().to_owned();
    browser
        .type_into("code", &tests::totp::code_at(&key, app.clock_now()))
        .await;
    browser.click_button("Turn on").await;
    browser.see("recovery codes").await;
    browser.follow_link("Continue").await;
    browser.wait_for_path("/admin/").await;
    browser.see("Dashboard").await;
    browser.see("Root Admin").await;
    browser.see("locked now").await;
    save_screenshot(&browser, "console-dashboard").await;

    // A new client, its secret shown once.
    browser.follow_link("Clients").await;
    browser.follow_link("New client").await;
    browser.wait_for_path("/admin/clients/new").await;
    browser.type_into("client_id", "billing").await;
    browser.type_into("name", "Billing").await;
    browser
        .type_into("redirect_uris", "https://billing.example.com/callback")
        .await;
    browser.click_button("Create client").await;
    browser.see("Copy the secret now").await;
    let secret = browser
        .wait_until(
            "the secret",
            "const s = document.getElementById('client-secret'); return s ? s.value : null;",
            vec![],
        )
        .await;
    assert_eq!(secret.as_str().map(str::len), Some(43), "{secret}");

    // The locked user: found, unlocked, their sessions ended after a confirmation.
    browser.follow_link("Users").await;
    browser.type_into("q", "carol").await;
    browser.click_button("Search").await;
    browser.follow_link("carol@example.com").await;
    browser.see("locked until").await;
    browser.click_button("Unlock").await;
    browser.see("The account is unlocked").await;
    save_screenshot(&browser, "console-user").await;
    browser.click_button("Sign out everywhere").await;
    browser.see("Every browser session ends").await;
    browser.click_button("Sign out everywhere").await;
    browser.see("Every session ended").await;
    assert!(
        carol
            .sign_in("carol@example.com", PW)
            .await
            .status
            .is_redirection(),
        "Carol signs in again"
    );

    // Both actions in the audit log, with the administrator.
    browser.follow_link("Audit log").await;
    browser.see("admin.client_created").await;
    browser.see("admin.user_unlocked").await;
    browser.type_into("type", "admin.user_unlocked").await;
    browser.click_button("Filter").await;
    browser.see("admin.user_unlocked").await;
    let text = browser.text().await;
    assert!(!text.contains("admin.client_created"), "filtered: {text}");
    browser.assert_clean_console("the admin console").await;

    // The audit log on a phone (390 px): the page never scrolls sideways.
    browser
        .cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true }),
        )
        .await;
    browser.follow_link("Audit log").await;
    browser
        .wait_until(
            "the audit log to fit a 390 px screen",
            "return document.readyState === 'complete'
               && window.innerWidth <= 400
               && document.documentElement.scrollWidth <= window.innerWidth
               ? document.documentElement.scrollWidth : null;",
            vec![],
        )
        .await;
    browser.see("admin.user_unlocked").await;
    save_screenshot(&browser, "console-audit-phone").await;
    browser
        .cdp("Emulation.clearDeviceMetricsOverride", json!({}))
        .await;

    // Signing out goes through the provider and back.
    browser.click_button("Sign out").await;
    browser.wait_for_path("/admin/signed-out").await;
    browser.see("You are signed out").await;
    browser.open(&app.admin_url("/admin/")).await;
    browser.wait_for_path("/login").await;
    browser.quit().await;
}

async fn browser_keeps_the_profile_and_signs_out_a_forgotten_device(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let jane = app.create_user("jane@example.com", PW, "Jane Doe").await;
    // An app Jane allowed once.
    let mut planner = NewClient::app("planner", "Trip Planner", "https://planner.example.com/cb");
    planner.first_party = false;
    register_client(&app, planner).await;
    let scopes = ["openid".to_owned(), "email".to_owned()];
    let (client, now) = (
        idp::domain::ClientId::parse("planner").unwrap(),
        app.clock_now(),
    );
    app.state
        .store
        .grant_consent(&jane.id, &client, &scopes, now)
        .await
        .unwrap();
    // Signed in at the library too, and forgot to sign out there.
    let library = app.browser_as(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0",
    );
    library.signed_in("jane@example.com", PW).await;
    let browser = Browser::start().await;
    browser.open(&app.url("/login")).await;
    sign_in(&browser, "jane@example.com", PW).await;
    browser.wait_for_path("/account").await;

    // A new name.
    browser
        .follow_link("Change your name or email address")
        .await;
    browser.wait_for_path("/account/profile").await;
    browser.type_into("name", "Jane Q. Doe").await;
    browser.click_button("Save name").await;
    browser.see("Your name is saved.").await;

    // A new address, confirmed from the mail.
    browser.type_into("new_email", "jane.new@example.com").await;
    browser.type_into("password", PW).await;
    browser.click_button("Send a confirmation link").await;
    browser.see("We sent a link to jane.new@example.com").await;
    let mail = app.wait_for_mail_to("jane.new@example.com", 1).await;
    browser
        .open(&app.url(&link_in(&mail, "/account/email/confirm")))
        .await;
    browser.see("Confirm your new email address").await;
    browser.click_button("Confirm new address").await;
    browser
        .see("From now on you sign in with jane.new@example.com")
        .await;
    browser.follow_link("Go to your account").await;
    browser.see("Jane Q. Doe").await;
    browser.see("jane.new@example.com").await;

    // The app's access, removed with its button (inside its card).
    browser.follow_link("Connected apps").await;
    browser.see("Trip Planner").await;
    browser.click_button("Remove access for Trip Planner").await;
    browser.see("Access removed").await;
    assert!(app.state.store.consents(&jane.id).await.unwrap().is_empty());
    browser.follow_link("Back to your account").await;

    // The library computer, signed out from here.
    browser.follow_link("Signed-in devices").await;
    browser.wait_for_path("/account/sessions").await;
    browser.see("This device").await;
    save_screenshot(&browser, "account-devices").await;
    browser.click_button("Sign out Edge on Windows").await;
    browser.see("That device is signed out.").await;
    assert_eq!(
        library.page("/account").await.status,
        reqwest::StatusCode::SEE_OTHER,
        "the library is sent to sign in"
    );

    // All of it, in the account's recent activity.
    browser.follow_link("Back to your account").await;
    browser.follow_link("Recent activity").await;
    browser.wait_for_path("/account/activity").await;
    for what in [
        "A device was signed out",
        "An app's access was removed",
        "Email address changed",
        "Name changed",
        "Signed in",
    ] {
        browser.see(what).await;
    }
    browser
        .assert_clean_console("the profile, devices and activity pages")
        .await;
    browser.quit().await;
}
