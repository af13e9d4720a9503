//! The OpenID provider as relying parties see it: a stock RP library (the
//! `openidconnect` crate, configured from discovery) runs the code + PKCE
//! flow, validates ID tokens, refreshes, reads userinfo, introspects, revokes
//! and logs out. The browser part is the kit's cookie-keeping HTTP client
//! following the 303s by hand, so every hop is visible to the test.

use std::collections::HashMap;

use idp::domain::{ClientKind, GrantType as Grant, IdTokenAlg};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGrantType, CoreIdToken, CoreIdTokenClaims,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreRevocableToken,
    CoreSubjectIdentifierType, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AdditionalProviderMetadata, AuthorizationCode, ClientId,
    ClientSecret, CsrfToken, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IntrospectionUrl, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadata, RedirectUrl, RefreshToken,
    RequestTokenError, RevocableToken, RevocationUrl, Scope, StandardErrorResponse,
    TokenIntrospectionResponse, TokenResponse,
};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tests::browser::Page;
use tests::signin::Person;
use time::Duration;

use crate::{Backend, TestApp};

on_both_backends!(
    a_stock_relying_party_signs_in_with_each_algorithm,
    the_sign_in_page_carries_the_pending_request,
    consent_is_asked_once_and_again_with_prompt_consent,
    denying_consent_returns_access_denied,
    offline_access_needs_consent,
    removing_a_grant_revokes_its_refresh_tokens,
    a_live_session_skips_the_password,
    prompt_login_and_max_age_ask_for_the_password_again,
    prompt_login_asks_again_after_a_sign_in_earlier_in_the_same_second,
    a_sign_in_for_the_request_meets_it_however_long_the_way_back,
    prompt_none_without_a_session_returns_login_required,
    form_post_answers_with_a_self_posting_form,
    unknown_client_gets_an_error_page_and_no_redirect,
    unregistered_redirect_uri_gets_an_error_page_and_no_redirect,
    public_client_without_pkce_is_sent_back_with_invalid_request,
    plain_pkce_is_refused,
    a_replayed_code_revokes_what_its_first_use_issued,
    a_reused_refresh_token_revokes_its_family,
    a_wrong_client_secret_is_invalid_client,
    an_expired_code_is_invalid_grant,
    a_wrong_code_verifier_is_invalid_grant,
    a_code_of_another_client_is_invalid_grant,
    another_clients_code_neither_burns_nor_revokes,
    client_credentials_only_for_clients_registered_for_it,
    userinfo_refuses_an_expired_access_token,
    userinfo_takes_the_token_in_a_form_body_but_not_twice,
    introspection_tells_live_tokens_from_dead_ones,
    a_token_checked_before_is_refused_once_revoked_or_expired,
    revoking_an_unknown_token_answers_200,
    rp_initiated_logout_ends_the_session_and_returns_with_state,
    logout_to_an_unregistered_address_gets_an_error_page,
    logout_without_a_hint_asks_first,
    discovery_advertises_what_is_implemented_and_every_endpoint_answers,
);

pub(crate) const EMAIL: &str = "jane@example.com";
pub(crate) const PW: &str = "Correct-Horse-Battery-9";
pub(crate) const CALLBACK: &str = "http://localhost:4000/cb";
const SIGNED_OUT: &str = "http://localhost:4000/signed-out";

// ---------------------------------------------------------------- clients

/// How a test client is registered.
struct Reg {
    name: &'static str,
    kind: ClientKind,
    first_party: bool,
    alg: IdTokenAlg,
    /// Empty: the defaults for the kind.
    grants: Vec<Grant>,
}

impl Reg {
    /// A confidential first-party app: no consent page.
    fn first_party() -> Self {
        Self {
            name: "Helix Shop",
            kind: ClientKind::Confidential,
            first_party: true,
            alg: IdTokenAlg::RS256,
            grants: vec![],
        }
    }

    /// A confidential app of somebody else: asks for consent.
    fn third_party(name: &'static str) -> Self {
        Self {
            name,
            first_party: false,
            ..Self::first_party()
        }
    }

    fn public() -> Self {
        Self {
            kind: ClientKind::Public,
            ..Self::first_party()
        }
    }
}

/// Registers `id` with [`CALLBACK`] and [`SIGNED_OUT`]; returns its secret.
async fn register(app: &TestApp, id: &str, reg: Reg) -> Option<String> {
    idp::oidc::register_client(
        app.state.store.as_ref(),
        app.state.clock.as_ref(),
        idp::oidc::ClientRegistration {
            id: idp::domain::ClientId::parse(id).unwrap(),
            name: reg.name.into(),
            kind: reg.kind,
            redirect_uris: vec![idp::domain::RedirectUri::parse(CALLBACK).unwrap()],
            post_logout_redirect_uris: vec![idp::domain::RedirectUri::parse(SIGNED_OUT).unwrap()],
            first_party: reg.first_party,
            theme: None,
            grant_types: reg.grants,
            id_token_alg: reg.alg,
            require_mfa: false,
            require_pkce: false,
            external_id_claim: None,
        },
    )
    .await
    .unwrap()
    .secret
}

// ---------------------------------------------------------------- the relying party

/// Discovery members beyond OIDC Discovery's core set.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct MoreEndpoints {
    introspection_endpoint: IntrospectionUrl,
    revocation_endpoint: RevocationUrl,
    end_session_endpoint: EndSessionUrl,
}
impl AdditionalProviderMetadata for MoreEndpoints {}

type Metadata = ProviderMetadata<
    MoreEndpoints,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type RpClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointSet,
    EndpointSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

pub(crate) type TokenError = RequestTokenError<
    openidconnect::HttpClientError<reqwest::Error>,
    StandardErrorResponse<CoreErrorResponseType>,
>;

/// A relying party as its developers would write it.
pub(crate) struct Rp {
    client: RpClient,
    http: reqwest::Client,
    meta: Metadata,
    secret: Option<String>,
}

/// The RP's HTTP client: openidconnect requires redirects off (SSRF).
fn rp_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An RP configured from discovery only.
pub(crate) async fn rp(app: &TestApp, client_id: &str, secret: Option<String>) -> Rp {
    let http = rp_http();
    let meta = Metadata::discover_async(IssuerUrl::new(app.base_url.clone()).unwrap(), &http)
        .await
        .expect("discovery document and JWKS a stock RP accepts");
    let more = meta.additional_metadata().clone();
    let client = CoreClient::from_provider_metadata(
        meta.clone(),
        ClientId::new(client_id.into()),
        secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap())
    .set_introspection_url(more.introspection_endpoint)
    .set_revocation_url(more.revocation_endpoint);
    Rp {
        client,
        http,
        meta,
        secret,
    }
}

