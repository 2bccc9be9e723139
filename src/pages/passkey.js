// Passkey ceremonies for the gateway's own pages: the one script they carry, allowed by its
// hash in the Content-Security-Policy. Buttons marked data-passkey="register|login|second"
// start a ceremony with the API, hand it to the browser, and finish it; everything else on the
// pages works without this script.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) return;
  var b64 = {
    decode: function (s) {
      s = s.replace(/-/g, "+").replace(/_/g, "/");
      while (s.length % 4) s += "=";
      var bin = atob(s), out = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
      return out.buffer;
    },
    encode: function (buf) {
      var bytes = new Uint8Array(buf), bin = "";
      for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
      return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    }
  };
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j.message || "the passkey was not accepted");
        return j.data;
      });
    });
  }
  function creation(pk) {
    pk.challenge = b64.decode(pk.challenge);
    pk.user.id = b64.decode(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64.decode(c.id); });
    return pk;
  }
  function request(pk) {
    pk.challenge = b64.decode(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64.decode(c.id); });
    return pk;
  }
  function created(c) {
    return {
      id: c.id, rawId: b64.encode(c.rawId), type: c.type,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: {
        clientDataJSON: b64.encode(c.response.clientDataJSON),
        attestationObject: b64.encode(c.response.attestationObject),
        transports: c.response.getTransports ? c.response.getTransports() : []
      }
    };
  }
  function asserted(c) {
    return {
      id: c.id, rawId: b64.encode(c.rawId), type: c.type,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: {
        clientDataJSON: b64.encode(c.response.clientDataJSON),
        authenticatorData: b64.encode(c.response.authenticatorData),
        signature: b64.encode(c.response.signature),
        userHandle: c.response.userHandle ? b64.encode(c.response.userHandle) : null
      }
    };
  }
  function run(button) {
    var kind = button.getAttribute("data-passkey");
    var base = button.getAttribute("data-base");
    var status = document.getElementById(button.getAttribute("data-status"));
    var say = function (text) { if (status) status.textContent = text; };
    var paths = {
      register: ["/passkeys/register/start", "/passkeys/register/finish"],
      login: ["/passkeys/login/start", "/passkeys/login/finish"],
      second: ["/2fa/passkey/start", "/2fa/passkey/finish"]
    }[kind];
    if (!paths) return;
    say("");
    post(base + paths[0]).then(function (start) {
      var ceremony = start.ceremony;
      var ask = kind === "register"
        ? navigator.credentials.create({ publicKey: creation(start.publicKey) }).then(created)
        : navigator.credentials.get({ publicKey: request(start.publicKey) }).then(asserted);
      return ask.then(function (credential) {
        var body = { ceremony: ceremony, credential: credential };
        var name = document.getElementById(button.getAttribute("data-name") || "");
        if (name) body.name = name.value;
        return post(base + paths[1], body);
      });
    }).then(function () {
      window.location.assign(button.getAttribute("data-next"));
    }).catch(function (e) {
      say(e && e.name === "NotAllowedError" ? "The passkey was not used." : (e.message || String(e)));
    });
  }
  document.querySelectorAll("[data-passkey]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function (event) { event.preventDefault(); run(button); });
  });
  document.querySelectorAll("[data-passkey-only]").forEach(function (e) { e.hidden = false; });
})();
