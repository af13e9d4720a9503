//! `/admin/api/clients`: relying parties. Register (the secret is shown
//! once), read, edit redirect URIs, theme, grants, scopes and the rest, and
//! rotate a secret. The rules are the OIDC capability's (`oidc::clients`);
//! this file only speaks HTTP. Every change is audited.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::auth::{Admin, Principal};
use super::error::{ApiError, ErrorBody, Id, bad_request};
use super::shared::{Subject, audit, rfc3339};
use crate::domain::{AuditKind, ClientId, ClientKind, GrantType, IdTokenAlg, RedirectUri};
use crate::oidc::{
    ClientChanges, ClientRegistration, RegisterClientError, UpdateClientError,
    register_client_with_scopes, rotate_client_secret, update_client,
};
use crate::store::Client;
use crate::web::AppState;

/// A registered client (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    /// `confidential` (has a secret) or `public` (PKCE).
    pub kind: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Users are not asked for consent.
    pub first_party: bool,
    pub theme: Option<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub id_token_alg: String,
    pub require_mfa: bool,
    /// PKCE (S256) required even though the client is confidential (public clients always need it).
    pub require_pkce: bool,
    /// The claim in which this client receives the account's id in its
    /// portal (its client id, else its theme), when the account has one;
    /// `null`: no such claim.
    pub external_id_claim: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.id.to_string(),
            name: c.name.clone(),
            kind: c.kind.as_str().to_owned(),
            redirect_uris: c
                .redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            post_logout_redirect_uris: c
                .post_logout_redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            first_party: c.first_party,
            theme: c.theme.clone(),
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            scopes: c.scopes.clone(),
            id_token_alg: c.id_token_alg.as_str().to_owned(),
            require_mfa: c.require_mfa,
            require_pkce: c.require_pkce,
            external_id_claim: c.external_id_claim.clone(),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    /// Ordered by client id.
    pub items: Vec<ClientView>,
}

/// A registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    /// 1 to 64 characters from A-Z a-z 0-9 . _ ~ -
    #[schema(pattern = r"^[A-Za-z0-9._~-]{1,64}$")]
    pub client_id: String,
    pub name: String,
    /// A public client: no secret, PKCE required.
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub first_party: bool,
    pub theme: Option<String>,
    /// Default: authorization_code, refresh_token, and client_credentials for confidential clients.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// `RS256` (default), `ES256` or `EdDSA`.
    pub id_token_alg: Option<String>,
    #[serde(default)]
    pub require_mfa: bool,
    /// Require PKCE of a confidential client too (RFC 9700); public clients always need it.
    #[serde(default)]
    pub require_pkce: bool,
    /// Default: openid, profile, email, offline_access. `admin` opens this API to the client.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The claim in which the client receives the account's id in its
    /// portal (imported accounts): a letter, then letters, digits, _ - . (at
    /// most 64), not a registered claim such as sub or email.
    #[schema(pattern = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
    pub external_id_claim: Option<String>,
}

/// Changes to a client; absent members stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub first_party: Option<bool>,
    /// `null` takes the theme away (the default theme then).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub theme: Option<Option<String>>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub id_token_alg: Option<String>,
    pub require_mfa: Option<bool>,
    pub require_pkce: Option<bool>,
    /// `null` stops sending the claim.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
    pub external_id_claim: Option<Option<String>>,
}

/// A member present in the body, even as `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A client's secret, shown only in this answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientSecret {
    pub client: ClientView,
    /// `null` for public clients.
    pub client_secret: Option<String>,
}

fn client_id(raw: &str) -> Result<ClientId, ApiError> {
    ClientId::parse(raw).map_err(|_| ApiError::NotFound("no client has this id"))
}

fn uris(field: &str, list: &[String]) -> Result<Vec<RedirectUri>, ApiError> {
    list.iter()
        .map(|u| RedirectUri::parse(u).map_err(|e| bad_request(format!("{field}: {u}: {e}"))))
        .collect()
}

fn grants(list: &[String]) -> Result<Vec<GrantType>, ApiError> {
    list.iter()
        .map(|g| {
            g.parse::<GrantType>()
                .map_err(|_| bad_request(format!("grant_types: unknown grant type {g}")))
        })
        .collect()
}

fn alg(raw: &str) -> Result<IdTokenAlg, ApiError> {
    raw.parse::<IdTokenAlg>()
        .map_err(|_| bad_request("id_token_alg must be RS256, ES256 or EdDSA"))
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(b)| b)
        .map_err(|e| bad_request(e.body_text()))
}

