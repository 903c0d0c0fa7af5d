/* Passkeys and security keys: ask the browser (WebAuthn), send its answer, follow where the server says.
   The server makes the options and checks every answer; this file only carries them. */
(function () {
  "use strict";

  function bytes(b64url) {
    var s = atob(b64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64url.length + 3) % 4));
    return Uint8Array.from(s, function (c) { return c.charCodeAt(0); });
  }

  function b64url(buffer) {
    var s = String.fromCharCode.apply(null, new Uint8Array(buffer));
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // Browsers that cannot parse WebAuthn JSON themselves (before 2024) get the byte fields decoded here.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    json.challenge = bytes(json.challenge);
    json.user.id = bytes(json.user.id);
    (json.excludeCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
    return json;
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    json.challenge = bytes(json.challenge);
    (json.allowCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
    return json;
  }

  function answer(credential) {
    if (credential.toJSON) return credential.toJSON();
    var r = credential.response, out = {};
    ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"].forEach(function (k) {
      if (r[k]) out[k] = b64url(r[k]);
    });
    if (r.getTransports) out.transports = r.getTransports();
    return { id: credential.id, rawId: b64url(credential.rawId), type: credential.type, response: out,
             clientExtensionResults: credential.getClientExtensionResults(),
             authenticatorAttachment: credential.authenticatorAttachment };
  }

  function post(url, form, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-CSRFToken": (form.querySelector("input[name=csrf_token]") || {}).value || "" },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        // A change to how you sign in that needs a fresh proof first: the server says where to give it.
        if (!response.ok && data.redirect) window.location.assign(data.redirect);
        if (!response.ok) throw new Error(data.error || "That did not work. Check your signal and try again.");
        return data;
      });
    });
  }

  function say(form, message) {
    var status = form.querySelector("[data-passkey-status]");
    status.textContent = message;
    status.hidden = !message;
  }

  function run(button, ceremony) {
    var form = button.form;
    say(form, "");
    button.disabled = true;
    post(button.dataset.options, form)
      .then(ceremony)
      .then(function (credential) {
        var name = form.querySelector("input[name=name]");
        return post(button.dataset.finish, form, { credential: answer(credential), name: name ? name.value : "" });
      })
      .then(function (data) { window.location.assign(data.redirect); })
      .catch(function (error) {
        // The person closed the browser's prompt, or the key timed out: say so plainly.
        say(form, error.name === "NotAllowedError" ? "Cancelled, or the key did not answer in time. Try again."
                                                   : error.message);
        button.disabled = false;
      });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-options]");
    if (!button) return;
    if (!window.PublicKeyCredential) {
      say(button.form, "This browser cannot use passkeys. Sign in with your password.");
      return;
    }
    if (button.form.hasAttribute("data-passkey-register")) {
      run(button, function (options) { return navigator.credentials.create({ publicKey: creationOptions(options) }); });
    } else {
      run(button, function (options) { return navigator.credentials.get({ publicKey: requestOptions(options) }); });
    }
  });
})();
