//! What every page of the signed-in console shares: the frame around a
//! template, an action through the admin API and what follows it, the
//! "are you sure?" page.

use axum::http::Method;
use axum::response::{IntoResponse, Redirect};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::console::Console;
use crate::error::PageResult;
use crate::form::Fields;
use crate::session::Flash;
use crate::signed::Signed;
use crate::views;

impl Console {
    /// Renders a page of the signed-in console: the frame (navigation, the
    /// administrator, the sign-out form) around `template` with `data`.
    pub(crate) async fn page(
        &self,
        who: &mut Signed,
        template: &str,
        nav: &str,
        data: impl Serialize,
    ) -> PageResult {
        let mut context = views::context(nav, data);
        context.insert(
            "admin",
            &json!({"name": who.data.name, "email": who.data.email, "id": who.data.sub}),
        );
        context.insert("csrf", &who.data.csrf);
        if let Some(flash) = who.data.flash.take() {
            context.insert("flash", &flash);
            self.save(&who.id, &who.data).await?;
        }
        Ok(views::html(self.0.views.render(template, &context)?))
    }

    /// An action through the admin API: `ok` said on the page `back` when
    /// done; a refusal (400, 404, 409) said there instead.
    pub(crate) async fn perform(
        &self,
        who: &mut Signed,
        call: (Method, &str, Option<&Value>),
        ok: String,
        back: &str,
    ) -> PageResult {
        let (method, path, body) = call;
        match self.api_send(who, method, path, body).await {
            Ok(_) => self.done(who, ok, back).await,
            Err(ApiError::Refused { message, .. }) => self.refused(who, message, back).await,
            Err(e) => Err(e.into()),
        }
    }

    /// After an action: a message for the next page, and a redirect to it.
    pub(crate) async fn done(&self, who: &mut Signed, text: String, to: &str) -> PageResult {
        self.flash(who, Flash { ok: true, text }, to).await
    }

    /// After a refused action: why (the admin API's message), on the page
    /// it came from.
    pub(crate) async fn refused(&self, who: &mut Signed, text: String, to: &str) -> PageResult {
        self.flash(who, Flash { ok: false, text }, to).await
    }

    async fn flash(&self, who: &mut Signed, flash: Flash, to: &str) -> PageResult {
        who.data.flash = Some(flash);
        self.save(&who.id, &who.data).await?;
        // 303: the next request is a GET, whatever the form's method was.
        Ok(Redirect::to(to).into_response())
    }

    /// The "are you sure?" page of a destructive action: the same form again,
    /// with `confirmed=yes`.
    pub(crate) async fn confirm(
        &self,
        who: &mut Signed,
        ask: Confirm<'_>,
        fields: &Fields,
    ) -> PageResult {
        let data = json!({
            "title": ask.title,
            "message": ask.message,
            "action": ask.action,
            "button": ask.button,
            "cancel": ask.cancel,
            "fields": fields.carried(),
        });
        self.page(who, "confirm.html", ask.nav, data).await
    }
}

pub(crate) struct Confirm<'a> {
    pub nav: &'a str,
    pub title: String,
    pub message: String,
    pub action: String,
    pub button: &'a str,
    pub cancel: String,
}