/// An authorization request the RP is about to send.
pub(crate) struct AuthStart {
    pub(crate) url: String,
    pub(crate) state: CsrfToken,
    pub(crate) nonce: Nonce,
    pub(crate) verifier: String,
}

/// The RP's authorize URL with PKCE S256, `openid` plus `scopes`, and `extra` parameters.
pub(crate) fn start(rp: &Rp, scopes: &[&str], extra: &[(&str, &str)]) -> AuthStart {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).into()));
    }
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let (url, state, nonce) = request.url();
    AuthStart {
        url: url.to_string(),
        state,
        nonce,
        verifier: verifier.secret().clone(),
    }
}

/// Redeems a code through the RP library.
pub(crate) async fn redeem(
    rp: &Rp,
    code: &str,
    verifier: &str,
) -> Result<CoreTokenResponse, TokenError> {
    rp.client
        .exchange_code(AuthorizationCode::new(code.into()))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.into()))
        .request_async(&rp.http)
        .await
}

async fn refresh(rp: &Rp, token: &RefreshToken) -> Result<CoreTokenResponse, TokenError> {
    rp.client
        .exchange_refresh_token(token)
        .unwrap()
        .request_async(&rp.http)
        .await
}

/// The OAuth error code of a failed token request.
fn error_code(result: Result<CoreTokenResponse, TokenError>) -> CoreErrorResponseType {
    match result {
        Err(RequestTokenError::ServerResponse(e)) => e.error().clone(),
        Err(other) => panic!("not an OAuth error answer: {other:?}"),
        Ok(tokens) => panic!("tokens issued: {:?}", tokens.access_token().secret()),
    }
}

/// Validates the ID token as the library does (signature by a JWKS key, an
/// allowed alg, iss, aud, exp, nonce) and its `at_hash` against the access token.
pub(crate) fn verify_id_token(
    rp: &Rp,
    tokens: &CoreTokenResponse,
    nonce: Option<&Nonce>,
) -> CoreIdTokenClaims {
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = rp.client.id_token_verifier();
    let claims = match nonce {
        Some(nonce) => id_token.claims(&verifier, nonce),
        None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    }
    .expect("a valid ID token")
    .clone();
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected, "at_hash binds the access token");
    claims
}

// ---------------------------------------------------------------- the browser

/// Opens a path or an absolute URL without following redirects.
pub(crate) async fn open(browser: &TestApp, target: &str) -> Page {
    let url = if target.starts_with('/') {
        browser.url(target)
    } else {
        target.to_owned()
    };
    Page::from(browser.http.get(url).send().await.unwrap()).await
}

pub(crate) fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// What happened between the authorize URL and the client's redirect URI.
#[derive(Debug)]
pub(crate) struct Trip {
    /// The parameters of the redirect to [`CALLBACK`].
    answer: HashMap<String, String>,
    asked_password: bool,
    /// The text of the consent page, when one was shown.
    consent: Option<String>,
}

impl Trip {
    pub(crate) fn code(&self) -> &str {
        self.answer
            .get("code")
            .unwrap_or_else(|| panic!("no code: {:?}", self.answer))
    }

    fn error(&self) -> Option<&str> {
        self.answer.get("error").map(String::as_str)
    }

    /// `state` comes back unchanged and `iss` names the issuer (RFC 9207).
    fn assert_answers(&self, rp: &Rp, auth: &AuthStart) {
        assert_eq!(self.answer.get("state"), Some(auth.state.secret()));
        assert_eq!(
            self.answer.get("iss").map(String::as_str),
            Some(rp.meta.issuer().as_str())
        );
    }
}

/// Follows the 303s from `url` to [`CALLBACK`] like a browser: signs in with
/// `password` when the sign-in page comes (panics if it comes without one),
/// answers the consent page with `decision`.
pub(crate) async fn browse(
    browser: &TestApp,
    url: &str,
    password: Option<&str>,
    decision: Option<&str>,
) -> Trip {
    let mut jane = Person::new(EMAIL).consent(decision);
    jane.password = password.map(str::to_owned);
    let callback = format!("{CALLBACK}?");
    let arrived = jane.walk(browser, url, |u| u.starts_with(&callback)).await;
    Trip {
        answer: query_of(&arrived),
        asked_password: jane.asked_password(),
        consent: jane.consent_text,
    }
}

/// Signs in through `rp` in the kit's browser (password if needed, no consent
/// page expected) and redeems the code.
pub(crate) async fn tokens_for(
    app: &TestApp,
    rp: &Rp,
    scopes: &[&str],
) -> (CoreTokenResponse, AuthStart) {
    let auth = start(rp, scopes, &[]);
    let trip = browse(app, &auth.url, Some(PW), None).await;
    trip.assert_answers(rp, &auth);
    let tokens = redeem(rp, trip.code(), &auth.verifier).await.unwrap();
    (tokens, auth)
}

/// A first-party confidential client `shop` with its RP, and Jane.
pub(crate) async fn shop(app: &TestApp) -> Rp {
    app.create_user(EMAIL, PW, "Jane Doe").await;
    let secret = register(app, "shop", Reg::first_party()).await;
    rp(app, "shop", secret).await
}

// ---------------------------------------------------------------- raw protocol calls

