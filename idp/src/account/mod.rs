//! Customer accounts: sign-in, registration and email verification, forgotten
//! and changed passwords; plus the account creation used by the CLI; the
//! account's profile (name, email address) and signed-in devices. Lockout,
//! hashing, the password policy, guess limits and captcha are shared with
//! the other capabilities and live in `crate::credentials`.

mod activity;
mod devices;
mod forms;
mod login;
mod profile;
mod register;
mod reset;
mod settings;
mod users;

pub use devices::describe_browser;
pub use reset::mail_reset_link;
pub use users::{CreateUserError, MAX_NAME_CHARS, NewAccount, create_user};

use axum::Router;
use axum::routing::{get, post};

use crate::web::{AppState, paths};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::LOGIN, get(login::page).post(login::submit))
        .route(paths::ACCOUNT, get(login::account))
        .route(paths::REGISTER, get(register::page).post(register::submit))
        .route(
            paths::VERIFY_EMAIL,
            get(register::verify_page).post(register::verify),
        )
        .route(
            paths::FORGOT_PASSWORD,
            get(reset::forgot_page).post(reset::forgot_submit),
        )
        .route(
            paths::RESET_PASSWORD,
            get(reset::reset_page).post(reset::reset_submit),
        )
        .route(
            paths::CHANGE_PASSWORD,
            get(settings::page).post(settings::submit),
        )
        .route(
            paths::ACCOUNT_PROFILE,
            get(profile::page).post(profile::save_name),
        )
        .route(paths::ACCOUNT_EMAIL, post(profile::change_email))
        .route(
            paths::CONFIRM_EMAIL_CHANGE,
            get(profile::confirm_page).post(profile::confirm),
        )
        .route(paths::ACCOUNT_ACTIVITY, get(activity::page))
        .route(
            paths::ACCOUNT_SESSIONS,
            get(devices::page).post(devices::end),
        )
}
