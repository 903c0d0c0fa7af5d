/* The Duty page's readiness check: what only this browser can tell about whether an alert will reach it. */
(function () {
  "use strict";
  var list = document.querySelector("[data-readiness]");
  if (!list) return;

  function show(name, ok, text) {
    var item = list.querySelector('[data-check="' + name + '"]');
    if (!item) return;
    item.hidden = false;
    item.classList.toggle("check-ok", ok);
    item.classList.toggle("check-bad", !ok);
    item.querySelector("strong").textContent = text;
  }

  // The page lists each of this user's devices by a hash of its push endpoint.
  function lastConfirmed(endpoint) {
    var devices = JSON.parse(list.querySelector('[data-check="device-last"]').dataset.devices || "{}");
    return crypto.subtle.digest("SHA-256", new TextEncoder().encode(endpoint)).then(function (digest) {
      var hex = Array.from(new Uint8Array(digest)).map(function (b) { return b.toString(16).padStart(2, "0"); }).join("");
      var ago = devices[hex];
      show("device-last", !!ago, ago ? ago + " ago" : "never: send a test alert");
    });
  }

  var isIPhone = /iPhone|iPad|iPod/.test(navigator.userAgent);
  if (isIPhone) {
    var standalone = window.navigator.standalone === true || window.matchMedia("(display-mode: standalone)").matches;
    show("home-screen", standalone, standalone ? "yes" : "no");
    list.querySelector("[data-home-screen-steps]").hidden = standalone;
  }

  if (!("Notification" in window) || !("serviceWorker" in navigator)) {
    show("permission", false, "this browser cannot show alerts");
    show("worker", false, "not supported");
    show("subscribed", false, "not supported");
    return;
  }
  var permission = Notification.permission;
  show("permission", permission === "granted",
       permission === "granted" ? "yes" : permission === "denied" ? "no: allow notifications in the browser's settings" : "not yet: tap Enable alerts");
  navigator.serviceWorker.getRegistration().then(function (reg) {
    var active = !!(reg && reg.active);
    show("worker", active, active ? "yes" : "no: reload the page once");
    if (!reg) { show("subscribed", false, "no: tap Enable alerts"); return; }
    return reg.pushManager.getSubscription().then(function (sub) {
      show("subscribed", !!sub, sub ? "yes" : "no: tap Enable alerts");
      if (!sub) { show("device-last", false, "never: tap Enable alerts"); return; }
      return lastConfirmed(sub.endpoint);
    });
  }).catch(function () { show("worker", false, "no"); });
})();