/// A form POST from a server (no cookies), with Basic client authentication.
async fn post_form(
    app: &TestApp,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = rp_http().post(app.url(path)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

/// An OAuth error answer: status, `Cache-Control: no-store`, JSON `error`.
async fn assert_oauth_error(
    response: reqwest::Response,
    status: StatusCode,
    code: &str,
) -> reqwest::header::HeaderMap {
    let headers = response.headers().clone();
    assert_eq!(response.status(), status);
    assert_eq!(
        headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "token endpoint errors are not cached"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    headers
}

pub(crate) async fn userinfo_status(app: &TestApp, access_token: &AccessToken) -> StatusCode {
    rp_http()
        .get(app.url("/userinfo"))
        .bearer_auth(access_token.secret())
        .send()
        .await
        .unwrap()
        .status()
}

pub(crate) async fn is_active(rp: &Rp, token: &AccessToken, hint: Option<&str>) -> bool {
    let mut request = rp.client.introspect(token);
    if let Some(hint) = hint {
        request = request.set_token_type_hint(hint);
    }
    request.request_async(&rp.http).await.unwrap().active()
}

/// RFC 7009 revocation at the discovered endpoint, as the library would send
/// it (Basic auth, `token`, `token_type_hint`). The library itself refuses a
/// revocation URL that is not https, and the test server speaks plain HTTP.
pub(crate) async fn revoke(rp: &Rp, token: CoreRevocableToken) {
    let endpoint = rp.meta.additional_metadata().revocation_endpoint.url();
    let mut form = vec![("token", token.secret())];
    form.extend(token.type_hint().map(|hint| ("token_type_hint", hint)));
    let response = rp
        .http
        .post(endpoint.clone())
        .basic_auth(rp.client.client_id().as_str(), rp.secret.as_deref())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// `/authorize?…` from raw parameters.
fn authorize_path(params: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/authorize?{query}")
}

/// A refresh token as something to introspect (the library takes access tokens).
fn as_access(token: &RefreshToken) -> AccessToken {
    AccessToken::new(token.secret().clone())
}

// ---------------------------------------------------------------- the whole flow

async fn a_stock_relying_party_signs_in_with_each_algorithm(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = app.create_user(EMAIL, PW, "Jane Doe").await;
    for (alg, jws) in [
        (
            IdTokenAlg::RS256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        ),
        (IdTokenAlg::ES256, CoreJwsSigningAlgorithm::EcdsaP256Sha256),
        (IdTokenAlg::EdDSA, CoreJwsSigningAlgorithm::EdDsa),
    ] {
        let id = format!("shop-{}", alg.as_str().to_lowercase());
        let secret = register(
            &app,
            &id,
            Reg {
                alg,
                ..Reg::first_party()
            },
        )
        .await;
        let rp = rp(&app, &id, secret).await;
        let browser = app.other_browser();

        // Code + PKCE through the sign-in page.
        let auth = start(&rp, &["email", "profile", "offline_access"], &[]);
        let trip = browse(&browser, &auth.url, Some(PW), None).await;
        assert!(trip.asked_password);
        assert!(trip.consent.is_none(), "first party: no consent page");
        trip.assert_answers(&rp, &auth);
        let tokens = redeem(&rp, trip.code(), &auth.verifier).await.unwrap();

        // The ID token, as the library validates it.
        let id_token = tokens.id_token().unwrap();
        assert_eq!(id_token.signing_alg().unwrap(), &jws, "{id}");
        let claims = verify_id_token(&rp, &tokens, Some(&auth.nonce));
        assert_eq!(claims.subject().as_str(), jane.id.as_str());
        assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
        assert_eq!(claims.email_verified(), Some(true));
        assert!(claims.auth_time().is_some());
        let scopes: Vec<String> = tokens
            .scopes()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(scopes.contains(&"offline_access".to_owned()), "{scopes:?}");

        // Userinfo for the subject.
        let info: CoreUserInfoClaims = rp
            .client
            .user_info(
                tokens.access_token().clone(),
                Some(claims.subject().clone()),
            )
            .unwrap()
            .request_async(&rp.http)
            .await
            .unwrap();
        assert_eq!(info.email().map(|e| e.as_str()), Some(EMAIL));
        assert_eq!(
            info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
            Some("Jane Doe")
        );

        // Refresh: a new pair, a valid ID token for the same person.
        let first_refresh = tokens
            .refresh_token()
            .expect("offline_access gives a refresh token");
        let refreshed = refresh(&rp, first_refresh).await.unwrap();
        let next_refresh = refreshed.refresh_token().expect("rotated");
        assert_ne!(next_refresh.secret(), first_refresh.secret());
        let again = verify_id_token(&rp, &refreshed, None);
        assert_eq!(again.subject(), claims.subject());
        assert_eq!(again.auth_time(), claims.auth_time());

        // Introspection of the live pair, then revocation.
        assert!(is_active(&rp, refreshed.access_token(), None).await);
        assert!(is_active(&rp, &as_access(next_refresh), Some("refresh_token")).await);
        revoke(&rp, CoreRevocableToken::from(refreshed.access_token())).await;
        assert!(!is_active(&rp, refreshed.access_token(), None).await);
        assert_eq!(
            userinfo_status(&app, refreshed.access_token()).await,
            StatusCode::UNAUTHORIZED
        );
        revoke(&rp, CoreRevocableToken::from(next_refresh)).await;
        assert!(!is_active(&rp, &as_access(next_refresh), Some("refresh_token")).await);
        assert_eq!(
            error_code(refresh(&rp, next_refresh).await),
            CoreErrorResponseType::InvalidGrant
        );

        // RP-initiated logout back to the RP.
        let logout =
            LogoutRequest::from(rp.meta.additional_metadata().end_session_endpoint.clone())
                .set_id_token_hint(id_token)
                .set_post_logout_redirect_uri(
                    PostLogoutRedirectUrl::new(SIGNED_OUT.into()).unwrap(),
                )
                .set_state(CsrfToken::new("xyz".into()))
                .http_get_url();
        let out = open(&browser, logout.as_str()).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.text());
        assert_eq!(
            out.location.as_deref(),
            Some(&*format!("{SIGNED_OUT}?state=xyz"))
        );
    }
}

/// The sign-in page of an authorization request carries its id, so a browser
/// posting the form as it is continues the relying party's flow.
async fn the_sign_in_page_carries_the_pending_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let auth = start(&rp, &[], &[]);
    let to_login = open(&app, &auth.url).await;
    assert_eq!(to_login.status, StatusCode::SEE_OTHER);
    let login_url = to_login.location.unwrap();
    let req = query_of(&app.url(&login_url))
        .remove("req")
        .expect("/login?req=…");
    let form = open(&app, &login_url).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(
        form.hidden_fields("/login")
            .into_iter()
            .find(|(k, _)| k == "req")
            .map(|(_, v)| v),
        Some(req),
        "the sign-in form does not carry the authorization request: signing in ends on /account"
    );
    // Posted exactly as the page is (no field added by the test).
    let answer = app
        .submit_on(&form, "/login", &[("email", EMAIL), ("password", PW)])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(
        answer
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with("/authorize/continue?req=")),
        "{:?}",
        answer.location
    );
}

// ---------------------------------------------------------------- consent

async fn consent_is_asked_once_and_again_with_prompt_consent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, "Jane Doe").await;
    let secret = register(&app, "printer", Reg::third_party("Photo Printer")).await;
    let rp = rp(&app, "printer", secret).await;

    let auth = start(&rp, &["email"], &[]);
    let first = browse(&app, &auth.url, Some(PW), Some("allow")).await;
    let page = first.consent.clone().expect("a consent page");
    assert!(page.contains("Photo Printer"), "{page}");
    assert!(page.contains("See your email address"), "{page}");
    assert!(page.contains("Know who you are"), "{page}");
    first.assert_answers(&rp, &auth);
    redeem(&rp, first.code(), &auth.verifier).await.unwrap();

    // Remembered: straight back with a code.
    let auth = start(&rp, &["email"], &[]);
    let second = browse(&app, &auth.url, None, None).await;
    assert!(second.consent.is_none());
    redeem(&rp, second.code(), &auth.verifier).await.unwrap();

    // prompt=consent asks again.
    let auth = start(&rp, &["email"], &[("prompt", "consent")]);
    let third = browse(&app, &auth.url, None, Some("allow")).await;
    assert!(third.consent.is_some(), "prompt=consent shows the page");
    redeem(&rp, third.code(), &auth.verifier).await.unwrap();
}

