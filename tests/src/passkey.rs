//! A software passkey for the black-box tests: webauthn-rs's own
//! `SoftPasskey` (the authenticator side of the same project as the
//! server's library) answers the creation options a server sends, as a
//! browser's `navigator.credentials.create` would, at the origin given.

use serde_json::Value;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// One authenticator holding the credentials it made.
pub struct SoftAuthenticator {
    soft: SoftPasskey,
    /// The credentials made, newest last: their id and the user handle
    /// the server gave (both base64url), as a discoverable credential
    /// keeps them.
    made: Vec<(String, String)>,
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        Self {
            // `true`: it says the user was verified (no fingerprint to ask for).
            soft: SoftPasskey::new(true),
            made: Vec::new(),
        }
    }
}

impl SoftAuthenticator {
    /// The `PublicKeyCredential` (as the page's script sends it) for the
    /// creation options `options` (as the server sent them) at `origin`.
    ///
    /// SoftPasskey cannot store discoverable credentials and refuses
    /// options that require one; the server asks for one (the tests check
    /// that in the options) but, as WebAuthn lets it, does not check
    /// the answer for it, so the request is dropped here.
    pub fn register(&mut self, origin: &str, options: &Value) -> Value {
        let user_handle = options["publicKey"]["user"]["id"]
            .as_str()
            .expect("a user handle")
            .to_owned();
        let mut options: CreationChallengeResponse =
            serde_json::from_value(options.clone()).expect("creation options");
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.require_resident_key = false;
            selection.resident_key = None;
        }
        let origin = Url::parse(origin).expect("origin");
        let credential = self
            .soft
            .do_registration(origin, options)
            .expect("the soft passkey answers");
        let credential = serde_json::to_value(credential).expect("credential as JSON");
        let id = credential["id"].as_str().expect("credential id").to_owned();
        self.made.push((id, user_handle));
        credential
    }

    /// The credential ids this authenticator made, oldest first.
    pub fn credential_ids(&self) -> Vec<String> {
        self.made.iter().map(|(id, _)| id.clone()).collect()
    }

    /// The `PublicKeyCredential` (an assertion, as the page's script sends
    /// it) for the request options `options` at `origin`.
    ///
    /// A discoverable sign-in lists no credentials: an authenticator then
    /// offers one it holds for the RP id and answers with its user handle.
    /// SoftPasskey only signs with a listed credential and gives no user
    /// handle, so here the newest credential is listed for it and the
    /// handle it was made with is added to the answer (it is not part of
    /// what is signed, as in any authenticator's answer).
    pub fn sign_in(&mut self, origin: &str, options: &Value) -> Value {
        let mut request = options.clone();
        let listed = request["publicKey"]["allowCredentials"]
            .as_array()
            .is_some_and(|l| !l.is_empty());
        let (id, handle) = self.made.last().cloned().expect("a credential was made");
        if !listed {
            request["publicKey"]["allowCredentials"] = serde_json::json!([
                { "type": "public-key", "id": id }
            ]);
        }
        let request: RequestChallengeResponse =
            serde_json::from_value(request).expect("request options");
        let origin = Url::parse(origin).expect("origin");
        let credential = self
            .soft
            .do_authentication(origin, request)
            .expect("the soft passkey answers");
        let mut answer = serde_json::to_value(credential).expect("assertion as JSON");
        let used = answer["id"].as_str().unwrap_or_default().to_owned();
        let handle = self
            .made
            .iter()
            .find(|(made, _)| *made == used)
            .map_or(handle, |(_, h)| h.clone());
        answer["response"]["userHandle"] = Value::String(handle);
        answer
    }
}
