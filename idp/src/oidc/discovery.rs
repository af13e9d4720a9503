//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 section
//! 3): exactly what is implemented, with the paths the router uses.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::web::{AppState, paths};

/// Built once at start-up; the issuer does not change while running.
pub fn document(config: &crate::config::Config) -> String {
    let iss = config
        .server
        .issuer
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let url = |path: &str| format!("{iss}{path}");
    json!({
        "issuer": iss,
        "authorization_endpoint": url(paths::AUTHORIZE),
        "token_endpoint": url(paths::TOKEN),
        "userinfo_endpoint": url(paths::USERINFO),
        "jwks_uri": url(paths::JWKS),
        "introspection_endpoint": url(paths::INTROSPECT),
        "revocation_endpoint": url(paths::REVOKE),
        "end_session_endpoint": url(paths::END_SESSION),
        "scopes_supported": super::request::ADVERTISED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "acr", "amr", "email", "email_verified", "name", "updated_at"],
        "acr_values_supported": [crate::signin::acr::ACR_PASSWORD, crate::signin::acr::ACR_MFA],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        // Individual claims (domain::RequestedClaims), `sub` with a value,
        // and an essential `acr` (signin::acr) are honoured.
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    })
    .to_string()
}

pub async fn discovery(State(state): State<AppState>) -> Response {
    (
        [
            // Static values: a `&str` would be validated and copied into
            // a new allocation on every answer.
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        state.discovery.clone(),
    )
        .into_response()
}