async fn denying_consent_returns_access_denied(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, "Jane Doe").await;
    let secret = register(&app, "printer", Reg::third_party("Photo Printer")).await;
    let rp = rp(&app, "printer", secret).await;
    let auth = start(&rp, &["email"], &[]);
    let trip = browse(&app, &auth.url, Some(PW), Some("deny")).await;
    assert_eq!(trip.error(), Some("access_denied"), "{:?}", trip.answer);
    assert!(!trip.answer.contains_key("code"));
    trip.assert_answers(&rp, &auth);
    // Nothing remembered: the next request asks again.
    let auth = start(&rp, &["email"], &[]);
    let again = browse(&app, &auth.url, None, Some("allow")).await;
    assert!(again.consent.is_some());
}

async fn offline_access_needs_consent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, "Jane Doe").await;
    let secret = register(&app, "printer", Reg::third_party("Photo Printer")).await;
    let rp = rp(&app, "printer", secret).await;

    let auth = start(&rp, &["email"], &[]);
    let trip = browse(&app, &auth.url, Some(PW), Some("allow")).await;
    let tokens = redeem(&rp, trip.code(), &auth.verifier).await.unwrap();
    assert!(tokens.refresh_token().is_none(), "no offline_access asked");

    // Allowed "email" does not cover "offline_access": without asking, refused...
    let auth = start(&rp, &["email", "offline_access"], &[("prompt", "none")]);
    let silent = browse(&app, &auth.url, None, None).await;
    assert_eq!(
        silent.error(),
        Some("consent_required"),
        "{:?}",
        silent.answer
    );
    silent.assert_answers(&rp, &auth);

    // ...and asked for, by name.
    let auth = start(&rp, &["email", "offline_access"], &[]);
    let trip = browse(&app, &auth.url, None, Some("allow")).await;
    let page = trip
        .consent
        .clone()
        .expect("consent asked for offline access");
    assert!(page.contains("Stay connected"), "{page}");
    let tokens = redeem(&rp, trip.code(), &auth.verifier).await.unwrap();
    let refresh_token = tokens
        .refresh_token()
        .expect("a refresh token once allowed");
    refresh(&rp, refresh_token).await.unwrap();
}

async fn removing_a_grant_revokes_its_refresh_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, "Jane Doe").await;
    let secret = register(&app, "printer", Reg::third_party("Photo Printer")).await;
    let rp = rp(&app, "printer", secret).await;
    let auth = start(&rp, &["email", "offline_access"], &[]);
    let trip = browse(&app, &auth.url, Some(PW), Some("allow")).await;
    let tokens = redeem(&rp, trip.code(), &auth.verifier).await.unwrap();
    let refreshed = refresh(&rp, tokens.refresh_token().unwrap()).await.unwrap();

    let grants = app.page("/account/grants").await;
    assert_eq!(grants.status, StatusCode::OK);
    assert!(grants.contains("Photo Printer"), "{}", grants.text());
    let removed = app.submit_on(&grants, "/account/grants", &[]).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text());
    assert!(
        !removed.contains("Remove access for Photo Printer"),
        "{}",
        removed.text()
    );

    assert_eq!(
        error_code(refresh(&rp, refreshed.refresh_token().unwrap()).await),
        CoreErrorResponseType::InvalidGrant
    );
    let auth = start(&rp, &["email"], &[]);
    assert!(
        browse(&app, &auth.url, None, Some("allow"))
            .await
            .consent
            .is_some()
    );
}

// ---------------------------------------------------------------- single sign-on

async fn a_live_session_skips_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let (first, _) = tokens_for(&app, &rp, &[]).await;
    let first = verify_id_token(&rp, &first, None);

    let auth = start(&rp, &[], &[]);
    let trip = browse(&app, &auth.url, None, None).await;
    assert!(!trip.asked_password);
    let tokens = redeem(&rp, trip.code(), &auth.verifier).await.unwrap();
    let second = verify_id_token(&rp, &tokens, Some(&auth.nonce));
    assert_eq!(second.subject(), first.subject());
    assert_eq!(second.auth_time(), first.auth_time(), "the same sign-in");
}

async fn prompt_login_and_max_age_ask_for_the_password_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let (tokens, _) = tokens_for(&app, &rp, &[]).await;
    let signed_in_at = verify_id_token(&rp, &tokens, None).auth_time().unwrap();

    app.clock.advance(Duration::seconds(30));
    let auth = start(&rp, &[], &[("prompt", "login")]);
    let trip = browse(&app, &auth.url, Some(PW), None).await;
    assert!(trip.asked_password, "prompt=login");
    let tokens = redeem(&rp, trip.code(), &auth.verifier).await.unwrap();
    let again_at = verify_id_token(&rp, &tokens, Some(&auth.nonce))
        .auth_time()
        .unwrap();
    assert_eq!((again_at - signed_in_at).num_seconds(), 30);

    app.clock.advance(Duration::seconds(5));
    let auth = start(&rp, &[], &[("max_age", "0")]);
    let trip = browse(&app, &auth.url, Some(PW), None).await;
    assert!(trip.asked_password, "max_age=0 after 5 s");
    redeem(&rp, trip.code(), &auth.verifier).await.unwrap();

    let auth = start(&rp, &[], &[("max_age", "3600")]);
    let trip = browse(&app, &auth.url, None, None).await;
    assert!(!trip.asked_password, "a recent enough sign-in");
    redeem(&rp, trip.code(), &auth.verifier).await.unwrap();
}

/// `prompt=login`, and `max_age=0` which means the same (OIDC Core
/// 3.1.2.1), want a sign-in made for this request: one made earlier in the
/// same second (OIDC's `auth_time` has whole seconds) does not count.
async fn prompt_login_asks_again_after_a_sign_in_earlier_in_the_same_second(backend: Backend) {
    use idp::clock::Clock as _;
    for asked in [("prompt", "login"), ("max_age", "0")] {
        // A browser that signs in first in the loop's second.
        let app = TestApp::spawn(backend).await;
        let rp = shop(&app).await;
        // 100 ms into the next whole second.
        let now = app.clock.now();
        let second = time::OffsetDateTime::from_unix_timestamp(now.unix_timestamp() + 1).unwrap();
        app.clock.set(second + Duration::milliseconds(100));
        tokens_for(&app, &rp, &[]).await;

        app.clock.advance(Duration::milliseconds(500));
        let auth = start(&rp, &[], &[asked]);
        let trip = browse(&app, &auth.url, Some(PW), None).await;
        assert!(trip.asked_password, "{asked:?} 500 ms after a sign-in");
        redeem(&rp, trip.code(), &auth.verifier).await.unwrap();

        // Without it the session serves, as before.
        app.clock.advance(Duration::milliseconds(200));
        let auth = start(&rp, &[], &[]);
        let trip = browse(&app, &auth.url, None, None).await;
        assert!(!trip.asked_password);
        redeem(&rp, trip.code(), &auth.verifier).await.unwrap();
    }
}

