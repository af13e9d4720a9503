//! Account mail: rendered from the flow's theme (`mail/<name>.subject.txt`,
//! `.txt`, `.html`) into an [`OutgoingMail`] for the outbox.

use serde::Serialize;

use crate::domain::Email;
use crate::store::OutgoingMail;
use crate::web::theme::{Theme, ThemeError};

#[derive(Serialize)]
struct ThemeView<'a> {
    name: &'a str,
    display_name: &'a str,
    support_text: &'a str,
    /// The portal's colours, for buttons (mail clients ignore stylesheets).
    primary: &'a str,
    primary_text: &'a str,
}

pub fn compose(
    theme: &Theme,
    name: &str,
    to: &Email,
    user_name: &str,
    mut context: tera::Context,
) -> Result<OutgoingMail, ThemeError> {
    context.insert(
        "theme",
        &ThemeView {
            name: &theme.name,
            display_name: &theme.meta.display_name,
            support_text: &theme.meta.support_text,
            primary: &theme.meta.colors.primary,
            primary_text: &theme.meta.colors.primary_text,
        },
    );
    context.insert("user_name", user_name);
    context.insert("email", to.as_str());
    let subject = theme.render(&format!("mail/{name}.subject.txt"), &context)?;
    let body_text = theme.render(&format!("mail/{name}.txt"), &context)?;
    let html_name = format!("mail/{name}.html");
    let body_html = if theme.has_template(&html_name) {
        Some(theme.render(&html_name, &context)?)
    } else {
        None
    };
    Ok(OutgoingMail {
        recipient: to.as_str().to_owned(),
        subject: subject.lines().next().unwrap_or_default().trim().to_owned(),
        body_text,
        body_html,
        sender: theme.meta.mail_from.clone(),
    })
}

/// An absolute link on this deployment.
pub fn link(issuer: &url::Url, path_and_query: &str) -> String {
    format!("{}{path_and_query}", issuer.as_str().trim_end_matches('/'))
}

/// The forgot-password page in the flow's portal (`flow_query`, possibly
/// empty): where a mail sends someone who must take their account back.
pub fn forgot_password_link(issuer: &url::Url, flow_query: &str) -> String {
    link(
        issuer,
        &format!("{}{flow_query}", crate::web::paths::FORGOT_PASSWORD),
    )
}
