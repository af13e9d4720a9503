//! Reading a page's form.

use axum::Form;
use axum::extract::rejection::FormRejection;

/// The form, or an empty one when the body could not be read: an empty form
/// fails its CSRF check and gets the "form expired" page, never a bare 400.
pub fn form<T: Default>(body: Result<Form<T>, FormRejection>) -> T {
    body.map(|Form(f)| f).unwrap_or_default()
}
