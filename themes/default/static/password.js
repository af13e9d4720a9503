/*
 * Progressive enhancement for password fields. Forms work without it.
 *
 *   input[data-password-toggle]     adds a "Show"/"Hide" button
 *   input[data-password-meter]      adds a live strength meter with tips
 *   input[data-password-generator]  adds "Generate a strong password"; the
 *                                   attribute value is the id of the
 *                                   confirmation field to fill as well
 *
 * The meter is only a hint: the server enforces the real policy.
 */
(function () {
  "use strict";

  // ---------- Strength heuristic ----------

  var COMMON = [
    "password", "passw0rd", "123456", "1234567", "12345678", "123456789", "1234567890",
    "qwerty", "qwertz", "azerty", "abc123", "111111", "123123", "letmein", "welcome",
    "admin", "administrator", "login", "iloveyou", "monkey", "dragon", "football",
    "baseball", "soccer", "hockey", "sunshine", "princess", "master", "hello",
    "freedom", "whatever", "trustno1", "shadow", "superman", "batman", "starwars",
    "michael", "jennifer", "charlie", "secret", "summer", "winter", "spring", "autumn",
    "changeme", "default", "guest", "access", "flower", "computer", "internet",
    "support", "service", "account", "portal", "hosting", "customer", "telecom",
    "january", "february", "august", "october", "december", "love", "money", "test"
  ];

  var SEQUENCES = "abcdefghijklmnopqrstuvwxyz01234567890qwertyuiopasdfghjklzxcvbnm";

  function hasSequence(lower) {
    for (var i = 0; i + 3 <= lower.length; i++) {
      var chunk = lower.slice(i, i + 3);
      if (SEQUENCES.indexOf(chunk) !== -1) { return true; }
      var reversed = chunk.split("").reverse().join("");
      if (SEQUENCES.indexOf(reversed) !== -1) { return true; }
    }
    return false;
  }

  // Undo common substitutions so "P@ssw0rd" is recognised as "password".
  function unleet(s) {
    return s.replace(/[@4]/g, "a").replace(/3/g, "e").replace(/[1!|]/g, "i")
      .replace(/0/g, "o").replace(/[$5]/g, "s").replace(/7/g, "t");
  }

  function personalWords(form) {
    var words = [];
    if (!form) { return words; }
    ["name", "email"].forEach(function (n) {
      var input = form.querySelector("input[name=" + n + "]");
      if (!input || !input.value) { return; }
      input.value.toLowerCase().split(/[^a-z0-9]+/).forEach(function (w) {
        if (w.length >= 3) { words.push(w); }
      });
    });
    return words;
  }

  function assess(pw, form) {
    var tips = [];
    if (!pw) { return { level: 0, label: "", tips: tips }; }
    var lower = pw.toLowerCase();
    var plain = unleet(lower);
    var classes = 0;
    if (/[a-z]/.test(pw)) { classes++; }
    if (/[A-Z]/.test(pw)) { classes++; }
    if (/[0-9]/.test(pw)) { classes++; }
    if (/[^A-Za-z0-9]/.test(pw)) { classes++; }

    var score = 0;
    if (pw.length >= 8) { score++; }
    if (pw.length >= 12) { score++; }
    if (pw.length >= 16) { score++; }
    if (classes >= 3) { score++; }
    if (classes === 4 && pw.length >= 10) { score++; }

    var common = COMMON.some(function (w) {
      return w.length >= 4 ? (lower.indexOf(w) !== -1 || plain.indexOf(w) !== -1) : lower === w;
    });
    var personal = personalWords(form).some(function (w) {
      return lower.indexOf(w) !== -1 || plain.indexOf(w) !== -1;
    });
    var repeated = /(.)\1\1/.test(pw);
    var sequence = hasSequence(lower);
    var unique = new Set(pw.split("")).size;

    if (common) { score -= 2; tips.push("Avoid common words and passwords"); }
    if (personal) { score -= 2; tips.push("Don't use your name or email address"); }
    if (repeated) { score -= 1; tips.push("Avoid repeating the same character"); }
    if (sequence) { score -= 1; tips.push("Avoid sequences like abc or 123"); }
    if (unique < 5) { score -= 1; }

    if (pw.length < 12) { tips.push("Use 12 characters or more"); }
    if (!/[a-z]/.test(pw) || !/[A-Z]/.test(pw)) { tips.push("Mix upper and lower case letters"); }
    if (!/[0-9]/.test(pw)) { tips.push("Add a number"); }
    if (!/[^A-Za-z0-9]/.test(pw)) { tips.push("Add a symbol such as # $ % &"); }

    var level;
    if (pw.length < 8 || score <= 1) { level = 1; }
    else if (score <= 2) { level = 2; }
    else if (score <= 4) { level = 3; }
    else { level = 4; }
    var labels = ["", "Weak", "Fair", "Good", "Strong"];
    return { level: level, label: labels[level], tips: tips.slice(0, 3) };
  }

  // ---------- Helpers ----------

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) { node.textContent = text; }
    return node;
  }

  function fieldOf(input) {
    return input.closest(".field") || input.parentNode;
  }

  function addDescribedBy(input, id) {
    var current = (input.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    if (current.indexOf(id) === -1) { current.push(id); }
    input.setAttribute("aria-describedby", current.join(" "));
  }

  // ---------- Show / hide ----------

  var toggles = [];

  function setVisible(input, visible) {
    input.type = visible ? "text" : "password";
    toggles.forEach(function (t) {
      if (t.input === input) {
        t.button.textContent = visible ? "Hide" : "Show";
        t.button.setAttribute("aria-label", (visible ? "Hide " : "Show ") + t.name);
      }
    });
  }

  function setupToggle(input) {
    var label = document.querySelector("label[for='" + input.id + "']");
    var name = label ? label.textContent.trim().toLowerCase() : "password";
    var button = el("button", {
      type: "button",
      "class": "button button--secondary pw-toggle",
      "aria-controls": input.id,
      "aria-label": "Show " + name
    }, "Show");
    button.addEventListener("click", function () {
      setVisible(input, input.type === "password");
    });
    input.insertAdjacentElement("afterend", button);
    toggles.push({ input: input, button: button, name: name });
  }

  // ---------- Strength meter ----------

  function setupMeter(input) {
    var id = input.id + "-strength";
    var meter = el("div", { "class": "pw-meter", id: id, "data-level": "0" });
    var bar = el("div", { "class": "pw-meter-bar", "aria-hidden": "true" });
    for (var i = 0; i < 4; i++) { bar.appendChild(el("span")); }
    var live = el("p", { "class": "pw-meter-text", "aria-live": "polite" });
    var label = el("span", { "class": "pw-meter-label" });
    live.appendChild(label);
    var hints = el("ul", { "class": "pw-meter-hints" });
    meter.appendChild(bar);
    meter.appendChild(live);
    meter.appendChild(hints);
    fieldOf(input).appendChild(meter);
    addDescribedBy(input, id);

    var lastLevel = -1;
    var lastTips = "";
    function update() {
      var result = assess(input.value, input.form);
      meter.setAttribute("data-level", String(result.level));
      // Only touch the live region when something changes, to keep screen readers calm.
      if (result.level !== lastLevel) {
        label.textContent = result.level ? "Password strength: " + result.label : "";
        lastLevel = result.level;
      }
      var tipText = result.tips.join("|");
      if (tipText !== lastTips) {
        hints.textContent = "";
        result.tips.forEach(function (t) { hints.appendChild(el("li", {}, t)); });
        lastTips = tipText;
      }
    }
    input.addEventListener("input", update);
    update();
  }

  // ---------- Generator ----------

  var UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ";
  var LOWER = "abcdefghijkmnopqrstuvwxyz";
  var DIGITS = "23456789";
  var SYMBOLS = "!#$%&*+-=?@^_~";
  var LENGTH = 16;

  // Unbiased random integer in [0, max) from crypto.getRandomValues.
  function randomInt(max) {
    var buf = new Uint32Array(1);
    var limit = Math.floor(0x100000000 / max) * max;
    do { crypto.getRandomValues(buf); } while (buf[0] >= limit);
    return buf[0] % max;
  }

  function pick(chars) { return chars.charAt(randomInt(chars.length)); }

  function generate() {
    var all = UPPER + LOWER + DIGITS + SYMBOLS;
    var chars = [pick(UPPER), pick(LOWER), pick(DIGITS), pick(SYMBOLS)];
    while (chars.length < LENGTH) { chars.push(pick(all)); }
    for (var i = chars.length - 1; i > 0; i--) { // Fisher-Yates
      var j = randomInt(i + 1);
      var tmp = chars[i]; chars[i] = chars[j]; chars[j] = tmp;
    }
    return chars.join("");
  }

  function setupGenerator(input) {
    if (!window.crypto || !crypto.getRandomValues) { return; }
    var confirmId = input.getAttribute("data-password-generator");
    var confirm = confirmId ? document.getElementById(confirmId) : null;
    var wrap = el("p", { "class": "pw-generator" });
    var button = el("button", { type: "button", "class": "link-button" }, "Generate a strong password");
    wrap.appendChild(button);
    var note = el("div", { "class": "pw-generated", "aria-live": "polite", hidden: "" });
    fieldOf(input).appendChild(wrap);
    fieldOf(input).appendChild(note);

    button.addEventListener("click", function () {
      // About 1 draw in 50 holds a sequence ("abc", "987"), a repeated character
      // or a common word, which the meter marks down to "Good": draw again, so
      // a password offered as strong is always rated Strong.
      var pw = generate();
      for (var tries = 0; tries < 50 && assess(pw, input.form).level < 4; tries++) {
        pw = generate();
      }
      [input, confirm].forEach(function (field) {
        if (!field) { return; }
        field.value = pw;
        setVisible(field, true);
        field.dispatchEvent(new Event("input", { bubbles: true }));
      });
      note.textContent = "";
      note.appendChild(el("p", {}, confirm
        ? "A strong 16-character password is now in both boxes, shown as plain text so you can copy it. Save it in your password manager."
        : "A strong 16-character password is now in the box, shown as plain text so you can copy it. Save it in your password manager."));
      note.hidden = false;
      input.focus();
      input.select();
    });
  }

  function init() {
    document.querySelectorAll("input[data-password-toggle]").forEach(setupToggle);
    document.querySelectorAll("input[data-password-meter]").forEach(setupMeter);
    document.querySelectorAll("input[data-password-generator]").forEach(setupGenerator);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