/// A sign-in made for a request meets its `prompt=login` and `max_age`
/// however long the way back to `/authorize/continue` took (here 5 s, past
/// `max_age=1`): the person is asked once, not again and again.
async fn a_sign_in_for_the_request_meets_it_however_long_the_way_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    tokens_for(&app, &rp, &[]).await;
    for asked in [
        &[("prompt", "login")][..],
        &[("max_age", "1")],
        &[("max_age", "0")],
    ] {
        app.clock.advance(Duration::seconds(30));
        let auth = start(&rp, &[], asked);
        let mut jane = Person::new(EMAIL).password(PW);
        let callback = format!("{CALLBACK}?");
        let signed_in_at = app.clock_now();
        let arrived = jane
            .walk(&app, &auth.url, |u| {
                if u.contains("/authorize/continue") {
                    app.clock.advance(Duration::seconds(5));
                }
                u.starts_with(&callback)
            })
            .await;
        let pages = jane.pages.iter().filter(|p| *p == "/login").count();
        assert_eq!(pages, 1, "{asked:?}: {:?}", jane.pages);
        let trip = Trip {
            answer: query_of(&arrived),
            asked_password: true,
            consent: None,
        };
        let tokens = redeem(&rp, trip.code(), &auth.verifier).await.unwrap();
        let auth_time = verify_id_token(&rp, &tokens, Some(&auth.nonce))
            .auth_time()
            .unwrap();
        assert_eq!(auth_time.timestamp(), signed_in_at.unix_timestamp());
    }
}

async fn prompt_none_without_a_session_returns_login_required(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let auth = start(&rp, &[], &[("prompt", "none")]);
    let trip = browse(&app, &auth.url, None, None).await;
    assert_eq!(trip.error(), Some("login_required"), "{:?}", trip.answer);
    trip.assert_answers(&rp, &auth);

    // With a session, prompt=none answers silently.
    tokens_for(&app, &rp, &[]).await;
    let auth = start(&rp, &[], &[("prompt", "none")]);
    let trip = browse(&app, &auth.url, None, None).await;
    redeem(&rp, trip.code(), &auth.verifier).await.unwrap();
}

// ---------------------------------------------------------------- response mode

async fn form_post_answers_with_a_self_posting_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    tokens_for(&app, &rp, &[]).await;

    let auth = start(&rp, &[], &[("response_mode", "form_post")]);
    let page = open(&app, &auth.url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.location.is_none());
    assert_eq!(
        page.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let html = page.html();
    let form = html
        .select(&scraper::Selector::parse("form").unwrap())
        .next()
        .expect("a form");
    assert_eq!(form.value().attr("action"), Some(CALLBACK));
    assert_eq!(
        form.value()
            .attr("method")
            .map(str::to_lowercase)
            .as_deref(),
        Some("post")
    );
    let fields: HashMap<String, String> = form
        .select(&scraper::Selector::parse("input[type=hidden]").unwrap())
        .filter_map(|i| {
            Some((
                i.value().attr("name")?.to_owned(),
                i.value().attr("value")?.to_owned(),
            ))
        })
        .collect();
    assert_eq!(fields.get("state"), Some(auth.state.secret()));
    assert_eq!(
        fields.get("iss").map(String::as_str),
        Some(rp.meta.issuer().as_str())
    );
    let code = fields.get("code").expect("a code");
    redeem(&rp, code, &auth.verifier).await.unwrap();
}

// ---------------------------------------------------------------- bad requests at /authorize

/// An error page of ours, and no way back to whoever sent the browser.
fn assert_error_page_without_redirect(page: &Page, says: &str) {
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text());
    assert!(page.location.is_none(), "redirected to {:?}", page.location);
    assert!(
        page.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        page.headers
    );
    assert!(page.contains(says), "{}", page.text());
}

async fn unknown_client_gets_an_error_page_and_no_redirect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    shop(&app).await;
    let page = app
        .page(&authorize_path(&[
            ("response_type", "code"),
            ("client_id", "nobody"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("state", "s1"),
        ]))
        .await;
    assert_error_page_without_redirect(&page, "not known");
}

async fn unregistered_redirect_uri_gets_an_error_page_and_no_redirect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    shop(&app).await;
    for redirect_uri in ["https://evil.example/cb", "http://localhost:4000/cb/", ""] {
        let page = app
            .page(&authorize_path(&[
                ("response_type", "code"),
                ("client_id", "shop"),
                ("redirect_uri", redirect_uri),
                ("scope", "openid"),
                ("state", "s1"),
            ]))
            .await;
        assert_error_page_without_redirect(&page, "not registered");
    }
}

async fn public_client_without_pkce_is_sent_back_with_invalid_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(&app, "spa", Reg::public()).await;
    let trip = browse(
        &app,
        &authorize_path(&[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("state", "s1"),
        ]),
        None,
        None,
    )
    .await;
    assert_eq!(trip.error(), Some("invalid_request"), "{:?}", trip.answer);
    assert_eq!(trip.answer.get("state").map(String::as_str), Some("s1"));
    assert_eq!(trip.answer.get("iss"), Some(&app.base_url));
}

async fn plain_pkce_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(&app, "spa", Reg::public()).await;
    let verifier = PkceCodeVerifier::new("a".repeat(43));
    let trip = browse(
        &app,
        &authorize_path(&[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("state", "s1"),
            ("code_challenge", verifier.secret()),
            ("code_challenge_method", "plain"),
        ]),
        None,
        None,
    )
    .await;
    assert_eq!(trip.error(), Some("invalid_request"), "{:?}", trip.answer);
    assert!(
        trip.answer["error_description"].contains("S256"),
        "{:?}",
        trip.answer
    );
    assert_eq!(trip.answer.get("state").map(String::as_str), Some("s1"));
}

// ---------------------------------------------------------------- bad requests at /token

async fn a_replayed_code_revokes_what_its_first_use_issued(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let auth = start(&rp, &["offline_access"], &[]);
    let trip = browse(&app, &auth.url, Some(PW), None).await;
    let first = redeem(&rp, trip.code(), &auth.verifier).await.unwrap();
    assert_eq!(
        userinfo_status(&app, first.access_token()).await,
        StatusCode::OK
    );

    assert_eq!(
        error_code(redeem(&rp, trip.code(), &auth.verifier).await),
        CoreErrorResponseType::InvalidGrant
    );
    assert_eq!(
        userinfo_status(&app, first.access_token()).await,
        StatusCode::UNAUTHORIZED,
        "the first use's access token is revoked"
    );
    assert_eq!(
        error_code(refresh(&rp, first.refresh_token().unwrap()).await),
        CoreErrorResponseType::InvalidGrant,
        "and its refresh token"
    );
}

