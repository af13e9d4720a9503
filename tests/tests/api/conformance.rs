//! The OpenID Foundation's certification suite, module by module: one test
//! per module of the Basic OP plan (`oidcc-basic-certification-test-plan`)
//! and of the Config OP plan (`oidcc-config-certification-test-plan`),
//! named after it with `-` → `_`. Each test does what its module does, as
//! a static client with `client_secret_basic` (the plan's variant, and
//! `client_secret_post` for its one module) talking HTTP to the running
//! server, and asserts what would make the module fail. Where a module
//! accepts "not supported" (request objects, `request_uri`, scopes the
//! discovery document does not list), the test asserts that allowed
//! outcome. The suite waits in real time; these tests move the server's
//! clock instead. docs/conformance.md lists each module, its test and its
//! outcome.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::browser::{NewClient, register_client};
use tests::signin::Person;
use time::Duration;

use crate::oidc::{CALLBACK, EMAIL, PW};
use crate::{Backend, TestApp};

on_both_backends!(
    oidcc_server,
    oidcc_response_type_missing,
    oidcc_idtoken_signature,
    oidcc_idtoken_unsigned,
    oidcc_userinfo_get,
    oidcc_userinfo_post_header,
    oidcc_userinfo_post_body,
    oidcc_ensure_request_without_nonce_succeeds_for_code_flow,
    oidcc_scope_profile,
    oidcc_scope_email,
    oidcc_scope_address,
    oidcc_scope_phone,
    oidcc_scope_all,
    oidcc_alternate_happy_flow,
    oidcc_display_page,
    oidcc_display_popup,
    oidcc_prompt_login,
    oidcc_prompt_none_not_logged_in,
    oidcc_prompt_none_logged_in,
    oidcc_max_age_1,
    oidcc_max_age_10000,
    oidcc_ensure_request_with_unknown_parameter_succeeds,
    oidcc_id_token_hint,
    oidcc_login_hint,
    oidcc_ui_locales,
    oidcc_claims_locales,
    oidcc_ensure_request_with_acr_values_succeeds,
    oidcc_codereuse,
    oidcc_codereuse_30seconds,
    oidcc_ensure_registered_redirect_uri,
    oidcc_ensure_post_request_succeeds,
    oidcc_server_client_secret_post,
    oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported,
    oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported,
    oidcc_claims_essential,
    oidcc_ensure_request_object_with_redirect_uri,
    oidcc_refresh_token,
    oidcc_ensure_request_with_valid_pkce_succeeds,
    oidcc_ensure_redirect_uri_in_authorization_request,
    oidcc_discovery_endpoint_verification,
);

/// The suite's static client (`client.client_id` in its configuration).
const CLIENT: &str = "certification";
/// Its second client (`client2`), for the refresh token module.
const CLIENT2: &str = "certification-2";
const NAME: &str = "Jane Doe";

/// The claims an ID token may carry without being asked for (the suite's
/// `EnsureIdTokenDoesNotContainNonRequestedClaims`: OIDC Core 2 and 3.3.2.11,
/// JWT 4.1, front-channel logout's `sid`).
const ID_TOKEN_CLAIMS: [&str; 15] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "nbf",
    "jti",
    "sid",
];

// ---------------------------------------------------------------- the suite's client

/// The provider as the suite sees it after configuring a module: the
/// discovery document, the keys, and a registered static client.
pub(crate) struct Suite {
    pub(crate) app: TestApp,
    pub(crate) meta: Value,
    jwks: JwkSet,
    client: String,
    secret: String,
}

/// An authorization request as the suite builds it, its parameters in the
/// order they are sent.
#[derive(Debug, Clone)]
pub(crate) struct Request(Vec<(String, String)>);

impl Request {
    pub(crate) fn set(mut self, name: &str, value: &str) -> Self {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(entry) => entry.1 = value.to_owned(),
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    pub(crate) fn without(mut self, name: &str) -> Self {
        self.0.retain(|(k, _)| k != name);
        self
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query (or form body) as sent.
    fn encoded(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.0)
            .finish()
    }
}

/// The parameters the client's redirect URI received.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) params: HashMap<String, String>,
    pub(crate) asked_password: bool,
}

impl Answer {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub(crate) fn code(&self) -> &str {
        self.get("code")
            .unwrap_or_else(|| panic!("no code: {:?}", self.params))
    }
}

