//! What the grants share: how a grant is refused, the user it acts for, and
//! the tokens it answers with (RFC 6749 5.1, OIDC Core 3.1.3.3).

use crate::domain::UserId;
use crate::oidc::error::{OAuthCode, OAuthError, oauth};
use crate::oidc::external_id;
use crate::oidc::issue::{self, Authentication, Release, TokenResponse};
use crate::store::{Client, User};
use crate::tokens::AccessClaims;
use crate::web::AppState;

/// `invalid_grant` (RFC 6749 5.2): the code or refresh token cannot be used.
pub fn invalid_grant(description: &str) -> OAuthError {
    oauth(OAuthCode::InvalidGrant, description)
}

/// The user a code or refresh token was issued for, while the account is
/// still there and enabled.
pub async fn active_user(state: &AppState, id: &UserId) -> Result<User, OAuthError> {
    state
        .store
        .user_by_id(id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid_grant("the user is no longer active"))
}

/// The signed tokens of a grant, before they are answered.
pub struct Issued {
    pub access_token: String,
    pub access: AccessClaims,
    pub id_token: Option<String>,
}

impl Issued {
    /// An access token for `user`, and an ID token when `openid` is among
    /// the scopes (with the account's id in the client's portal when the
    /// client asks for it: `oidc::external_id`).
    pub async fn for_user(
        state: &AppState,
        client: &Client,
        user: &User,
        release: Release<'_>,
        nonce: Option<&str>,
        auth: &Authentication,
    ) -> Result<Self, OAuthError> {
        let (access_token, access) =
            issue::access_token(state, &client.id, user.id.as_str(), release, Some(auth))?;
        let id_token = if release.scopes.iter().any(|s| s == "openid") {
            let external_id = external_id::claim(state.store.as_ref(), client, &user.id).await?;
            let subject = issue::IdSubject {
                user,
                portal: external_id
                    .as_ref()
                    .map(|(claim, id)| (claim.as_str(), id.as_str())),
            };
            Some(issue::id_token(
                state,
                client,
                subject,
                release,
                nonce,
                auth,
                &access_token,
            )?)
        } else {
            None
        };
        Ok(Self {
            access_token,
            access,
            id_token,
        })
    }

    /// An access token for the client itself: no user, so no ID token.
    pub fn for_client(
        state: &AppState,
        client: &Client,
        scopes: &[String],
    ) -> Result<Self, OAuthError> {
        let (access_token, access) = issue::access_token(
            state,
            &client.id,
            client.id.as_str(),
            Release::scopes(scopes),
            None,
        )?;
        Ok(Self {
            access_token,
            access,
            id_token: None,
        })
    }

    /// The success body, with the refresh token when one was issued.
    pub fn response(self, state: &AppState, refresh_token: Option<String>) -> TokenResponse {
        TokenResponse {
            access_token: self.access_token,
            token_type: "Bearer",
            expires_in: state.config.tokens.access_token_ttl_secs,
            scope: self.access.scope,
            id_token: self.id_token,
            refresh_token,
        }
    }
}
