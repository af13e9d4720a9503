//! A software passkey for the black-box tests: webauthn-rs's own
//! `SoftPasskey` (the authenticator side of the same project as the
//! server's library) answers the creation options a server sends, as a
//! browser's `navigator.credentials.create` would, at the origin given.

use serde_json::Value;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// One authenticator holding the credentials it made.
pub struct SoftAuthenticator(SoftPasskey);

impl Default for SoftAuthenticator {
    fn default() -> Self {
        // `true`: it says the user was verified (no fingerprint to ask for).
        Self(SoftPasskey::new(true))
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
        let mut options: CreationChallengeResponse =
            serde_json::from_value(options.clone()).expect("creation options");
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.require_resident_key = false;
            selection.resident_key = None;
        }
        let origin = Url::parse(origin).expect("origin");
        let credential = self
            .0
            .do_registration(origin, options)
            .expect("the soft passkey answers");
        serde_json::to_value(credential).expect("credential as JSON")
    }
}
