// Headless Chromium cannot subscribe to a real push service here, so this init
// script replaces PushManager.subscribe: a real P-256 key pair from WebCrypto,
// and an endpoint on the test's stand-in push service. The private key is kept
// (in localStorage) only so the test can hand it to the stand-in to decrypt.
(() => {
  const ORIGIN = "__PUSH_ORIGIN__";
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const fromB64 = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  function wrap(saved, options) {
    return {
      endpoint: saved.endpoint,
      expirationTime: null,
      options: options || { userVisibleOnly: true },
      getKey: (name) => fromB64(saved.keys[name]).buffer,
      toJSON: () => ({ endpoint: saved.endpoint, expirationTime: null, keys: saved.keys }),
      unsubscribe: async () => { localStorage.removeItem("__testPush"); return true; },
    };
  }
  PushManager.prototype.subscribe = async function (options) {
    if (!options || !options.applicationServerKey) throw new DOMException("applicationServerKey required", "InvalidAccessError");
    const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
    const saved = {
      endpoint: ORIGIN + "/push/" + b64(crypto.getRandomValues(new Uint8Array(9))),
      keys: { p256dh: b64(await crypto.subtle.exportKey("raw", pair.publicKey)), auth: b64(crypto.getRandomValues(new Uint8Array(16))) },
      jwk: await crypto.subtle.exportKey("jwk", pair.privateKey),
      applicationServerKey: b64(options.applicationServerKey),
    };
    localStorage.setItem("__testPush", JSON.stringify(saved));
    return wrap(saved, options);
  };
  PushManager.prototype.getSubscription = async function () {
    const saved = JSON.parse(localStorage.getItem("__testPush") || "null");
    return saved ? wrap(saved) : null;
  };
})();