/// A token endpoint answer.
#[derive(Debug)]
pub(crate) struct Tokens {
    pub(crate) status: StatusCode,
    headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Tokens {
    pub(crate) fn str(&self, member: &str) -> &str {
        self.body[member]
            .as_str()
            .unwrap_or_else(|| panic!("no {member}: {}", self.body))
    }
}

/// A completed flow: the code's answer, the tokens and the ID token's claims.
#[derive(Debug)]
pub(crate) struct Flow {
    pub(crate) answer: Answer,
    pub(crate) tokens: Tokens,
    pub(crate) id: Value,
}

impl Flow {
    pub(crate) fn access_token(&self) -> &str {
        self.tokens.str("access_token")
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ClientAuth {
    Basic,
    Post,
}

/// How userinfo is called (the three userinfo modules).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Via {
    Get,
    PostHeader,
    PostBody,
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn server_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Suite {
    /// A fresh server with Jane's account and the suite's client (first
    /// party: the tester's sign-in is the only interaction).
    async fn start(backend: Backend) -> Self {
        let app = TestApp::spawn(backend).await;
        app.create_user(EMAIL, PW, NAME).await;
        let secret = register_client(&app, NewClient::app(CLIENT, "Certification RP", CALLBACK))
            .await
            .unwrap();
        Self::on(app, CLIENT, secret).await
    }

    /// The suite configured for `app` and its registered client `client`
    /// (redirect URI [`CALLBACK`]).
    pub(crate) async fn on(app: TestApp, client: &str, secret: String) -> Self {
        let meta: Value = app
            .get("/.well-known/openid-configuration")
            .await
            .json()
            .await
            .unwrap();
        let jwks: JwkSet = server_http()
            .get(meta["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            app,
            meta,
            jwks,
            client: client.to_owned(),
            secret,
        }
    }

    fn issuer(&self) -> &str {
        self.meta["issuer"].as_str().unwrap()
    }

    fn endpoint(&self, member: &str) -> &str {
        self.meta[member]
            .as_str()
            .unwrap_or_else(|| panic!("no {member} in discovery"))
    }

    pub(crate) fn now(&self) -> i64 {
        self.app.clock_now().unix_timestamp()
    }

    /// The suite's request: code flow, fresh state and nonce, scope openid.
    pub(crate) fn request(&self) -> Request {
        Request(vec![
            ("client_id".into(), self.client.clone()),
            ("nonce".into(), random()),
            ("redirect_uri".into(), CALLBACK.into()),
            ("response_type".into(), "code".into()),
            ("scope".into(), "openid".into()),
            ("state".into(), random()),
        ])
    }

    pub(crate) fn url(&self, request: &Request) -> String {
        format!(
            "{}?{}",
            self.endpoint("authorization_endpoint"),
            request.encoded()
        )
    }

    /// Follows `url` in `browser` to the client's redirect URI, signing Jane
    /// in with `password` when asked (`None`: being asked fails the test).
    async fn follow(&self, browser: &TestApp, url: &str, password: Option<&str>) -> Answer {
        let mut jane = Person::new(EMAIL);
        jane.password = password.map(str::to_owned);
        self.follow_as(browser, url, &mut jane).await
    }

    /// [`Self::follow`] as `person`, who answers the pages as told.
    pub(crate) async fn follow_as(
        &self,
        browser: &TestApp,
        url: &str,
        person: &mut Person,
    ) -> Answer {
        let callback = format!("{CALLBACK}?");
        let arrived = person
            .walk(browser, url, |u| u.starts_with(&callback))
            .await;
        Answer {
            params: url::Url::parse(&arrived)
                .unwrap()
                .query_pairs()
                .into_owned()
                .collect(),
            asked_password: person.asked_password(),
        }
    }

    /// `request` sent from `browser` to the authorization endpoint.
    pub(crate) async fn authorize(
        &self,
        browser: &TestApp,
        request: &Request,
        password: Option<&str>,
    ) -> Answer {
        self.follow(browser, &self.url(request), password).await
    }

    /// The checks of every successful authorization response: `state`
    /// unchanged, `iss` the issuer (RFC 9207), a code of at least 128 bits
    /// with enough entropy (RFC 6749 10.10).
    pub(crate) fn check_code_answer(&self, answer: &Answer, request: &Request) {
        assert_eq!(answer.get("state"), request.get("state"), "{answer:?}");
        assert_eq!(answer.get("iss"), Some(self.issuer()), "{answer:?}");
        assert_eq!(answer.get("error"), None, "{answer:?}");
        let code = answer.code();
        assert!(code.len() * 8 >= 128, "code too short: {code}");
        assert!(shannon_bits(code) > 96.0, "code not random enough: {code}");
    }

    /// The generic checks of an error response (the suite's
    /// `performGenericAuthorizationEndpointErrorResponseValidation`), then
    /// that the error is one of `allowed`.
    pub(crate) fn check_error_answer(
        &self,
        answer: &Answer,
        state: Option<&str>,
        allowed: &[&str],
    ) {
        let error = answer
            .get("error")
            .unwrap_or_else(|| panic!("no error: {answer:?}"));
        assert!(allowed.contains(&error), "{error} not in {allowed:?}");
        assert_eq!(answer.get("state"), state, "{answer:?}");
        assert_eq!(answer.get("iss"), Some(self.issuer()), "{answer:?}");
        assert_eq!(answer.get("code"), None, "no code with an error");
        for name in answer.params.keys() {
            assert!(
                ["error", "error_description", "error_uri", "state", "iss"]
                    .contains(&name.as_str()),
                "unexpected {name} in an error response: {answer:?}"
            );
        }
        if let Some(description) = answer.get("error_description") {
            assert!(error_text(description), "{description:?}");
        }
    }

    /// A token endpoint request authenticated as `client` (id, secret).
    async fn token_as(
        &self,
        client: (&str, &str),
        auth: ClientAuth,
        form: &[(&str, &str)],
    ) -> Tokens {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        let mut request = server_http().post(self.endpoint("token_endpoint"));
        match auth {
            ClientAuth::Basic => request = request.basic_auth(client.0, Some(client.1)),
            ClientAuth::Post => {
                form.push(("client_id", client.0));
                form.push(("client_secret", client.1));
            }
        }
        let response = request.form(&form).send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap();
        Tokens {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn token(&self, auth: ClientAuth, form: &[(&str, &str)]) -> Tokens {
        self.token_as((&self.client, &self.secret), auth, form)
            .await
    }

    pub(crate) async fn redeem(&self, code: &str, auth: ClientAuth) -> Tokens {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
        ];
        self.token(auth, &form).await
    }

    /// The checks of a successful token response (RFC 6749 5.1).
    pub(crate) fn check_tokens(&self, tokens: &Tokens) {
        assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
        assert!(json_content(&tokens.headers), "{:?}", tokens.headers);
        assert!(
            tokens
                .headers
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|p| p.trim() == "no-store")),
            "token responses are not cached: {:?}",
            tokens.headers
        );
        assert!(tokens.str("token_type").eq_ignore_ascii_case("bearer"));
        assert!(tokens.body["expires_in"].as_u64().is_some_and(|e| e > 0));
        let access = tokens.str("access_token");
        assert!(access.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        assert!(shannon_bits(access) > 96.0);
    }

    /// The ID token of `tokens`, checked as the suite's
    /// `PerformStandardIdTokenChecks` does, against the server's clock:
    /// signed with a published key named by `kid`, iss, aud, exp, iat,
    /// auth_time, nonce, acr, sub, updated_at; and `at_hash` when present.
    pub(crate) fn id_token(&self, tokens: &Tokens, nonce: Option<&str>) -> Value {
        let token = tokens.str("id_token");
        let header = jsonwebtoken::decode_header(token).unwrap();
        let kid = header.kid.as_deref().expect("the ID token names its key");
        let jwk = self
            .jwks
            .find(kid)
            .unwrap_or_else(|| panic!("{kid} is not in the JWKS"));
        let mut validation = Validation::new(header.alg);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims =
            jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
                .expect("the signature checks out with the published key")
                .claims;
        let now = self.now();
        assert_eq!(claims["iss"], json!(self.issuer()));
        let aud = &claims["aud"];
        let client = json!(self.client);
        assert!(
            aud == &client || aud.as_array().is_some_and(|a| a.contains(&client)),
            "aud {aud}"
        );
        let exp = claims["exp"].as_i64().expect("exp");
        assert!(
            exp > now - 300 && exp < now + 50 * 365 * 86_400,
            "exp {exp}"
        );
        let iat = claims["iat"].as_i64().expect("iat");
        assert!(
            (now - 300..=now + 300).contains(&iat),
            "iat {iat}, now {now}"
        );
        if let Some(auth_time) = claims.get("auth_time") {
            let auth_time = auth_time.as_i64().expect("auth_time is a number");
            assert!(auth_time <= now + 300 && auth_time > now - 365 * 86_400);
        }
        assert_eq!(claims.get("nonce").and_then(Value::as_str), nonce);
        if let Some(acr) = claims.get("acr") {
            assert!(acr.as_str().is_some_and(|a| !a.is_empty()), "acr {acr}");
        }
        assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
        if let Some(updated_at) = claims.get("updated_at") {
            assert!(updated_at.is_i64(), "updated_at {updated_at}");
        }
        if let Some(at_hash) = claims.get("at_hash") {
            let digest = Sha256::digest(tokens.str("access_token").as_bytes());
            assert_eq!(at_hash, &json!(URL_SAFE_NO_PAD.encode(&digest[..16])));
        }
        claims
    }

    /// Userinfo called with `access_token`: the status and the claims.
    pub(crate) async fn userinfo_raw(
        &self,
        access_token: &str,
        via: Via,
    ) -> (StatusCode, Option<Value>) {
        let endpoint = self.endpoint("userinfo_endpoint");
        let http = server_http();
        let request = match via {
            Via::Get => http.get(endpoint).bearer_auth(access_token),
            Via::PostHeader => http.post(endpoint).bearer_auth(access_token),
            Via::PostBody => http.post(endpoint).form(&[("access_token", access_token)]),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let json = json_content(response.headers());
        let body = response.json().await.ok().filter(|_| json);
        (status, body)
    }

    /// Userinfo as the userinfo and claims modules check it: 200, JSON, the
    /// standard claims well typed, the ID token's `sub`.
    pub(crate) async fn userinfo(&self, flow: &Flow, via: Via) -> Value {
        let (status, body) = self.userinfo_raw(flow.access_token(), via).await;
        assert_eq!(status, StatusCode::OK, "{via:?}");
        let info = body.expect("a JSON body");
        assert_eq!(info["sub"], flow.id["sub"], "the ID token's subject");
        for (claim, well_typed) in [
            ("email", Value::is_string as fn(&Value) -> bool),
            ("email_verified", Value::is_boolean),
            ("name", Value::is_string),
            ("updated_at", Value::is_i64),
        ] {
            if let Some(value) = info.get(claim) {
                assert!(well_typed(value), "{claim}: {value}");
            }
        }
        info
    }

    /// The base module (`AbstractOIDCCServerTest`): authorize, redeem the
    /// code with `client_secret_basic`, check the ID token, call userinfo.
    pub(crate) async fn flow(
        &self,
        browser: &TestApp,
        request: &Request,
        password: Option<&str>,
    ) -> Flow {
        self.flow_with(browser, request, password, ClientAuth::Basic)
            .await
    }

    async fn flow_with(
        &self,
        browser: &TestApp,
        request: &Request,
        password: Option<&str>,
        auth: ClientAuth,
    ) -> Flow {
        let answer = self.authorize(browser, request, password).await;
        self.finish(answer, request, auth).await
    }

    pub(crate) async fn finish(&self, answer: Answer, request: &Request, auth: ClientAuth) -> Flow {
        self.check_code_answer(&answer, request);
        let tokens = self.redeem(answer.code(), auth).await;
        self.check_tokens(&tokens);
        let id = self.id_token(&tokens, request.get("nonce"));
        let flow = Flow { answer, tokens, id };
        let (status, _) = self.userinfo_raw(flow.access_token(), Via::Get).await;
        assert_eq!(status, StatusCode::OK, "the access token works at userinfo");
        flow
    }

    /// An error page in the browser, and no redirect to any client.
    async fn assert_error_page(&self, url: &str, says: &str) {
        let browser = self.app.other_browser();
        let page = browser.page_at(url).await;
        assert!(
            page.status.is_client_error(),
            "{}: {}",
            page.status,
            page.text()
        );
        assert_eq!(page.location, None, "never redirected");
        assert!(
            page.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/html")),
            "a page a person reads"
        );
        assert!(page.text().contains(says), "{}", page.text());
    }
}

/// Shannon entropy of `s` in bits, as the suite estimates it.
fn shannon_bits(s: &str) -> f64 {
    let mut counts: HashMap<char, f64> = HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_default() += 1.0;
    }
    let n = s.chars().count() as f64;
    let per_char: f64 = counts
        .values()
        .map(|k| {
            let p = k / n;
            -p * p.log2()
        })
        .sum();
    per_char * n
}

/// RFC 6749 4.1.2.1 and 5.2: `error_description` is %x20-21 / %x23-5B / %x5D-7E.
fn error_text(s: &str) -> bool {
    s.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

fn json_content(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The claim names of a JSON object.
pub(crate) fn names(object: &Value) -> Vec<&str> {
    object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// An unsigned request object (`alg: none`, OIDC Core 6.1) carrying every
/// parameter of `request`.
fn unsigned_request_object(request: &Request) -> String {
    let claims: serde_json::Map<String, Value> = request
        .0
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
    format!("{header}.{payload}.")
}

/// The part of a request the suite keeps in the URL when the rest travels
/// in a request object (OIDC Core 6.1: response_type, client_id, scope;
/// RFC 6749 3.1.2.3: redirect_uri).
fn outside_object(request: &Request) -> Request {
    Request(
        request
            .0
            .iter()
            .filter(|(k, _)| {
                ["client_id", "redirect_uri", "response_type", "scope"].contains(&k.as_str())
            })
            .cloned()
            .collect(),
    )
}

fn scopes_supported(suite: &Suite) -> Vec<&str> {
    suite.meta["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

// ---------------------------------------------------------------- OP-Response-*

/// oidcc-server: the happy flow. Beyond the base checks: the ID token from
/// the token endpoint has a valid `at_hash` when present, no `name`, and no
/// claim that was not requested.
async fn oidcc_server(backend: Backend) {
    let suite = Suite::start(backend).await;
    let request = suite.request();
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    assert!(
        flow.id.get("at_hash").is_some(),
        "at_hash binds the access token"
    );
    assert!(flow.id.get("name").is_none(), "name was not requested");
    for claim in names(&flow.id) {
        assert!(
            ID_TOKEN_CLAIMS.contains(&claim),
            "{claim} was not requested"
        );
    }
}

/// oidcc-response-type-missing: without `response_type`, an error back at
/// the redirect URI (`invalid_request` or `unsupported_response_type`), in
/// the query.
async fn oidcc_response_type_missing(backend: Backend) {
    let suite = Suite::start(backend).await;
    let request = suite.request().without("response_type");
    let answer = suite.authorize(&suite.app, &request, None).await;
    suite.check_error_answer(
        &answer,
        request.get("state"),
        &["invalid_request", "unsupported_response_type"],
    );
    assert!(!answer.asked_password, "refused before any sign-in");
}

/// oidcc-idtoken-signature (dynamic clients only in the suite; checked for
/// the static one too): without an algorithm asked for, the ID token is
/// RS256 and names its key.
async fn oidcc_idtoken_signature(backend: Backend) {
    let suite = Suite::start(backend).await;
    let flow = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    let header = jsonwebtoken::decode_header(flow.tokens.str("id_token")).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert!(header.kid.is_some(), "OIDC Core 10.1: kid");
}

/// oidcc-idtoken-unsigned: skipped by the suite when discovery does not
/// list `none` among the ID token algorithms (allowed). It is not listed,
/// and no client can be registered for it.
async fn oidcc_idtoken_unsigned(backend: Backend) {
    let suite = Suite::start(backend).await;
    let algs = &suite.meta["id_token_signing_alg_values_supported"];
    assert!(!algs.as_array().unwrap().contains(&json!("none")), "{algs}");
    assert!("none".parse::<idp::domain::IdTokenAlg>().is_err());
}

// ---------------------------------------------------------------- OP-UserInfo-*

/// oidcc-userinfo-get.
async fn oidcc_userinfo_get(backend: Backend) {
    let suite = Suite::start(backend).await;
    let flow = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    suite.userinfo(&flow, Via::Get).await;
}

/// oidcc-userinfo-post-header.
async fn oidcc_userinfo_post_header(backend: Backend) {
    let suite = Suite::start(backend).await;
    let flow = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    suite.userinfo(&flow, Via::PostHeader).await;
}

/// oidcc-userinfo-post-body: the token in a form body (RFC 6750 2.2). The
/// suite accepts a refusal with a warning; it is served.
async fn oidcc_userinfo_post_body(backend: Backend) {
    let suite = Suite::start(backend).await;
    let flow = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    suite.userinfo(&flow, Via::PostBody).await;
}

/// oidcc-ensure-request-without-nonce-succeeds-for-code-flow: the nonce is
/// optional in the code flow; a code comes back (the module stops there).
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow(backend: Backend) {
    let suite = Suite::start(backend).await;
    let request = suite.request().without("nonce");
    let answer = suite.authorize(&suite.app, &request, Some(PW)).await;
    suite.check_code_answer(&answer, &request);
}

// ---------------------------------------------------------------- OP-scope-*

/// oidcc-scope-profile: userinfo answers with the profile claims this
/// provider holds (`name`, `updated_at`; the suite warns that the other
/// twelve profile claims are absent: accounts have no such fields).
async fn oidcc_scope_profile(backend: Backend) {
    let suite = Suite::start(backend).await;
    assert!(scopes_supported(&suite).contains(&"profile"), "not skipped");
    let request = suite.request().set("scope", "openid profile");
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    let info = suite.userinfo(&flow, Via::Get).await;
    assert_eq!(info["name"], json!(NAME));
    assert!(info["updated_at"].is_i64(), "{info}");
}

/// oidcc-scope-email: userinfo answers with `email` and `email_verified`,
/// and without `name`; the ID token has no `name`. (The ID token carries
/// the email too, as this provider always did for the email scope: the
/// suite warns about that, it does not fail.)
async fn oidcc_scope_email(backend: Backend) {
    let suite = Suite::start(backend).await;
    assert!(scopes_supported(&suite).contains(&"email"), "not skipped");
    let request = suite.request().set("scope", "openid email");
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    let info = suite.userinfo(&flow, Via::Get).await;
    assert_eq!(info["email"], json!(EMAIL));
    assert_eq!(info["email_verified"], json!(true));
    assert!(info.get("name").is_none(), "{info}");
    assert!(flow.id.get("name").is_none(), "{}", flow.id);
}

/// A scope the discovery document does not list (`address`, `phone`): the
/// suite skips the module (allowed). A request for it is still answered:
/// the scope is ignored, never an error (RFC 6749 3.3), and nothing is
/// released for it.
async fn unlisted_scope_is_skipped_and_ignored(backend: Backend, scope: &str, claims: &[&str]) {
    let suite = Suite::start(backend).await;
    assert!(
        !scopes_supported(&suite).contains(&scope),
        "the suite skips"
    );
    let request = suite.request().set("scope", &format!("openid {scope}"));
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    assert_eq!(flow.tokens.str("scope"), "openid", "{scope} is not granted");
    let info = suite.userinfo(&flow, Via::Get).await;
    assert_eq!(names(&info), ["sub"], "{info}");
    for claim in claims {
        assert!(flow.id.get(*claim).is_none(), "{claim}");
    }
}

/// oidcc-scope-address: skipped (`address` is not in `scopes_supported`:
/// accounts hold no postal address).
async fn oidcc_scope_address(backend: Backend) {
    unlisted_scope_is_skipped_and_ignored(backend, "address", &["address"]).await;
}

/// oidcc-scope-phone: skipped (`phone` is not in `scopes_supported`:
/// accounts hold no phone number).
async fn oidcc_scope_phone(backend: Backend) {
    unlisted_scope_is_skipped_and_ignored(
        backend,
        "phone",
        &["phone_number", "phone_number_verified"],
    )
    .await;
}

/// oidcc-scope-all: skipped (address and phone are not listed). Asked all
/// the same, the email and profile claims come back, address and phone are
/// ignored.
async fn oidcc_scope_all(backend: Backend) {
    let suite = Suite::start(backend).await;
    let supported = scopes_supported(&suite);
    assert!(!supported.contains(&"address") && !supported.contains(&"phone"));
    let request = suite
        .request()
        .set("scope", "openid email phone address profile");
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    let granted: Vec<&str> = flow.tokens.str("scope").split(' ').collect();
    assert_eq!(granted, ["openid", "email", "profile"]);
    let info = suite.userinfo(&flow, Via::Get).await;
    let mut released = names(&info);
    released.sort_unstable();
    assert_eq!(
        released,
        ["email", "email_verified", "name", "sub", "updated_at"]
    );
}

/// oidcc-alternate-happy-flow (it replaced oidcc-ensure-other-scope-order-
/// succeeds): oidcc-scope-email with the scope values reversed and the
/// parameters sent in reverse order.
async fn oidcc_alternate_happy_flow(backend: Backend) {
    let suite = Suite::start(backend).await;
    let mut request = suite.request().set("scope", "email openid");
    request.0.sort_by(|a, b| b.0.cmp(&a.0));
    assert_eq!(request.0[0].0, "state", "reverse alphabetical order");
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    let info = suite.userinfo(&flow, Via::Get).await;
    assert_eq!(info["email"], json!(EMAIL));
    assert!(info.get("name").is_none(), "{info}");
}

// ---------------------------------------------------------------- OP-display-*, OP-prompt-*

/// oidcc-display-page: `display=page` must not cause an error.
async fn oidcc_display_page(backend: Backend) {
    let suite = Suite::start(backend).await;
    let request = suite.request().set("display", "page");
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    assert!(flow.answer.asked_password, "the sign-in page, as a page");
}

/// oidcc-display-popup: `display=popup` must not cause an error.
async fn oidcc_display_popup(backend: Backend) {
    let suite = Suite::start(backend).await;
    let request = suite.request().set("display", "popup");
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    assert!(flow.answer.asked_password);
}

/// oidcc-prompt-login: a second authorization with `prompt=login` a second
/// later asks for the password again, and its `auth_time` is later.
async fn oidcc_prompt_login(backend: Backend) {
    let suite = Suite::start(backend).await;
    let first = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    suite.app.clock.advance(Duration::seconds(1));
    let request = suite.request().set("prompt", "login");
    let second = suite.flow(&suite.app, &request, Some(PW)).await;
    assert!(second.answer.asked_password, "a second sign-in page");
    let (t1, t2) = (&first.id["auth_time"], &second.id["auth_time"]);
    assert!(t2.as_i64() > t1.as_i64(), "{t1} then {t2}");
}

/// oidcc-prompt-none-not-logged-in: a browser without a session asking
/// with `prompt=none` (and a 128-character state) gets one of the errors
/// that say a user interface was needed, its state intact.
async fn oidcc_prompt_none_not_logged_in(backend: Backend) {
    let suite = Suite::start(backend).await;
    let state = "s".repeat(64) + &"t".repeat(64);
    let request = suite.request().set("prompt", "none").set("state", &state);
    let answer = suite.authorize(&suite.app, &request, None).await;
    suite.check_error_answer(
        &answer,
        Some(&state),
        &[
            "interaction_required",
            "login_required",
            "account_selection_required",
            "consent_required",
        ],
    );
}

/// oidcc-prompt-none-logged-in: the second authorization, with
/// `prompt=none`, signs nobody in again; `sub` and `auth_time` are those
/// of the first.
async fn oidcc_prompt_none_logged_in(backend: Backend) {
    let suite = Suite::start(backend).await;
    let first = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    let request = suite.request().set("prompt", "none");
    let second = suite.flow(&suite.app, &request, None).await;
    assert_same_authentication(&first, &second);
}

/// `CheckIdTokenAuthTimeClaimsSameIfPresent`, `CheckIdTokenSubConsistentForSecondAuthorization`.
fn assert_same_authentication(first: &Flow, second: &Flow) {
    assert_eq!(first.id["sub"], second.id["sub"]);
    assert_eq!(first.id.get("auth_time"), second.id.get("auth_time"));
    assert!(!second.answer.asked_password, "no interaction");
}

/// oidcc-max-age-1: two seconds after a sign-in, `max_age=1` asks for the
/// password again; the second ID token carries an `auth_time` that is
/// later than the first and recent.
async fn oidcc_max_age_1(backend: Backend) {
    let suite = Suite::start(backend).await;
    let first = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    suite.app.clock.advance(Duration::seconds(2));
    let request = suite.request().set("max_age", "1");
    let second = suite.flow(&suite.app, &request, Some(PW)).await;
    assert!(second.answer.asked_password, "a second sign-in page");
    let auth_time = second.id["auth_time"]
        .as_i64()
        .expect("auth_time with max_age");
    assert!(Some(auth_time) > first.id["auth_time"].as_i64());
    assert!(suite.now() - auth_time <= 5, "recent: {auth_time}");
}

/// oidcc-max-age-10000: `max_age=15000`, then `max_age=10000` later on:
/// no second sign-in, `auth_time` present and unchanged, same `sub`.
async fn oidcc_max_age_10000(backend: Backend) {
    let suite = Suite::start(backend).await;
    let request = suite.request().set("max_age", "15000");
    let first = suite.flow(&suite.app, &request, Some(PW)).await;
    assert!(first.id["auth_time"].is_i64(), "auth_time with max_age");
    suite.app.clock.advance(Duration::seconds(60));
    let request = suite.request().set("max_age", "10000");
    let second = suite.flow(&suite.app, &request, None).await;
    assert!(second.id["auth_time"].is_i64(), "auth_time with max_age");
    assert_same_authentication(&first, &second);
}

// ---------------------------------------------------------------- OP-Req-*

/// oidcc-ensure-request-with-unknown-parameter-succeeds: `extra=foobar` is
/// ignored (RFC 6749 3.1).
async fn oidcc_ensure_request_with_unknown_parameter_succeeds(backend: Backend) {
    let suite = Suite::start(backend).await;
    let request = suite.request().set("extra", "foobar");
    suite.flow(&suite.app, &request, Some(PW)).await;
}

/// oidcc-id-token-hint: the second authorization, `prompt=none` with the
/// first ID token as `id_token_hint`, completes without interaction, for
/// the same `sub` and `auth_time`.
async fn oidcc_id_token_hint(backend: Backend) {
    let suite = Suite::start(backend).await;
    let first = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    let request = suite
        .request()
        .set("prompt", "none")
        .set("id_token_hint", first.tokens.str("id_token"));
    let second = suite.flow(&suite.app, &request, None).await;
    assert_same_authentication(&first, &second);
}

/// oidcc-login-hint: a `login_hint` (the configured user) must not cause
/// an error; the sign-in page offers it.
async fn oidcc_login_hint(backend: Backend) {
    let suite = Suite::start(backend).await;
    let request = suite.request().set("login_hint", EMAIL);
    let page = suite.app.page_at(&suite.url(&request)).await;
    let login = crate::oidc::open(&suite.app, page.location.as_deref().unwrap()).await;
    assert_eq!(login.input("email").as_deref(), Some(EMAIL), "prefilled");
    suite
        .flow(&suite.app.other_browser(), &request, Some(PW))
        .await;
}

/// oidcc-ui-locales: `ui_locales=se` must not cause an error.
async fn oidcc_ui_locales(backend: Backend) {
    let suite = Suite::start(backend).await;
    let request = suite.request().set("ui_locales", "se");
    suite.flow(&suite.app, &request, Some(PW)).await;
}

/// oidcc-claims-locales: `claims_locales=se` must not cause an error.
async fn oidcc_claims_locales(backend: Backend) {
    let suite = Suite::start(backend).await;
    let request = suite.request().set("claims_locales", "se");
    suite.flow(&suite.app, &request, Some(PW)).await;
}

/// oidcc-ensure-request-with-acr-values-succeeds: the discovery document's
/// `acr_values_supported` sent as `acr_values` must not fail the request
/// (a user without an authenticator is not sent to set one up); the ID
/// token's `acr` is one of them.
async fn oidcc_ensure_request_with_acr_values_succeeds(backend: Backend) {
    let suite = Suite::start(backend).await;
    let supported: Vec<&str> = suite.meta["acr_values_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(supported, ["1", "2"]);
    let request = suite.request().set("acr_values", &supported.join(" "));
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    let acr = flow.id["acr"].as_str().expect("acr");
    assert!(supported.contains(&acr), "{acr}");
}

// ---------------------------------------------------------------- OP-OAuth-2nd*

/// The second use of a code: 400, JSON, `invalid_grant`, a well-formed
/// description (the suite's `AbstractOIDCCAuthCodeReuse.checkResponse`).
async fn assert_code_refused(suite: &Suite, code: &str) {
    let again = suite.redeem(code, ClientAuth::Basic).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert!(json_content(&again.headers));
    assert_eq!(again.body["error"], "invalid_grant");
    if let Some(description) = again.body["error_description"].as_str() {
        assert!(error_text(description), "{description:?}");
    }
    assert!(again.body.get("error_uri").is_none());
}

/// oidcc-codereuse: a code used a second time at once is refused.
async fn oidcc_codereuse(backend: Backend) {
    let suite = Suite::start(backend).await;
    let flow = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    assert_code_refused(&suite, flow.answer.code()).await;
}

/// oidcc-codereuse-30seconds: used again 30 seconds later, the code is
/// refused, and the access token its first use got is revoked (RFC 6749
/// 4.1.2; the suite warns if it still works).
async fn oidcc_codereuse_30seconds(backend: Backend) {
    let suite = Suite::start(backend).await;
    let flow = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    suite.app.clock.advance(Duration::seconds(30));
    assert_code_refused(&suite, flow.answer.code()).await;
    let (status, _) = suite.userinfo_raw(flow.access_token(), Via::Get).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the first access token is revoked"
    );
}

// ---------------------------------------------------------------- OP-redirect_uri-*, POST

/// oidcc-ensure-registered-redirect-uri: a redirect URI that is the
/// registered one with something appended gets an error page; nobody is
/// sent there, nor to the registered one.
async fn oidcc_ensure_registered_redirect_uri(backend: Backend) {
    let suite = Suite::start(backend).await;
    let bad = format!("{CALLBACK}/{}", random());
    let request = suite.request().set("redirect_uri", &bad);
    suite
        .assert_error_page(&suite.url(&request), "not registered")
        .await;
}

/// oidcc-ensure-post-request-succeeds: the authorization request as a
/// form POST completes like a GET.
async fn oidcc_ensure_post_request_succeeds(backend: Backend) {
    let suite = Suite::start(backend).await;
    let request = suite.request();
    let response = suite
        .app
        .http
        .post(suite.endpoint("authorization_endpoint"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(request.encoded())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let next = response.headers()["location"].to_str().unwrap().to_owned();
    let answer = suite.follow(&suite.app, &next, Some(PW)).await;
    suite.finish(answer, &request, ClientAuth::Basic).await;
}

/// oidcc-server-client-secret-post: the happy flow with the client secret
/// in the token request's body; discovery lists the method.
async fn oidcc_server_client_secret_post(backend: Backend) {
    let suite = Suite::start(backend).await;
    let methods = &suite.meta["token_endpoint_auth_methods_supported"];
    assert!(
        methods
            .as_array()
            .unwrap()
            .contains(&json!("client_secret_post"))
    );
    let request = suite.request();
    suite
        .flow_with(&suite.app, &request, Some(PW), ClientAuth::Post)
        .await;
}

// ---------------------------------------------------------------- OP-request*, OP-claims-*

/// oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported:
/// an unsigned request object by reference is answered with
/// `request_uri_not_supported` (allowed: the module is then skipped), and
/// discovery says so.
async fn oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(
    backend: Backend,
) {
    let suite = Suite::start(backend).await;
    assert_eq!(suite.meta["request_uri_parameter_supported"], json!(false));
    let request = outside_object(&suite.request()).set(
        "request_uri",
        &format!("https://suite.example/requests/{}#{}", random(), random()),
    );
    let answer = suite.authorize(&suite.app, &request, None).await;
    suite.check_error_answer(&answer, None, &["request_uri_not_supported"]);
}

/// oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported:
/// an unsigned request object by value is answered with
/// `request_not_supported` (allowed: skipped), and discovery says so.
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(
    backend: Backend,
) {
    let suite = Suite::start(backend).await;
    assert_eq!(suite.meta["request_parameter_supported"], json!(false));
    let full = suite.request();
    let request = outside_object(&full).set("request", &unsigned_request_object(&full));
    let answer = suite.authorize(&suite.app, &request, None).await;
    suite.check_error_answer(&answer, None, &["request_not_supported"]);
}

/// oidcc-claims-essential: `name` asked for as essential in userinfo with
/// the `openid` scope alone: the request succeeds, userinfo carries the
/// name (the suite warns if not), the ID token does not (it was not asked
/// for there).
async fn oidcc_claims_essential(backend: Backend) {
    let suite = Suite::start(backend).await;
    assert_eq!(suite.meta["claims_parameter_supported"], json!(true));
    let claims = json!({ "userinfo": { "name": { "essential": true } } }).to_string();
    let request = suite.request().set("claims", &claims);
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    let info = suite.userinfo(&flow, Via::Get).await;
    assert_eq!(info["name"], json!(NAME));
    assert!(flow.id.get("name").is_none(), "{}", flow.id);
}

/// oidcc-ensure-request-object-with-redirect-uri: a request object with
/// the registered redirect URI, and an unregistered one as a parameter.
/// Request objects are not processed, so the parameter counts: an error
/// page, never a redirect (the module's allowed "invalid redirect_uri"
/// outcome; a `request_not_supported` sent to the registered URI would fail
/// it).
async fn oidcc_ensure_request_object_with_redirect_uri(backend: Backend) {
    let suite = Suite::start(backend).await;
    let full = suite.request();
    let object = unsigned_request_object(&full);
    let bad = format!("{CALLBACK}/{}", random());
    let request = outside_object(&full)
        .set("redirect_uri", &bad)
        .set("request", &object);
    suite
        .assert_error_page(&suite.url(&request), "not registered")
        .await;
}

/// oidcc-refresh-token: with `offline_access` (discovery lists it) and
/// `prompt=consent`, the token response carries a refresh token; a second
/// later it is exchanged (with the scope) for new tokens whose ID token
/// keeps iss, sub, aud, auth_time and azp and has a new iat (OIDC Core
/// 12.2); the new access token works. A second client's refresh token
/// presented by the first client is `invalid_grant`.
async fn oidcc_refresh_token(backend: Backend) {
    let suite = Suite::start(backend).await;
    assert!(scopes_supported(&suite).contains(&"offline_access"));
    let grants = &suite.meta["grant_types_supported"];
    assert!(grants.as_array().unwrap().contains(&json!("refresh_token")));
    let scope = "openid offline_access";
    let request = suite.request().set("scope", scope).set("prompt", "consent");
    let first = suite.flow(&suite.app, &request, Some(PW)).await;
    let refresh = first.tokens.str("refresh_token");
    assert!(
        refresh.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "RFC 6749 A.17"
    );

    suite.app.clock.advance(Duration::seconds(1));
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("scope", scope),
    ];
    let renewed = suite.token(ClientAuth::Basic, &form).await;
    suite.check_tokens(&renewed);
    assert_ne!(renewed.str("access_token"), first.access_token());
    if let Some(new_refresh) = renewed.body["refresh_token"].as_str() {
        assert!(new_refresh.len() * 8 >= 128 && shannon_bits(new_refresh) > 96.0);
    }
    let second = suite.id_token(&renewed, None);
    for claim in ["iss", "sub", "aud", "auth_time", "azp"] {
        assert_eq!(first.id.get(claim), second.get(claim), "{claim}");
    }
    assert_ne!(first.id["iat"], second["iat"], "a new ID token");
    let (status, _) = suite
        .userinfo_raw(renewed.str("access_token"), Via::Get)
        .await;
    assert_eq!(status, StatusCode::OK);

    // The second client signs in and gets its own refresh token, which the
    // first client cannot use.
    let secret2 = register_client(
        &suite.app,
        NewClient::app(CLIENT2, "Certification RP 2", CALLBACK),
    )
    .await
    .unwrap();
    let request2 = suite
        .request()
        .set("client_id", CLIENT2)
        .set("scope", scope)
        .set("prompt", "consent");
    let answer = suite.authorize(&suite.app, &request2, None).await;
    suite.check_code_answer(&answer, &request2);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", answer.code()),
        ("redirect_uri", CALLBACK),
    ];
    let tokens2 = suite
        .token_as((CLIENT2, &secret2), ClientAuth::Basic, &form)
        .await;
    assert_eq!(tokens2.status, StatusCode::OK, "{}", tokens2.body);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens2.str("refresh_token")),
        ("scope", scope),
    ];
    let stolen = suite.token(ClientAuth::Basic, &form).await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST, "{}", stolen.body);
    assert!(json_content(&stolen.headers));
    assert_eq!(stolen.body["error"], "invalid_grant");
}

/// oidcc-ensure-request-with-valid-pkce-succeeds: a confidential client
/// sending PKCE (S256) and its verifier succeeds.
async fn oidcc_ensure_request_with_valid_pkce_succeeds(backend: Backend) {
    let suite = Suite::start(backend).await;
    let verifier = format!("{}{}", random(), random());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let request = suite
        .request()
        .set("code_challenge", &challenge)
        .set("code_challenge_method", "S256");
    let answer = suite.authorize(&suite.app, &request, Some(PW)).await;
    suite.check_code_answer(&answer, &request);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", answer.code()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    let tokens = suite.token(ClientAuth::Basic, &form).await;
    suite.check_tokens(&tokens);
    suite.id_token(&tokens, request.get("nonce"));
}

/// oidcc-ensure-redirect-uri-in-authorization-request (the Dynamic OP
/// plan's; here with a client registered with two redirect URIs): a
/// request without `redirect_uri` gets an error page, never a redirect.
async fn oidcc_ensure_redirect_uri_in_authorization_request(backend: Backend) {
    let suite = Suite::start(backend).await;
    let uri = |u: &str| idp::domain::RedirectUri::parse(u).unwrap();
    idp::oidc::register_client(
        suite.app.state.store.as_ref(),
        suite.app.state.clock.as_ref(),
        idp::oidc::ClientRegistration {
            id: idp::domain::ClientId::parse(CLIENT2).unwrap(),
            name: "Certification RP 2".into(),
            kind: idp::domain::ClientKind::Confidential,
            redirect_uris: vec![uri(CALLBACK), uri("http://localhost:4000/cb2")],
            post_logout_redirect_uris: vec![],
            first_party: true,
            theme: None,
            grant_types: vec![],
            id_token_alg: idp::domain::IdTokenAlg::RS256,
            require_mfa: false,
            require_pkce: false,
            external_id_claim: None,
        },
    )
    .await
    .unwrap();
    let request = suite
        .request()
        .set("client_id", CLIENT2)
        .without("redirect_uri");
    suite
        .assert_error_page(&suite.url(&request), "not registered")
        .await;
}

// ---------------------------------------------------------------- the Config OP plan

/// Metadata names of OpenID Connect Discovery 1.0 section 3, RFC 8414
/// section 2, RFC 9207, RP-Initiated, Front- and Back-Channel Logout: a
/// member outside these is one the suite warns about.
const METADATA: [&str; 45] = [
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "registration_endpoint",
    "scopes_supported",
    "response_types_supported",
    "response_modes_supported",
    "grant_types_supported",
    "acr_values_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "id_token_encryption_alg_values_supported",
    "id_token_encryption_enc_values_supported",
    "userinfo_signing_alg_values_supported",
    "userinfo_encryption_alg_values_supported",
    "userinfo_encryption_enc_values_supported",
    "request_object_signing_alg_values_supported",
    "request_object_encryption_alg_values_supported",
    "request_object_encryption_enc_values_supported",
    "token_endpoint_auth_methods_supported",
    "token_endpoint_auth_signing_alg_values_supported",
    "display_values_supported",
    "claim_types_supported",
    "claims_supported",
    "service_documentation",
    "claims_locales_supported",
    "ui_locales_supported",
    "claims_parameter_supported",
    "request_parameter_supported",
    "request_uri_parameter_supported",
    "require_request_uri_registration",
    "op_policy_uri",
    "op_tos_uri",
    "revocation_endpoint",
    "revocation_endpoint_auth_methods_supported",
    "introspection_endpoint",
    "introspection_endpoint_auth_methods_supported",
    "code_challenge_methods_supported",
    "authorization_response_iss_parameter_supported",
    "end_session_endpoint",
    "frontchannel_logout_supported",
    "backchannel_logout_supported",
    "prompt_values_supported",
];

/// oidcc-discovery-endpoint-verification (the Config OP plan's one module,
/// with the server checks every Basic module starts with): the document is
/// JSON at the well-known address of its issuer; it lists the code flow,
/// public subjects, RS256, the claims parameter, its claims, grant types,
/// scopes with `openid` and well-formed names, code challenge methods; its
/// endpoints are URLs under the issuer (https outside dev mode: the issuer
/// must be); its JWKS holds valid public keys, each with a distinct `kid`.
async fn oidcc_discovery_endpoint_verification(backend: Backend) {
    let suite = Suite::start(backend).await;
    let response = suite.app.get("/.well-known/openid-configuration").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(json_content(response.headers()));
    let doc: Value = response.json().await.unwrap();
    let issuer = doc["issuer"].as_str().unwrap();
    assert_eq!(
        issuer.trim_end_matches('/'),
        suite.app.base_url,
        "the document's own issuer"
    );
    let issuer_url = url::Url::parse(issuer).unwrap();
    assert!(issuer_url.query().is_none() && issuer_url.fragment().is_none());
    for member in names(&doc) {
        assert!(METADATA.contains(&member), "unexpected metadata {member}");
    }

    let array = |member: &str| -> Vec<&str> {
        doc[member]
            .as_array()
            .unwrap_or_else(|| panic!("{member} is an array"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect()
    };
    assert!(array("response_types_supported").contains(&"code"));
    assert!(array("subject_types_supported").contains(&"public"));
    assert!(array("id_token_signing_alg_values_supported").contains(&"RS256"));
    assert!(!array("grant_types_supported").is_empty());
    assert!(!array("claims_supported").is_empty());
    assert!(!array("code_challenge_methods_supported").is_empty());
    assert_eq!(doc["claims_parameter_supported"], json!(true));
    let scopes = array("scopes_supported");
    assert!(scopes.contains(&"openid"));
    for scope in &scopes {
        // RFC 6749 3.3: NQCHAR, %x21 / %x23-5B / %x5D-7E.
        assert!(
            !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
            "{scope:?}"
        );
    }
    assert!(doc.get("registration_endpoint").is_none(), "not offered");
    for member in names(&doc)
        .into_iter()
        .filter(|m| m.ends_with("_endpoint") || *m == "jwks_uri")
    {
        let url = doc[member].as_str().unwrap();
        assert!(url.starts_with(issuer), "{member} {url}");
        assert_eq!(url::Url::parse(url).unwrap().scheme(), issuer_url.scheme());
    }
    // The scheme is the issuer's, which start-up refuses unless https
    // outside dev mode.
    let mut production = idp::config::Config::clone(&suite.app.state.config);
    production.server.dev_mode = false;
    assert!(
        production.validate().is_err(),
        "an http issuer needs dev mode"
    );
    let mut https = issuer_url.clone();
    https.set_scheme("https").unwrap();
    production.server.issuer = https;
    production
        .validate()
        .expect("the same deployment with an https issuer");

    let raw: Value = server_http()
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = raw["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    let mut kids: Vec<&str> = keys
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    kids.sort_unstable();
    kids.dedup();
    assert_eq!(kids.len(), keys.len(), "distinct kids");
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "{private} published: {key}");
        }
    }
    assert_eq!(
        suite.jwks.keys.len(),
        keys.len(),
        "every key parses as a JWK"
    );
}
