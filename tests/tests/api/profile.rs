//! The account holder's profile (`/account/profile`): the name, and the
//! email address, which changes only once a link mailed to the new address
//! is opened; the old address is told. The answer never says whether
//! another account has the address asked for.

use reqwest::StatusCode;
use tests::browser::{MailApp, link_in};

use crate::Backend;

on_both_backends!(
    a_person_changes_their_name,
    a_new_address_takes_effect_once_its_link_is_opened,
    the_answer_never_says_an_address_is_taken,
    a_change_link_expires_and_mistakes_change_nothing,
);

const PW: &str = "Correct-Horse-Battery-9";
const PROFILE: &str = "/account/profile";
const EMAIL_FORM: &str = "/account/email";

async fn signed_in_jane(backend: Backend) -> MailApp {
    let app = MailApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    app.signed_in("jane@example.com", PW).await;
    app
}

async fn ask_for(app: &MailApp, new_email: &str, password: &str) -> tests::browser::Page {
    let fields = [("new_email", new_email), ("password", password)];
    app.submit(PROFILE, EMAIL_FORM, &fields).await
}

async fn email_of(app: &MailApp, address: &str) -> bool {
    let email = idp::domain::Email::parse(address).unwrap();
    app.state
        .store
        .user_by_email(&email)
        .await
        .unwrap()
        .is_some()
}

async fn a_person_changes_their_name(backend: Backend) {
    let app = signed_in_jane(backend).await;
    let account = app.page("/account").await;
    let link = account
        .link("Change your name or email address")
        .expect("linked from the account page");
    assert_eq!(link, PROFILE);

    let empty = app.submit(PROFILE, PROFILE, &[("name", "  ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!empty.field_errors("name").is_empty(), "{}", empty.text());
    let long = "J".repeat(201);
    let too_long = app.submit(PROFILE, PROFILE, &[("name", &long)]).await;
    assert!(
        !too_long.field_errors("name").is_empty(),
        "{}",
        too_long.text()
    );

    let saved = app
        .submit(PROFILE, PROFILE, &[("name", "Jane Q. Doe")])
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text());
    assert!(saved.contains("Your name is saved"), "{}", saved.text());
    assert!(app.page("/account").await.contains("Jane Q. Doe"));
    let events = app.state.store.audit_events(None, 20).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event.kind == "profile.name_changed")
    );
}

async fn a_new_address_takes_effect_once_its_link_is_opened(backend: Backend) {
    let app = signed_in_jane(backend).await;
    let asked = ask_for(&app, "Jane.New@example.com", PW).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
    assert!(
        asked.contains("We sent a link to Jane.New@example.com"),
        "{}",
        asked.text()
    );
    let mail = app.wait_for_mail_to("jane.new@example.com", 1).await;
    assert!(
        mail.text_body().contains("jane@example.com"),
        "names the old address"
    );
    assert!(
        email_of(&app, "jane@example.com").await,
        "nothing changed yet"
    );
    assert!(
        app.mail_to("jane@example.com").is_empty(),
        "nothing for the old address yet"
    );

    // A second change asked meanwhile: whichever link is confirmed first wins.
    ask_for(&app, "jane.other@example.com", PW).await;
    let other = app.wait_for_mail_to("jane.other@example.com", 1).await;

    // Opened from the mail program's browser, not signed in.
    let link = link_in(&mail, "/account/email/confirm");
    let reader = app.other_browser();
    let asked = reader.page(&link).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
    assert!(
        asked.contains("Confirm your new email address"),
        "{}",
        asked.text()
    );
    // Opening it (as a mail scanner does) changes nothing; the button does.
    assert!(email_of(&app, "jane@example.com").await, "not by a GET");
    let (action, fields) = asked
        .button_form("Confirm new address")
        .expect("a button to confirm");
    let done = reader.post(&action, &fields).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(done.contains("Email address changed"), "{}", done.text());
    assert!(done.contains("Jane.New@example.com"), "{}", done.text());

    let email = idp::domain::Email::parse("jane.new@example.com").unwrap();
    let jane = app
        .state
        .store
        .user_by_email(&email)
        .await
        .unwrap()
        .expect("moved");
    assert!(jane.email_verified, "opening the link proved the address");
    assert!(!email_of(&app, "jane@example.com").await);
    let told = app.wait_for_mail_to("jane@example.com", 1).await;
    assert!(
        told.text_body().contains("Jane.New@example.com"),
        "{}",
        told.text_body()
    );

    let browser = app.other_browser();
    assert!(
        !browser
            .sign_in("jane@example.com", PW)
            .await
            .status
            .is_redirection(),
        "the old address no longer signs in"
    );
    assert!(
        browser
            .sign_in("Jane.New@example.com", PW)
            .await
            .status
            .is_redirection()
    );

    let stale = reader
        .page(&link_in(&other, "/account/email/confirm"))
        .await;
    let (action, fields) = stale
        .button_form("Confirm new address")
        .expect("still pending");
    let lost = reader.post(&action, &fields).await;
    assert_eq!(lost.status, StatusCode::BAD_REQUEST, "{}", lost.text());
    assert!(
        email_of(&app, "jane.new@example.com").await,
        "the first one stays"
    );

    let again = reader.page(&link).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "a link works once");
    let events = app
        .state
        .store
        .audit_events(Some(&jane.id), 20)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event.kind == "email_change.confirmed")
    );
}

