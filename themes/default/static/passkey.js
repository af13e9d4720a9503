/*
 * Adds a passkey from /account/passkeys (no inline script under our CSP).
 *
 * The form marked [data-passkey-register] asks the server for creation
 * options (POST /account/passkeys/register/start, JSON), hands them to
 * navigator.credentials.create, and sends the new credential back
 * (POST /account/passkeys/register/finish) with the name typed. Binary
 * fields travel as base64url, as the server's WebAuthn library expects.
 * Errors show in the form's [data-passkey-message]; a server asking to
 * confirm it's you first sends the browser there. A device that already
 * holds one of the account's passkeys is told apart from a cancelled or
 * failed ceremony: trying again there cannot help.
 */
(function () {
  "use strict";

  var START = "/account/passkeys/register/start";
  var FINISH = "/account/passkeys/register/finish";

  function fromB64url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function field(form, name) {
    var input = form.querySelector("[name=" + name + "]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      // A session that ended meanwhile is sent to the sign-in page: that is
      // no answer to this request, so say so instead of reading it as one.
      var type = response.headers.get("Content-Type") || "";
      if (response.redirected || type.indexOf("application/json") !== 0) {
        return { ok: false, json: { error: "You were signed out. Please sign in again, then add the passkey." } };
      }
      return response.json().catch(function () { return {}; }).then(function (json) {
        return { ok: response.ok, json: json };
      });
    });
  }

  function creationOptions(json) {
    var pk = json.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return { publicKey: pk };
  }

  function credentialJson(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toB64url(response.attestationObject),
        clientDataJSON: toB64url(response.clientDataJSON),
        transports: response.getTransports ? response.getTransports() : undefined
      },
      extensions: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {}
    };
  }

  function setUp(form) {
    var message = form.querySelector("[data-passkey-message]");
    var button = form.querySelector("[data-passkey-button]");

    function show(text) {
      message.textContent = text;
      message.hidden = false;
      button.disabled = false;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!window.PublicKeyCredential || !navigator.credentials) {
        show("This browser cannot make passkeys.");
        return;
      }
      message.hidden = true;
      button.disabled = true;
      var base = { csrf_token: field(form, "csrf_token"), client_id: field(form, "client_id") };
      post(START, base).then(function (started) {
        if (!started.ok) {
          if (started.json.reauth) { window.location.assign(started.json.reauth); return null; }
          throw new Error(started.json.error || "The passkey could not be started.");
        }
        return navigator.credentials.create(creationOptions(started.json)).then(function (credential) {
          var body = {
            csrf_token: base.csrf_token,
            client_id: base.client_id,
            name: field(form, "name"),
            credential: credentialJson(credential)
          };
          return post(FINISH, body);
        }, function (error) {
          // The authenticator holds one of the passkeys the server listed
          // (excludeCredentials): trying again on it can never work.
          if (error && error.name === "InvalidStateError") {
            throw new Error("This device already has a passkey for your account, so no new one was made. Add one from another device, or use the one you have.");
          }
          throw new Error("No passkey was made. You can try again.");
        });
      }).then(function (finished) {
        if (!finished) { return; }
        if (!finished.ok) { throw new Error(finished.json.error || "The passkey could not be added."); }
        window.location.assign(finished.json.redirect);
      }).catch(function (error) {
        show(error.message);
      });
    });
  }

  var forms = document.querySelectorAll("form[data-passkey-register]");
  for (var i = 0; i < forms.length; i++) { setUp(forms[i]); }
})();
