//! `id_token_hint` (OIDC Core 3.1.2.1, RP-Initiated Logout 1.0 §2): an ID
//! token this provider issued, handed back by a relying party to say which
//! account it means. A hint names someone and proves nothing, so an
//! expired one is as good as a fresh one; what is checked is that it is
//! ours: our signature (a key still published), our issuer, and the `typ`
//! of an ID token, so that an access token (`at+jwt`) or a logout token
//! (`logout+jwt`) is no hint.

use super::response::issuer;
use crate::tokens::keys::VerifyOptions;
use crate::web::AppState;

/// What a valid hint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// The account (`sub`).
    pub subject: String,
    /// The clients it was issued to (`aud`), in order.
    pub audiences: Vec<String>,
}

impl IdTokenHint {
    pub fn issued_to(&self, client_id: &str) -> bool {
        self.audiences.iter().any(|a| a == client_id)
    }
}

/// The hint, if it is an ID token of ours; `None` for anything else.
pub fn read(state: &AppState, hint: &str) -> Option<IdTokenHint> {
    let iss = issuer(state);
    let options = VerifyOptions {
        typ: Some("JWT"),
        issuer: Some(&iss),
        audience: None,
        // Expired hints are fine (see above); ten years is "any".
        leeway: time::Duration::days(3650),
    };
    let claims = state.keys.verify_claims(hint, &options).ok()?;
    let subject = claims.get("sub")?.as_str()?.to_owned();
    let audiences = match claims.get("aud")? {
        serde_json::Value::String(a) => vec![a.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => return None,
    };
    Some(IdTokenHint { subject, audiences })
}
