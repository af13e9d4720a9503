//! The `/token` request body (RFC 6749 4.1.3, 4.4.2, 6; RFC 7636 4.5).

use serde::Deserialize;

use crate::oidc::client_auth::ClientForm;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl ClientForm for TokenForm {
    fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
    fn client_secret(&self) -> Option<&str> {
        self.client_secret.as_deref()
    }
}