async fn a_reused_refresh_token_revokes_its_family(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let (tokens, _) = tokens_for(&app, &rp, &["offline_access"]).await;
    let original = tokens.refresh_token().unwrap();
    let rotated = refresh(&rp, original).await.unwrap();
    let newest = refresh(&rp, rotated.refresh_token().unwrap())
        .await
        .unwrap();

    assert_eq!(
        error_code(refresh(&rp, original).await),
        CoreErrorResponseType::InvalidGrant
    );
    assert_eq!(
        error_code(refresh(&rp, newest.refresh_token().unwrap()).await),
        CoreErrorResponseType::InvalidGrant,
        "the newest token of the family is revoked too"
    );
    assert!(
        !is_active(
            &rp,
            &as_access(newest.refresh_token().unwrap()),
            Some("refresh_token")
        )
        .await
    );
}

async fn a_wrong_client_secret_is_invalid_client(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let auth = start(&rp, &[], &[]);
    let trip = browse(&app, &auth.url, Some(PW), None).await;
    let response = post_form(
        &app,
        "/token",
        Some(("shop", "not-the-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", trip.code()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &auth.verifier),
        ],
    )
    .await;
    let headers = assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(
        headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Basic")),
        "{headers:?}"
    );
    // Through the library, too.
    let wrong = rp_with_secret(&app, "shop", "still-wrong").await;
    assert_eq!(
        error_code(redeem(&wrong, trip.code(), &auth.verifier).await),
        CoreErrorResponseType::InvalidClient
    );
}

async fn rp_with_secret(app: &TestApp, id: &str, secret: &str) -> Rp {
    rp(app, id, Some(secret.into())).await
}

async fn an_expired_code_is_invalid_grant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let auth = start(&rp, &[], &[]);
    let trip = browse(&app, &auth.url, Some(PW), None).await;
    app.clock.advance(Duration::seconds(61));
    assert_eq!(
        error_code(redeem(&rp, trip.code(), &auth.verifier).await),
        CoreErrorResponseType::InvalidGrant
    );
}

async fn a_wrong_code_verifier_is_invalid_grant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let auth = start(&rp, &[], &[]);
    let trip = browse(&app, &auth.url, Some(PW), None).await;
    let (_, other) = PkceCodeChallenge::new_random_sha256();
    let response = post_form(
        &app,
        "/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", trip.code()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", other.secret()),
            ("client_id", "shop"),
            ("client_secret", shop_secret(&rp)),
        ],
    )
    .await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // Single use even when refused: the right verifier comes too late.
    assert_eq!(
        error_code(redeem(&rp, trip.code(), &auth.verifier).await),
        CoreErrorResponseType::InvalidGrant
    );
}

pub(crate) fn rp_secret(rp: &Rp) -> Option<String> {
    rp.secret.clone()
}

fn shop_secret(rp: &Rp) -> &str {
    rp.secret.as_deref().unwrap_or("")
}

async fn a_code_of_another_client_is_invalid_grant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = shop(&app).await;
    let b_secret = register(&app, "other-shop", Reg::first_party()).await;
    let b = rp(&app, "other-shop", b_secret).await;
    let auth = start(&a, &[], &[]);
    let trip = browse(&app, &auth.url, Some(PW), None).await;
    let response = post_form(
        &app,
        "/token",
        Some(("other-shop", shop_secret(&b))),
        &[
            ("grant_type", "authorization_code"),
            ("code", trip.code()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &auth.verifier),
        ],
    )
    .await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

/// A public client (no secret to steal) presents a code it saw for another
/// client: used, it must not revoke the tokens its rightful client got for
/// it; live, it must not burn it. Both answers are a plain `invalid_grant`.
async fn another_clients_code_neither_burns_nor_revokes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shop_rp = shop(&app).await;
    register(&app, "spa", Reg::public()).await;
    let steal = |code: String, verifier: String| {
        let app = app.clone();
        async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier.as_str()),
                ("client_id", "spa"),
            ];
            post_form(&app, "/token", None, &form).await
        }
    };

    // A used code.
    let auth = start(&shop_rp, &["offline_access"], &[]);
    let trip = browse(&app, &auth.url, Some(PW), None).await;
    let tokens = redeem(&shop_rp, trip.code(), &auth.verifier).await.unwrap();
    let answer = steal(trip.code().to_owned(), auth.verifier.clone()).await;
    assert_oauth_error(answer, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(
        userinfo_status(&app, tokens.access_token()).await,
        StatusCode::OK,
        "another client's replay revoked the access token"
    );
    assert!(is_active(&shop_rp, tokens.access_token(), None).await);
    refresh(&shop_rp, tokens.refresh_token().unwrap())
        .await
        .expect("another client's replay revoked the refresh family");

    // A live code.
    let auth = start(&shop_rp, &[], &[]);
    let trip = browse(&app, &auth.url, Some(PW), None).await;
    let answer = steal(trip.code().to_owned(), auth.verifier.clone()).await;
    assert_oauth_error(answer, StatusCode::BAD_REQUEST, "invalid_grant").await;
    redeem(&shop_rp, trip.code(), &auth.verifier)
        .await
        .expect("the live code still works for its own client");
}

