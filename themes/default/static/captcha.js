/*
 * Self-hosted proof-of-work captcha.
 *
 * For every element with [data-captcha] (attributes data-challenge and
 * data-difficulty), find the smallest non-negative integer nonce such that
 * SHA-256(UTF-8 of challenge + ":" + nonce) starts with at least `difficulty`
 * zero bits, write it (decimal) into the form's input[name=captcha_nonce] and
 * enable the submit button(s) again. Work runs in batches so the page stays
 * responsive. No network access, no third party.
 */
(function () {
  "use strict";

  var BATCH = 256; // digests started in parallel per round

  function leadingZeroBits(bytes) {
    var bits = 0;
    for (var i = 0; i < bytes.length; i++) {
      var b = bytes[i];
      if (b === 0) { bits += 8; continue; }
      // Math.clz32 counts zeros in a 32-bit number; a byte has 24 extra.
      return bits + Math.clz32(b) - 24;
    }
    return bits;
  }

  function nextFrame() {
    return new Promise(function (resolve) { setTimeout(resolve, 0); });
  }

  function setState(box, state, text) {
    box.setAttribute("data-state", state);
    var status = box.querySelector("[data-captcha-status]");
    if (status) { status.textContent = text; }
  }

  function submitButtons(form) {
    return form ? form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]") : [];
  }

  async function solve(challenge, difficulty) {
    var encoder = new TextEncoder();
    var prefix = challenge + ":";
    for (var start = 0; ; start += BATCH) {
      var jobs = [];
      for (var n = start; n < start + BATCH; n++) {
        jobs.push(crypto.subtle.digest("SHA-256", encoder.encode(prefix + n)));
      }
      var digests = await Promise.all(jobs);
      // Check in order so the first hit is the smallest nonce.
      for (var i = 0; i < digests.length; i++) {
        if (leadingZeroBits(new Uint8Array(digests[i])) >= difficulty) {
          return start + i;
        }
      }
      await nextFrame();
    }
  }

  function setup(box) {
    var form = box.closest("form");
    var nonceInput = form ? form.querySelector("input[name=captcha_nonce]") : null;
    var challenge = box.getAttribute("data-challenge") || "";
    var difficulty = parseInt(box.getAttribute("data-difficulty"), 10);
    var buttons = submitButtons(form);
    if (!form || !nonceInput || !challenge || !(difficulty >= 0)) { return; }
    box.hidden = false;

    if (!window.crypto || !window.crypto.subtle || !window.TextEncoder) {
      setState(box, "failed",
        "Your browser cannot run the security check (it needs a secure https connection and an up-to-date browser). Please try another browser.");
      return;
    }

    var solved = false;
    buttons.forEach(function (b) { b.disabled = true; });
    // Enter in a text field must not submit before the puzzle is solved.
    form.addEventListener("submit", function (event) {
      if (!solved) { event.preventDefault(); }
    });

    setState(box, "working", "Checking your browser…");
    solve(challenge, difficulty).then(function (nonce) {
      nonceInput.value = String(nonce);
      solved = true;
      buttons.forEach(function (b) { b.disabled = false; });
      setState(box, "done", "Checking your browser… done");
    }, function () {
      setState(box, "failed", "The security check could not run in this browser. Please reload the page or try another browser.");
    });
  }

  function init() {
    document.querySelectorAll("[data-captcha]").forEach(setup);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
