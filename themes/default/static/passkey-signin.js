/*
 * Signing in with a passkey (no inline script under our CSP).
 *
 * On the sign-in page ([data-passkey-signin]): the button asks the server
 * for a challenge (POST /login/passkey/start, JSON), hands it to
 * navigator.credentials.get, and sends the answer back
 * (POST /login/passkey/finish); the server says where to go next. Where
 * the browser supports it, the same is started quietly on load with
 * conditional mediation, so the email field's autofill offers the
 * account's passkeys; pressing the button replaces that request.
 *
 * On the second step ([data-passkey-step]): the same with the account's
 * own passkeys (POST /login/otp/passkey/start and …/finish).
 *
 * Binary fields travel as base64url, as the server's WebAuthn library
 * expects. Without a browser that can use passkeys, the section stays
 * hidden and the form is the way in.
 */
(function () {
  "use strict";

  function fromB64url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    if (!buffer) { return undefined; }
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function value(root, name) {
    var input = root.querySelector("[name=" + name + "]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") !== 0) {
        return { ok: false, json: { error: "Something went wrong. Reload the page and try again." } };
      }
      return response.json().catch(function () { return {}; }).then(function (json) {
        return { ok: response.ok, json: json };
      });
    });
  }

  function requestOptions(json) {
    var pk = json.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return pk;
  }

  function assertionJson(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: toB64url(response.authenticatorData),
        clientDataJSON: toB64url(response.clientDataJSON),
        signature: toB64url(response.signature),
        userHandle: toB64url(response.userHandle)
      },
      extensions: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {}
    };
  }

  function setUp(section, fields, start, finish, conditional) {
    var message = section.querySelector("[data-passkey-message]");
    var button = section.querySelector("[data-passkey-signin-button]");
    var pending = null;
    // Starts are sent one after another, so the quiet request and the
    // button never cross on the way.
    var starting = Promise.resolve();

    function show(text) {
      message.textContent = text;
      message.hidden = false;
      button.disabled = false;
    }

    // One ceremony at a time: a new one (the button) ends the quiet one.
    function run(mediation) {
      if (pending) { pending.abort(); }
      var controller = window.AbortController ? new AbortController() : null;
      pending = controller;
      var base = {
        csrf_token: value(fields, "csrf_token"),
        client_id: value(fields, "client_id"),
        req: value(fields, "req")
      };
      var asked = starting.catch(function () {}).then(function () { return post(start, base); });
      starting = asked;
      return asked.then(function (started) {
        if (!started.ok) { throw new Error(started.json.error || "The passkey could not be asked."); }
        var options = { publicKey: requestOptions(started.json) };
        if (mediation) { options.mediation = mediation; }
        if (controller) { options.signal = controller.signal; }
        return navigator.credentials.get(options).then(function (credential) {
          button.disabled = true;
          var body = {
            csrf_token: base.csrf_token,
            client_id: base.client_id,
            req: base.req,
            credential: assertionJson(credential)
          };
          return post(finish, body);
        }, function (error) {
          // Replaced by another request: nothing to say.
          if (controller && controller.signal.aborted) { return null; }
          if (mediation === "conditional") { return null; }
          throw new Error("No passkey was used. You can try again.");
        });
      }).then(function (finished) {
        if (!finished) { return; }
        if (!finished.ok) { throw new Error(finished.json.error || "The passkey could not be accepted."); }
        window.location.assign(finished.json.redirect);
      }).catch(function (error) {
        show(error.message);
      });
    }

    section.hidden = false;
    button.addEventListener("click", function () {
      message.hidden = true;
      button.disabled = true;
      run(null);
    });
    if (conditional && window.PublicKeyCredential.isConditionalMediationAvailable) {
      window.PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available && !pending) { run("conditional"); }
      }).catch(function () {});
    }
  }

  if (!window.PublicKeyCredential || !navigator.credentials) { return; }
  var signin = document.querySelector("[data-passkey-signin]");
  var form = document.querySelector("form[action='/login']");
  if (signin && form) {
    setUp(signin, form, "/login/passkey/start", "/login/passkey/finish", true);
  }
  var step = document.querySelector("[data-passkey-step]");
  var needs = document.querySelector("[data-passkey-needs]");
  if (needs) { needs.hidden = true; }
  if (step) {
    setUp(step, step, "/login/otp/passkey/start", "/login/otp/passkey/finish", false);
  }
})();
