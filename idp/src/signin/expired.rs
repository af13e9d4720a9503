//! The one "this sign-in has expired" page, for every step of the pipeline.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;

use crate::web::ui::{Page, Ui};
use crate::web::{AppError, AppState};

/// A pending request or second step that is gone, was finished, or belongs
/// to another browser: a themed page (the session's portal) with a way back.
pub async fn page(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let ui = Ui::new(state, jar, headers, None, None).await?;
    Ok(ui.render(Page::error(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired",
        "Too much time passed, the sign-in was already completed, or it was started in another browser. Go back to the application and start again, or sign in again.",
    )))
}
