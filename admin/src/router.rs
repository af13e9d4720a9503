//! The console's routes.

use axum::Router;
use axum::routing::{get, post};

use crate::console::Console;
use crate::pages::{clients, dashboard, passkeys, records, users};
use crate::{layers, oidc, views};

impl Console {
    /// The console's routes, every one under `/admin/` (the admin API's
    /// `/admin/api/` is not among them, so both merge into one router).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/admin", get(dashboard::redirect_to_slash))
            .route("/admin/", get(dashboard::show))
            .route("/admin/static/console.css", get(views::stylesheet))
            .route("/admin/static/favicon.svg", get(views::favicon))
            .route("/admin/login", get(oidc::login))
            .route("/admin/callback", get(oidc::callback))
            .route("/admin/logout", post(oidc::logout))
            .route("/admin/signed-out", get(oidc::signed_out))
            .route("/admin/users", get(users::list).post(users::create))
            .route("/admin/users/new", get(users::new_form))
            .route("/admin/users/{id}", get(users::show).post(users::update))
            .route("/admin/users/{id}/{action}", post(users::act))
            .route(
                "/admin/users/{id}/sessions/{sid}/end",
                post(users::end_session),
            )
            .route(
                "/admin/users/{id}/refresh-tokens/{fid}/revoke",
                post(users::revoke_refresh_token),
            )
            .route(
                "/admin/users/{id}/passkeys/{pid}/remove",
                post(passkeys::remove),
            )
            .route("/admin/clients", get(clients::list).post(clients::create))
            .route("/admin/clients/new", get(clients::new_form))
            .route(
                "/admin/clients/{id}",
                get(clients::show).post(clients::update),
            )
            .route("/admin/clients/{id}/rotate-secret", post(clients::rotate))
            .route("/admin/clients/{id}/delete", post(clients::delete))
            .route("/admin/audit", get(records::audit))
            .route("/admin/mail", get(records::mail))
            .route("/admin/mail/{id}/retry", post(records::retry_mail))
            .route("/admin/keys", get(records::keys).post(records::rotate_keys))
            // Any other page under /admin/ (the API's own paths match first).
            .route("/admin/{*rest}", get(dashboard::not_found))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                layers::render_errors,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                layers::security_headers,
            ))
            .with_state(self.clone())
    }
}