/// A secret is in the body: no cache may keep it.
fn secret_response(status: StatusCode, answer: ClientSecret) -> Response {
    let mut response = (status, Json(answer)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Automation must not lock itself out: the calling client cannot remove
/// itself, nor take away its own `admin` scope or client_credentials grant.
fn not_itself(admin: &Admin, id: &ClientId, patch: Option<&ClientPatch>) -> Result<(), ApiError> {
    let Principal::Client(me) = &admin.principal else {
        return Ok(());
    };
    if me != id {
        return Ok(());
    }
    let conflict = |what: &str| {
        Err(ApiError::Conflict(format!(
            "a client cannot {what}; use another administrator"
        )))
    };
    let Some(p) = patch else {
        return conflict("remove itself");
    };
    if p.scopes
        .as_ref()
        .is_some_and(|s| !s.iter().any(|s| s == super::auth::ADMIN_SCOPE))
    {
        return conflict("take away its own admin scope");
    }
    if p.grant_types
        .as_ref()
        .is_some_and(|g| !g.iter().any(|g| g == GrantType::ClientCredentials.as_str()))
    {
        return conflict("take away its own client_credentials grant");
    }
    Ok(())
}

fn update_error(e: UpdateClientError) -> ApiError {
    match e {
        UpdateClientError::NotFound => ApiError::NotFound("no client has this id"),
        UpdateClientError::Invalid(m) => bad_request(m),
        UpdateClientError::Changed | UpdateClientError::NoSecret => {
            ApiError::Conflict(e.to_string())
        }
        UpdateClientError::Store(s) => s.into(),
    }
}

/// Every client.
#[utoipa::path(
    get,
    path = "/admin/api/clients",
    tag = "clients",
    responses((status = 200, body = ClientList)),
    security(("bearer" = []))
)]
pub async fn list(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<ClientList>, ApiError> {
    let clients = state.store.list_clients().await?;
    Ok(Json(ClientList {
        items: clients.iter().map(Into::into).collect(),
    }))
}

/// One client.
#[utoipa::path(
    get,
    path = "/admin/api/clients/{id}",
    tag = "clients",
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, body = ClientView), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn show(
    _admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<ClientView>, ApiError> {
    let client = state
        .store
        .client_by_id(&client_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("no client has this id"))?;
    Ok(Json((&client).into()))
}

/// Register a client; a confidential client's secret is in this answer only.
#[utoipa::path(
    post,
    path = "/admin/api/clients",
    tag = "clients",
    request_body = NewClientBody,
    responses(
        (status = 201, body = ClientSecret),
        (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The client id is taken"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    admin: Admin,
    State(state): State<AppState>,
    payload: Result<Json<NewClientBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let b = body(payload)?;
    super::themes::check_theme(&state.themes, b.theme.as_deref())?;
    let registration = ClientRegistration {
        id: ClientId::parse(&b.client_id).map_err(|e| bad_request(format!("client_id: {e}")))?,
        name: b.name,
        kind: if b.public {
            ClientKind::Public
        } else {
            ClientKind::Confidential
        },
        redirect_uris: uris("redirect_uris", &b.redirect_uris)?,
        post_logout_redirect_uris: uris("post_logout_redirect_uris", &b.post_logout_redirect_uris)?,
        first_party: b.first_party,
        theme: b.theme,
        grant_types: grants(&b.grant_types)?,
        id_token_alg: b
            .id_token_alg
            .as_deref()
            .map(alg)
            .transpose()?
            .unwrap_or(IdTokenAlg::RS256),
        require_mfa: b.require_mfa,
        require_pkce: b.require_pkce,
        external_id_claim: b.external_id_claim,
    };
    let registered = register_client_with_scopes(
        state.store.as_ref(),
        state.clock.as_ref(),
        registration,
        &b.scopes,
    )
    .await
    .map_err(|e| match e {
        RegisterClientError::Duplicate(_) => ApiError::Conflict(e.to_string()),
        RegisterClientError::Invalid(m) => bad_request(m),
        RegisterClientError::Store(s) => s.into(),
    })?;
    let client = registered.client;
    audit(
        &state,
        &admin,
        AuditKind::AdminClientCreated,
        Subject::Client(&client.id),
        json!({ "scopes": client.scopes, "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>() }),
    )
    .await?;
    Ok(secret_response(
        StatusCode::CREATED,
        ClientSecret {
            client: (&client).into(),
            client_secret: registered.secret,
        },
    ))
}

/// Change a client: redirect URIs, theme, grants, scopes, name, flags.
#[utoipa::path(
    patch,
    path = "/admin/api/clients/{id}",
    tag = "clients",
    params(("id" = String, Path, description = "Client id")),
    request_body = ClientPatch,
    responses(
        (status = 200, body = ClientView),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Changed meanwhile by someone else, or the calling client taking away its own admin scope or client_credentials grant"),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
    payload: Result<Json<ClientPatch>, JsonRejection>,
) -> Result<Json<ClientView>, ApiError> {
    let id = client_id(&id)?;
    let p = body(payload)?;
    not_itself(&admin, &id, Some(&p))?;
    let mut changed: Vec<&str> = Vec::new();
    let mut note = |name: &'static str, present: bool| {
        if present {
            changed.push(name);
        }
    };
    note("name", p.name.is_some());
    note("redirect_uris", p.redirect_uris.is_some());
    note(
        "post_logout_redirect_uris",
        p.post_logout_redirect_uris.is_some(),
    );
    note("first_party", p.first_party.is_some());
    note("theme", p.theme.is_some());
    note("grant_types", p.grant_types.is_some());
    note("scopes", p.scopes.is_some());
    note("id_token_alg", p.id_token_alg.is_some());
    note("require_mfa", p.require_mfa.is_some());
    note("require_pkce", p.require_pkce.is_some());
    note("external_id_claim", p.external_id_claim.is_some());
    if let Some(Some(theme)) = &p.theme
        && !state.themes.exists(theme)
    {
        // A theme removed from the disk since may stay as it is.
        let current = state.store.client_by_id(&id).await?;
        if current.and_then(|c| c.theme).as_deref() != Some(theme.as_str()) {
            super::themes::check_theme(&state.themes, Some(theme))?;
        }
    }
    let changes = ClientChanges {
        name: p.name,
        redirect_uris: p
            .redirect_uris
            .as_deref()
            .map(|u| uris("redirect_uris", u))
            .transpose()?,
        post_logout_redirect_uris: p
            .post_logout_redirect_uris
            .as_deref()
            .map(|u| uris("post_logout_redirect_uris", u))
            .transpose()?,
        first_party: p.first_party,
        theme: p.theme,
        grant_types: p.grant_types.as_deref().map(grants).transpose()?,
        scopes: p.scopes,
        id_token_alg: p.id_token_alg.as_deref().map(alg).transpose()?,
        require_mfa: p.require_mfa,
        require_pkce: p.require_pkce,
        external_id_claim: p.external_id_claim,
    };
    let client = update_client(state.store.as_ref(), state.clock.as_ref(), &id, changes)
        .await
        .map_err(update_error)?;
    // This node at once; the others within their cache's few seconds.
    state.clients.forget(&id);
    audit(
        &state,
        &admin,
        AuditKind::AdminClientUpdated,
        Subject::Client(&id),
        json!({ "changed": changed }),
    )
    .await?;
    Ok(Json((&client).into()))
}

/// Removes a client: its secret stops working, its users' consents and
/// refresh tokens go with it; access tokens it holds run out within their
/// lifetime. The console's own client cannot be removed from the console.
#[utoipa::path(
    delete,
    path = "/admin/api/clients/{id}",
    tag = "clients",
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The admin console's own client, or the calling client itself"),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    let id = client_id(&id)?;
    not_itself(&admin, &id, None)?;
    if id.as_str() == super::CONSOLE_CLIENT_ID {
        return Err(ApiError::Conflict(
            "the admin console's own client cannot be removed".into(),
        ));
    }
    if !state.store.delete_client(&id).await? {
        return Err(ApiError::NotFound("no client has this id"));
    }
    state.clients.forget(&id);
    audit(
        &state,
        &admin,
        AuditKind::AdminClientDeleted,
        Subject::Client(&id),
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret for a confidential client; the old one stops working.
#[utoipa::path(
    post,
    path = "/admin/api/clients/{id}/rotate-secret",
    tag = "clients",
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, body = ClientSecret),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A public client has no secret"),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_secret(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let id = client_id(&id)?;
    let (client, secret) = rotate_client_secret(state.store.as_ref(), state.clock.as_ref(), &id)
        .await
        .map_err(update_error)?;
    state.clients.forget(&id);
    audit(
        &state,
        &admin,
        AuditKind::AdminClientSecretRotated,
        Subject::Client(&id),
        json!({}),
    )
    .await?;
    Ok(secret_response(
        StatusCode::OK,
        ClientSecret {
            client: (&client).into(),
            client_secret: Some(secret),
        },
    ))
}