async fn client_credentials_only_for_clients_registered_for_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = register(&app, "nightly-job", Reg::first_party())
        .await
        .unwrap();
    let response = post_form(
        &app,
        "/token",
        Some(("nightly-job", &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].is_string(), "{body}");
    assert!(
        body.get("id_token").is_none(),
        "no person, no ID token: {body}"
    );
    assert!(body.get("refresh_token").is_none(), "{body}");
    // The library reads it as well.
    let rp = rp(&app, "nightly-job", Some(secret)).await;
    let tokens = rp
        .client
        .exchange_client_credentials()
        .unwrap()
        .request_async(&rp.http)
        .await
        .unwrap();
    assert!(tokens.id_token().is_none() && tokens.refresh_token().is_none());
    assert!(is_active(&rp, tokens.access_token(), None).await);

    let interactive = register(
        &app,
        "web-only",
        Reg {
            grants: vec![Grant::AuthorizationCode, Grant::RefreshToken],
            ..Reg::first_party()
        },
    )
    .await
    .unwrap();
    let response = post_form(
        &app,
        "/token",
        Some(("web-only", &interactive)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "unauthorized_client").await;
}

// ---------------------------------------------------------------- userinfo, introspection, revocation

async fn userinfo_refuses_an_expired_access_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let (tokens, _) = tokens_for(&app, &rp, &["email"]).await;
    assert_eq!(
        userinfo_status(&app, tokens.access_token()).await,
        StatusCode::OK
    );
    app.clock.advance(Duration::minutes(11));
    let response = rp_http()
        .get(app.url("/userinfo"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

/// RFC 6750 2.2 (the certification's oidcc-userinfo-post-body): a POST
/// may carry the token as `access_token` in a form body; sent both there
/// and in the header it is 400 invalid_request (3.1).
async fn userinfo_takes_the_token_in_a_form_body_but_not_twice(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let (tokens, _) = tokens_for(&app, &rp, &["email"]).await;
    let token = tokens.access_token().secret().to_owned();

    let in_body = rp_http()
        .post(app.url("/userinfo"))
        .form(&[("access_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(in_body.status(), StatusCode::OK);
    let claims: serde_json::Value = in_body.json().await.unwrap();
    assert!(claims["sub"].is_string(), "{claims}");
    assert!(claims["email"].is_string(), "{claims}");

    let twice = rp_http()
        .post(app.url("/userinfo"))
        .bearer_auth(&token)
        .form(&[("access_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST);
    let error: serde_json::Value = twice.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request", "{error}");

    // Not a form: no token is read from it.
    let json_body = rp_http()
        .post(app.url("/userinfo"))
        .json(&serde_json::json!({ "access_token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::UNAUTHORIZED);
    // The query is not a place for tokens (they end up in logs).
    let in_query = rp_http()
        .get(app.url(&format!("/userinfo?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), StatusCode::UNAUTHORIZED);
}

async fn introspection_tells_live_tokens_from_dead_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let (kept, _) = tokens_for(&app, &rp, &["offline_access"]).await;
    let (revoked, _) = tokens_for(&app, &rp, &["offline_access"]).await;
    let access = kept.access_token();
    let refresh_token = as_access(kept.refresh_token().unwrap());

    let answer = rp
        .client
        .introspect(access)
        .request_async(&rp.http)
        .await
        .unwrap();
    assert!(answer.active());
    assert_eq!(answer.client_id().map(|c| c.as_str()), Some("shop"));
    assert!(is_active(&rp, &refresh_token, Some("refresh_token")).await);
    assert!(
        is_active(&rp, &refresh_token, None).await,
        "found without a hint"
    );

    assert!(!is_active(&rp, &AccessToken::new("no-such-token".into()), None).await);
    assert!(!is_active(&rp, &AccessToken::new("a.b.c".into()), None).await);

    revoke(&rp, CoreRevocableToken::from(revoked.access_token())).await;
    assert!(!is_active(&rp, revoked.access_token(), None).await);
    revoke(
        &rp,
        CoreRevocableToken::from(revoked.refresh_token().unwrap()),
    )
    .await;
    assert!(!is_active(&rp, &as_access(revoked.refresh_token().unwrap()), None).await);

    app.clock.advance(Duration::minutes(11));
    assert!(!is_active(&rp, access, None).await, "expired");
    assert!(
        is_active(&rp, &refresh_token, None).await,
        "refresh tokens live longer"
    );
}

async fn revoking_an_unknown_token_answers_200(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let secret = shop_secret(&rp).to_owned();
    for token in ["no-such-token", "a.b.c"] {
        let response = post_form(
            &app,
            "/revoke",
            Some(("shop", &secret)),
            &[("token", token)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{token}");
    }
    revoke(
        &rp,
        CoreRevocableToken::from(RefreshToken::new("nothing".into())),
    )
    .await;
}

// ---------------------------------------------------------------- logout

async fn authorize_silently(app: &TestApp, rp: &Rp) -> Trip {
    let auth = start(rp, &[], &[("prompt", "none")]);
    browse(app, &auth.url, None, None).await
}

async fn rp_initiated_logout_ends_the_session_and_returns_with_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let (tokens, _) = tokens_for(&app, &rp, &["offline_access"]).await;
    let hint = tokens.id_token().unwrap().to_string();
    let out = app
        .page(&format!(
            "/logout?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("id_token_hint", hint.as_str()),
                    ("post_logout_redirect_uri", SIGNED_OUT),
                    ("state", "xyz"),
                ])
                .finish()
        ))
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.text());
    assert_eq!(
        out.location.as_deref(),
        Some(&*format!("{SIGNED_OUT}?state=xyz"))
    );
    assert_eq!(
        authorize_silently(&app, &rp).await.error(),
        Some("login_required")
    );
    assert_eq!(
        error_code(refresh(&rp, tokens.refresh_token().unwrap()).await),
        CoreErrorResponseType::InvalidGrant,
        "signing out revokes the person's refresh tokens"
    );
}

async fn logout_to_an_unregistered_address_gets_an_error_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let (tokens, _) = tokens_for(&app, &rp, &[]).await;
    let hint = tokens.id_token().unwrap().to_string();
    let out = app
        .page(&format!(
            "/logout?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("id_token_hint", hint.as_str()),
                    ("post_logout_redirect_uri", "https://evil.example/bye"),
                    ("state", "xyz"),
                ])
                .finish()
        ))
        .await;
    assert_eq!(out.status, StatusCode::BAD_REQUEST, "{}", out.text());
    assert!(out.location.is_none());
    assert!(out.contains("not registered"), "{}", out.text());
    let still = authorize_silently(&app, &rp).await;
    assert!(
        still.answer.contains_key("code"),
        "still signed in: {:?}",
        still.answer
    );
}

async fn logout_without_a_hint_asks_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    tokens_for(&app, &rp, &[]).await;
    let path = format!(
        "/logout?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", "shop"),
                ("post_logout_redirect_uri", SIGNED_OUT),
                ("state", "xyz"),
            ])
            .finish()
    );
    let confirm = app.page(&path).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text());
    assert!(confirm.location.is_none());
    assert!(confirm.contains("Sign out?"), "{}", confirm.text());
    assert!(confirm.contains("Helix Shop"), "{}", confirm.text());
    let still = authorize_silently(&app, &rp).await;
    assert!(
        still.answer.contains_key("code"),
        "a link alone signs nobody out"
    );

    // The page's own form (the header's sign-out button posts to /logout too).
    let confirm_form = scraper::Selector::parse("main form[action=\"/logout\"]").unwrap();
    let hidden = scraper::Selector::parse("input[type=hidden]").unwrap();
    let html = confirm.html();
    let fields: Vec<(String, String)> = html
        .select(&confirm_form)
        .next()
        .expect("the confirmation form")
        .select(&hidden)
        .filter_map(|i| {
            let v = i.value();
            Some((v.attr("name")?.to_owned(), v.attr("value")?.to_owned()))
        })
        .collect();
    let confirmed = app.post("/logout", &fields).await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        confirmed.text()
    );
    assert_eq!(
        confirmed.location.as_deref(),
        Some(&*format!("{SIGNED_OUT}?state=xyz"))
    );
    assert_eq!(
        authorize_silently(&app, &rp).await.error(),
        Some("login_required")
    );
}

// ---------------------------------------------------------------- discovery

async fn discovery_advertises_what_is_implemented_and_every_endpoint_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rp = shop(&app).await;
    let doc: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    let base = &app.base_url;
    assert_eq!(doc["issuer"], json!(base));
    for (member, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
        ("end_session_endpoint", "/logout"),
    ] {
        assert_eq!(doc[member], json!(format!("{base}{path}")), "{member}");
    }
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(
        doc["response_modes_supported"],
        json!(["query", "form_post"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(
        doc["scopes_supported"],
        json!(["openid", "profile", "email", "offline_access"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        doc["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    for unsupported in [
        "request_parameter_supported",
        "request_uri_parameter_supported",
    ] {
        assert_eq!(doc[unsupported], json!(false), "{unsupported}");
    }
    assert_eq!(doc["claims_parameter_supported"], json!(true));

    // Each advertised ID token algorithm has a key in the JWKS.
    let jwks: Value = app.get("/jwks").await.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    for (alg, kty) in [("RS256", "RSA"), ("ES256", "EC"), ("EdDSA", "OKP")] {
        assert!(
            doc["id_token_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(alg)),
            "{alg}"
        );
        assert!(
            keys.iter().any(|k| k["kty"] == kty),
            "no {kty} key for {alg}: {jwks}"
        );
    }
    assert_eq!(
        rp.meta.id_token_signing_alg_values_supported().len(),
        3,
        "the library reads the three algorithms"
    );

    // Every claim the provider hands out is listed.
    let (tokens, _) = tokens_for(&app, &rp, &["email", "profile"]).await;
    let info: Value = rp_http()
        .get(app.url("/userinfo"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token: CoreIdToken = tokens.id_token().unwrap().clone();
    let id_claims: Value = {
        use base64::Engine;
        let payload = id_token.to_string();
        let part = payload.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    let listed = doc["claims_supported"].as_array().unwrap();
    for claim in info
        .as_object()
        .unwrap()
        .keys()
        .chain(id_claims.as_object().unwrap().keys())
    {
        assert!(
            listed.contains(&json!(claim)),
            "claims_supported lacks {claim}"
        );
    }

    // Every endpoint answers (with its own refusal, never 404 or 405).
    let http = rp_http();
    let authorize = app.page("/authorize").await;
    assert_eq!(authorize.status, StatusCode::BAD_REQUEST);
    for (member, status) in [
        ("token_endpoint", StatusCode::UNAUTHORIZED),
        ("introspection_endpoint", StatusCode::UNAUTHORIZED),
        ("revocation_endpoint", StatusCode::UNAUTHORIZED),
    ] {
        let url = doc[member].as_str().unwrap();
        let response = http.post(url).form(&[("token", "x")]).send().await.unwrap();
        assert_eq!(response.status(), status, "{member}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{member}: {body}");
    }
    let userinfo = http
        .get(doc["userinfo_endpoint"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
    assert!(
        userinfo.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let end_session = http
        .get(doc["end_session_endpoint"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(end_session.status(), StatusCode::OK);
    let jwks_answer = http
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jwks_answer.status(), StatusCode::OK);

    // What is not advertised is refused.
    let auth = start(&rp, &[], &[]);
    let implicit = auth
        .url
        .replace("response_type=code", "response_type=token");
    let trip = browse(&app, &implicit, None, None).await;
    assert_eq!(trip.error(), Some("unsupported_response_type"));
}

// ---------------------------------------------------------------- several nodes

/// Two nodes of one deployment: the browser talks to node 1, the RP's
/// back channel to node 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_from_one_node_is_redeemed_and_refreshed_on_another() {
    let node1 = TestApp::spawn(Backend::Postgres).await;
    let node2 = node1.spawn_beside(|_| {}).await;
    // The nodes share a time source, node 2's clock a second ahead (real
    // clocks are never exactly equal): its tokens must work on node 1 at once.
    node2.clock.set(node1.clock_now() + Duration::seconds(1));
    let rp = shop(&node1).await;
    let secret = shop_secret(&rp).to_owned();
    let auth = start(&rp, &["offline_access"], &[]);
    let trip = browse(&node1, &auth.url, Some(PW), None).await;
    trip.assert_answers(&rp, &auth);

    let response = post_form(
        &node2,
        "/token",
        Some(("shop", &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", trip.code()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &auth.verifier),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    let id_token: CoreIdToken = tokens["id_token"].as_str().unwrap().parse().unwrap();
    id_token
        .claims(&rp.client.id_token_verifier(), &auth.nonce)
        .expect("node 2 signs with the deployment's keys");

    let response = post_form(
        &node2,
        "/token",
        Some(("shop", &secret)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed: Value = response.json().await.unwrap();
    let access = AccessToken::new(refreshed["access_token"].as_str().unwrap().into());
    assert_eq!(userinfo_status(&node1, &access).await, StatusCode::OK);
    // The rotated token is spent on node 1 too.
    let old = RefreshToken::new(tokens["refresh_token"].as_str().unwrap().into());
    assert_eq!(
        error_code(refresh(&rp, &old).await),
        CoreErrorResponseType::InvalidGrant
    );
}

/// The server remembers access tokens whose signature it checked (a speed-up
/// for repeated introspection and userinfo calls): a remembered token must
/// still die at its revocation and at its expiry.
async fn a_token_checked_before_is_refused_once_revoked_or_expired(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.tokens.access_token_ttl_secs = 30).await;
    let rp = shop(&app).await;
    let (revoked, _) = tokens_for(&app, &rp, &[]).await;
    assert!(is_active(&rp, revoked.access_token(), None).await);
    assert_eq!(
        userinfo_status(&app, revoked.access_token()).await,
        StatusCode::OK
    );
    revoke(&rp, CoreRevocableToken::from(revoked.access_token())).await;
    assert!(
        !is_active(&rp, revoked.access_token(), None).await,
        "revoked"
    );
    assert_eq!(
        userinfo_status(&app, revoked.access_token()).await,
        StatusCode::UNAUTHORIZED
    );

    let (expiring, _) = tokens_for(&app, &rp, &[]).await;
    assert!(is_active(&rp, expiring.access_token(), None).await);
    assert_eq!(
        userinfo_status(&app, expiring.access_token()).await,
        StatusCode::OK
    );
    // Past its 30 s (and the 5 s allowed between nodes' clocks), well within
    // the time the server remembers a checked signature.
    app.clock.advance(Duration::seconds(40));
    assert!(
        !is_active(&rp, expiring.access_token(), None).await,
        "expired"
    );
    assert_eq!(
        userinfo_status(&app, expiring.access_token()).await,
        StatusCode::UNAUTHORIZED
    );
}
