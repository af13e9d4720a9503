//! Posted forms as name/value pairs: checkbox groups and repeated names
//! arrive as repeated pairs.

use axum::Form;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};

use crate::error::PageError;

#[derive(Debug, Clone, Default)]
pub(crate) struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }

    /// Every value of `name` (a checkbox group).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A text area or box of entries separated by line breaks or spaces.
    pub fn words(&self, name: &str) -> Vec<String> {
        self.get(name)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// The pairs to carry through a confirmation page (not the CSRF token,
    /// which the page adds afresh, nor the confirmation itself).
    pub fn carried(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| k != "csrf" && k != "confirmed")
            .cloned()
            .collect()
    }

    pub fn confirmed(&self) -> bool {
        self.get("confirmed") == Some("yes")
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match Form::<Vec<(String, String)>>::from_request(req, state).await {
            Ok(Form(pairs)) => Ok(Self(pairs)),
            Err(_) => Err(PageError::Refused("The form could not be read.".into()).into_response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_like_a_browser_sent_them() {
        let f = Fields(vec![
            ("grant".into(), "a".into()),
            ("grant".into(), "b".into()),
            ("name".into(), "  Ops  ".into()),
            ("empty".into(), "   ".into()),
            ("uris".into(), "https://a/cb\r\nhttps://b/cb \n".into()),
            ("csrf".into(), "t".into()),
        ]);
        assert_eq!(f.all("grant"), ["a", "b"]);
        assert_eq!(f.get("name"), Some("Ops"));
        assert_eq!(f.get("empty"), None);
        assert!(!f.checked("missing") && f.checked("name"));
        assert_eq!(f.words("uris"), ["https://a/cb", "https://b/cb"]);
        assert!(f.carried().iter().all(|(k, _)| k != "csrf"));
        assert!(!f.confirmed());
    }
}