async fn the_answer_never_says_an_address_is_taken(backend: Backend) {
    let app = signed_in_jane(backend).await;
    app.create_user("bob@example.com", PW, "Bob").await;
    let taken = ask_for(&app, "bob@example.com", PW).await;
    let free = ask_for(&app, "jane.free@example.com", PW).await;
    assert_eq!(taken.status, free.status);
    let said = |page: &tests::browser::Page, address: &str| page.text().replace(address, "ADDRESS");
    assert_eq!(
        said(&taken, "bob@example.com"),
        said(&free, "jane.free@example.com"),
        "the same answer"
    );
    let warning = app.wait_for_mail_to("bob@example.com", 1).await;
    assert!(
        warning.text_body().contains("nothing changed"),
        "{}",
        warning.text_body()
    );
    assert!(
        !warning.text_body().contains("/account/email/confirm"),
        "no link for it"
    );
    app.wait_for_mail_to("jane.free@example.com", 1).await;
    assert!(email_of(&app, "jane@example.com").await);
    assert!(email_of(&app, "bob@example.com").await);
    // Nor does Jane's recent activity tell the two requests apart.
    let activity = app.page("/account/activity").await;
    assert_eq!(
        activity
            .text()
            .matches("Change of email address asked for")
            .count(),
        2,
        "{}",
        activity.text()
    );
}

async fn a_change_link_expires_and_mistakes_change_nothing(backend: Backend) {
    let app = signed_in_jane(backend).await;
    for (new_email, password, field) in [
        ("not-an-address", PW, "new_email"),
        ("JANE@example.com", PW, "new_email"),
        ("jane.new@example.com", "Wrong-Horse-Battery-1", "password"),
    ] {
        let refused = ask_for(&app, new_email, password).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{new_email}"
        );
        assert!(
            !refused.field_errors(field).is_empty(),
            "{new_email}: {}",
            refused.text()
        );
    }
    let form = app.page(PROFILE).await;
    let mut fields = form.hidden_fields(EMAIL_FORM);
    fields.retain(|(k, _)| k != "csrf_token");
    fields.push(("new_email".into(), "jane.new@example.com".into()));
    fields.push(("password".into(), PW.into()));
    assert_eq!(
        app.post(EMAIL_FORM, &fields).await.status,
        StatusCode::FORBIDDEN
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        app.mail_to("jane.new@example.com").is_empty(),
        "no mail for a refused request"
    );

    ask_for(&app, "jane.new@example.com", PW).await;
    let mail = app.wait_for_mail_to("jane.new@example.com", 1).await;
    assert!(
        mail.text_body().contains("60 minutes"),
        "{}",
        mail.text_body()
    );
    app.clock.advance(time::Duration::minutes(61));
    let late = app
        .other_browser()
        .page(&link_in(&mail, "/account/email/confirm"))
        .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert!(late.contains("no longer valid"), "{}", late.text());
    assert!(email_of(&app, "jane@example.com").await, "unchanged");

    // Five requests an hour, right or wrong; the sixth waits, whatever it says.
    for _ in 0..5 {
        let fine = ask_for(&app, "jane.new@example.com", PW).await;
        assert_eq!(fine.status, StatusCode::OK, "{}", fine.text());
    }
    let sixth = ask_for(&app, "jane.new@example.com", "Wrong-Horse-Battery-1").await;
    assert_eq!(
        sixth.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        sixth.text()
    );
    assert!(
        sixth.field_errors("password").is_empty(),
        "the password is not even tried: {}",
        sixth.text()
    );
}
