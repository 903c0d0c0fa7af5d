/* fieldapp's one app script: theme, offline worker, checklist marks, recent topics.
   No inline scripts anywhere (the CSP forbids them), so every behaviour hangs off data- attributes. */
(function () {
  "use strict";
  var store = {
    get: function (key, fallback) {
      try { var v = localStorage.getItem("fieldapp." + key); return v === null ? fallback : JSON.parse(v); }
      catch (e) { return fallback; }
    },
    set: function (key, value) {
      try { localStorage.setItem("fieldapp." + key, JSON.stringify(value)); } catch (e) { /* private mode: marks stay in memory only */ }
    },
    remove: function (key) {
      try { localStorage.removeItem("fieldapp." + key); } catch (e) { /* nothing was stored */ }
    }
  };

  // Theme first, before the page paints, so night mode never flashes white.
  var theme = store.get("theme", null);
  if (theme) document.documentElement.setAttribute("data-theme", theme);

  function onReady(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  function setupTheme() {
    var toggle = document.querySelector("[data-theme-toggle]");
    if (!toggle) return;
    toggle.addEventListener("click", function () {
      var current = document.documentElement.getAttribute("data-theme") ||
        (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
      var next = current === "dark" ? "light" : "dark";
      document.documentElement.setAttribute("data-theme", next);
      store.set("theme", next);
    });
  }

  function setupWorker() {
    if (!("serviceWorker" in navigator)) return;
    var body = document.body;
    navigator.serviceWorker.register(body.dataset.sw, { scope: "/" }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (reg) {
      if (!navigator.serviceWorker.controller && reg.active) reg.active.postMessage({ type: "claim" });
      var message = body.dataset.signedIn === "1"
        ? { type: "precache-pages", url: body.dataset.precache }
        : (location.search.indexOf("signed_out=1") >= 0 ? { type: "forget-pages" } : null);
      if (message && reg.active) reg.active.postMessage(message);
    }).catch(function (err) { console.warn("service worker not registered", err); });
  }

  function setupNetStatus() {
    var banner = document.getElementById("net-status");
    if (!banner) return;
    function update() { banner.hidden = navigator.onLine; }
    addEventListener("online", update); addEventListener("offline", update); update();
  }

  // Checklist marks: {slug: {ids: [...], at: ms}} kept on the device only.
  function marks() { return store.get("marks", {}); }
  function setupChecklist() {
    var form = document.querySelector("[data-checklist]");
    if (!form) return;
    var slug = form.dataset.checklist;
    var boxes = form.querySelectorAll("input[name=mark]");
    var counter = form.querySelector("[data-mark-count]");
    function count() {
      var n = form.querySelectorAll("input[name=mark]:checked").length;
      if (counter) counter.textContent = n + " marked";
    }
    var saved = (marks()[slug] || {}).ids || [];
    boxes.forEach(function (box) { box.checked = saved.indexOf(box.value) >= 0; });
    count();
    form.addEventListener("change", function () {
      var all = marks();
      var ids = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).map(function (b) { return b.value; });
      if (ids.length) all[slug] = { ids: ids, at: Date.now() }; else delete all[slug];
      store.set("marks", all);
      count();
    });
    var clear = form.querySelector("[data-clear-marks]");
    if (clear) clear.addEventListener("click", function () {
      boxes.forEach(function (b) { b.checked = false; });
      var all = marks(); delete all[slug]; store.set("marks", all); count();
    });
  }

  function rememberTopic() {
    var article = document.querySelector("[data-topic]");
    if (!article) return;
    var recent = store.get("recent", []).filter(function (r) { return r.slug !== article.dataset.topic; });
    recent.unshift({ slug: article.dataset.topic, title: article.dataset.title, summary: article.dataset.summary || "",
                     kind: article.dataset.kind || "" });
    store.set("recent", recent.slice(0, 5));
  }

  // A copy of a server-rendered <template> whose tokens (__title__…) are replaced by
  // `values`: the markup stays in one template on the server, and only text and
  // attribute values are set here, never parsed as HTML.
  function fillTemplate(template, values) {
    var node = template.content.firstElementChild.cloneNode(true);
    function fill(text) {
      return text.replace(/__(\w+?)__/g, function (token, field) { return values[field] === undefined ? "" : values[field]; });
    }
    [node].concat(Array.prototype.slice.call(node.querySelectorAll("*"))).forEach(function (el) {
      Array.prototype.forEach.call(el.attributes, function (attr) { attr.value = fill(attr.value); });
      el.childNodes.forEach(function (child) { if (child.nodeType === Node.TEXT_NODE) child.nodeValue = fill(child.nodeValue); });
    });
    return node;
  }

  function showRecent() {
    var section = document.querySelector("[data-recent]");
    if (!section) return;
    var list = section.querySelector("[data-recent-list]");
    var template = section.querySelector("template[data-card-link]");
    var recent = store.get("recent", []);
    recent.forEach(function (r) { list.appendChild(fillTemplate(template, r)); });
    section.hidden = recent.length === 0;
  }

  // Shared car computers: checklist marks, recent topics and queued requests belong to
  // the officer signed in when they were made, and nothing of theirs reaches the next.
  // "owner" is who is signed in on this device now; "lastOfficer" who was last, kept
  // through a sign-out so that a different officer signing in is noticed.
  function forgetOfficer() { ["marks", "recent", "owner"].forEach(store.remove); }
  function unsubscribePush() {
    if (!("serviceWorker" in navigator) || !navigator.serviceWorker.controller) return Promise.resolve();
    return navigator.serviceWorker.ready.then(function (reg) { return reg.pushManager && reg.pushManager.getSubscription(); })
      .then(function (sub) { return sub && sub.unsubscribe(); }).catch(function () {});
  }
  function idleLimitMs() { return (parseFloat(document.body.dataset.idleS) || 0) * 1000; }
  function idleExpired() {
    var seen = store.get("seen", null);
    return seen !== null && idleLimitMs() > 0 && Date.now() - seen > idleLimitMs();
  }
  function guardDevice() {
    var body = document.body, me = body.dataset.user || "";
    // The idle lock holds on the device too: a saved page opened after it shows no one's marks.
    if (idleExpired()) forgetOfficer();
    if (body.dataset.signedIn === "0") forgetOfficer(); // signed out, by hand or by the idle lock
    if (me) {
      var last = store.get("lastOfficer", null);
      if (last !== null && last !== me) {
        // Another officer on this device: the last one's alerts and queued requests go too.
        store.remove("alerts");
        unsubscribePush();
        if (window.fieldappQueue && window.indexedDB) fieldappQueue.dropOthers(me).catch(function () {});
      }
      if (store.get("owner", null) !== me) forgetOfficer();
      store.set("owner", me);
      store.set("lastOfficer", me);
    }
    function seen() { store.set("seen", Date.now()); }
    seen();
    ["pointerdown", "keydown"].forEach(function (type) { addEventListener(type, seen, { passive: true }); });
    // Left open past the idle lock: clear the marks, including the ones on screen.
    setInterval(function () {
      if (!idleExpired()) return;
      forgetOfficer();
      document.querySelectorAll("[data-checklist] input[name=mark]").forEach(function (box) { box.checked = false; });
      var recent = document.querySelector("[data-recent]");
      if (recent) recent.hidden = true;
    }, 15000);
  }

  // Sign-out clears the device's marks and recent topics before it goes; Switch officer,
  // for shared car computers, also clears queued requests, alerts and saved pages, at once.
  function setupSignOut() {
    var form = document.querySelector("[data-sign-out]");
    if (!form) return;
    form.addEventListener("submit", function (event) {
      if (form.dataset.cleared === "1") return;
      forgetOfficer();
      if (!(event.submitter && event.submitter.hasAttribute("data-switch-officer"))) return;
      event.preventDefault();
      store.remove("lastOfficer");
      store.remove("alerts");
      var clearing = Promise.all([
        window.fieldappQueue && window.indexedDB ? fieldappQueue.clear().catch(function () {}) : null,
        unsubscribePush(),
        window.caches ? caches.keys().then(function (keys) {
          return Promise.all(keys.filter(function (k) { return k.indexOf("fieldapp-pages-") === 0; }).map(function (k) { return caches.delete(k); }));
        }).catch(function () {}) : null,
      ]);
      // Done at once: the sign-out never waits more than a moment on the device.
      Promise.race([clearing, new Promise(function (resolve) { setTimeout(resolve, 1500); })]).then(function () {
        form.dataset.cleared = "1";
        form.submit();
      });
    });
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "id-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  // Sends the queued requests now; set by setupQueue when this page can send them.
  var flushQueued = null;

  // The one big button: one tap sends the position; if there is none, ask where.
  function setupRequestForm() {
    var form = document.querySelector("[data-request-form]");
    if (!form) return;
    var status = form.querySelector("[data-request-status]");
    var place = form.querySelector("[data-location-text]");
    var placeInput = form.querySelector("#location_text");
    var summary = form.querySelector("[data-marks-summary]");
    var all = marks(), count = 0;
    Object.keys(all).forEach(function (slug) { count += ((all[slug] || {}).ids || []).length; });
    if (summary && count) summary.textContent = count + " checklist mark" + (count === 1 ? "" : "s") + " from this device go with the request.";
    var sending = false;
    form.addEventListener("submit", function (event) {
      if (form.dataset.ready === "1") return; // second pass: let the browser post it
      event.preventDefault();
      if (sending) return;
      sending = true;
      // An offline copy of the page names no one: the request is the signed-in officer's, if any.
      if (!form.elements.requester_id.value) form.elements.requester_id.value = store.get("owner", "");
      var differentScene = form.hasAttribute("data-different-scene");
      if (!differentScene && form.dataset.hasQueued === "1") {
        // One open request per officer: a second tap sends the queued one if it can, never another.
        sending = false;
        status.textContent = "Already queued: your CIT request goes out as soon as there is signal.";
        if (navigator.onLine && flushQueued) flushQueued();
        return;
      }
      form.elements.client_id.value = form.elements.client_id.value || newId();
      form.elements.observations.value = JSON.stringify(marks());
      function submit() { form.dataset.ready = "1"; form.requestSubmit ? form.requestSubmit() : form.submit(); }
      function send() {
        // A page the service worker controls posts natively; the worker queues the post if it fails.
        if (navigator.serviceWorker && navigator.serviceWorker.controller) { submit(); return; }
        // The first page after the worker installed is not controlled yet: post from
        // here, so that a post that fails can still be queued on the device.
        var fields = {};
        new FormData(form).forEach(function (value, key) { fields[key] = value; });
        function queue() { return window.fieldappQueue.enqueue(form.getAttribute("action"), fields); }
        var controller = window.AbortController ? new AbortController() : null;
        var timer = controller && setTimeout(function () { controller.abort(); }, fieldappQueue.POST_TIMEOUT_MS);
        fetch(form.getAttribute("action"), { method: "POST", credentials: "same-origin", body: new URLSearchParams(fields), signal: controller && controller.signal })
          .then(function (response) {
            clearTimeout(timer);
            if (response.ok && fieldappQueue.isRequestPage(response.url, form.getAttribute("action"))) { location.href = response.url; return; }
            // Signed out (the idle lock): keep it, and it goes out as soon as they sign in.
            if (response.status === 401) return queue().then(function () { location.href = document.body.dataset.loginQueued; });
            submit(); // the server's own page says what was wrong; the id makes the repeat harmless
          }, function () {
            clearTimeout(timer);
            return queue().then(function () {
              sending = false;
              status.textContent = "No signal: the request is queued on this device.";
              showQueued();
              if (navigator.serviceWorker) navigator.serviceWorker.ready.then(function (reg) { if (reg.sync) return reg.sync.register("cit-requests"); }).catch(function () {});
            });
          })
          .catch(function () {
            sending = false;
            status.textContent = "The request could not be sent or saved on this device. Call dispatch.";
          });
      }
      function askWhere(reason) {
        sending = false;
        place.hidden = false;
        status.textContent = reason + " Type where you are, then tap the button again.";
        if (placeInput.value.trim()) { send(); return; }
        placeInput.focus();
      }
      if (placeInput && placeInput.value.trim() && !navigator.geolocation) { send(); return; }
      if (!navigator.geolocation) { askWhere("This device cannot share its location."); return; }
      if (!navigator.onLine) status.textContent = "No signal: the request will be queued on this device.";
      status.textContent = "Getting your location…";
      navigator.geolocation.getCurrentPosition(function (pos) {
        form.elements.lat.value = pos.coords.latitude;
        form.elements.lon.value = pos.coords.longitude;
        form.elements.accuracy.value = Math.round(pos.coords.accuracy);
        status.textContent = "Sending…";
        send();
      }, function () {
        if (placeInput.value.trim()) { send(); return; }
        askWhere("Your location is not available.");
      }, { enableHighAccuracy: true, timeout: 8000, maximumAge: 60000 });
    });
  }

  // Live fragments poll only while the page is visible, and refresh at once when it comes back.
  function setupPolling() {
    document.body.addEventListener("htmx:beforeRequest", function (event) {
      var el = event.detail.elt;
      if (document.hidden && el && el.hasAttribute && el.hasAttribute("data-poll")) event.preventDefault();
    });
    document.addEventListener("visibilitychange", function () {
      if (document.hidden || !window.htmx) return;
      document.querySelectorAll("[data-poll]").forEach(function (el) { htmx.trigger(el, "refresh"); });
    });
  }

  // A push about a request (the requester's "CIT officer en route", a board change):
  // the service worker tells each open window, and the live parts refresh now
  // instead of at their next poll. Polling stays as the fallback.
  function setupLiveWake() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (!event.data || event.data.type !== "live-changed" || !window.htmx) return;
      document.querySelectorAll("[data-poll]").forEach(function (el) { htmx.trigger(el, "refresh"); });
    });
  }

  // The server writes the clock time ("03:12:09"), so a polled fragment stays the
  // same, and 304, from one poll to the next; here it becomes the time elapsed,
  // ticking every second.
  function tickTimes() {
    var now = Date.now() / 1000;
    document.querySelectorAll("time[data-since]").forEach(function (el) {
      var s = Math.max(0, Math.floor(now - parseFloat(el.dataset.since)));
      var m = Math.floor(s / 60);
      el.textContent = (m ? m + " min " + (s % 60) + " s" : s + " s") + " ago";
    });
    // The check-in countdown (time left) and a missed check-in (time since the deadline), as m:ss.
    document.querySelectorAll("time[data-until], time[data-overdue]").forEach(function (el) {
      var s = Math.max(0, Math.floor(el.dataset.until ? parseFloat(el.dataset.until) - now : now - parseFloat(el.dataset.overdue)));
      el.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    });
  }

  // Duty: report position while on duty, throttled to about once a minute or 200 m.
  var watchId = null, lastSent = null;
  function metresBetween(a, b) {
    var r = 6371000, toRad = Math.PI / 180;
    var dLat = (b.lat - a.lat) * toRad, dLon = (b.lon - a.lon) * toRad;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) + Math.cos(a.lat * toRad) * Math.cos(b.lat * toRad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * r * Math.asin(Math.min(1, Math.sqrt(h)));
  }
  function csrfHeaders() {
    var headers = { "Content-Type": "application/json" };
    try {
      var h = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      Object.keys(h).forEach(function (k) { headers[k] = h[k]; });
    } catch (e) { /* no token on this page */ }
    return headers;
  }
  function syncDutyWatch() {
    var panel = document.querySelector("[data-duty]");
    var onDuty = panel && panel.dataset.duty === "1";
    if (!onDuty || !navigator.geolocation) {
      if (watchId !== null) { navigator.geolocation.clearWatch(watchId); watchId = null; }
      return;
    }
    if (watchId !== null) return;
    var url = panel.dataset.locationUrl;
    watchId = navigator.geolocation.watchPosition(function (pos) {
      var here = { lat: pos.coords.latitude, lon: pos.coords.longitude, at: Date.now() };
      if (lastSent && here.at - lastSent.at < 60000 && metresBetween(lastSent, here) < 200) return;
      lastSent = here;
      fetch(url, { method: "POST", credentials: "same-origin", headers: csrfHeaders(),
        body: JSON.stringify({ lat: here.lat, lon: here.lon, accuracy: pos.coords.accuracy }) })
        .then(function () {
          var note = document.querySelector("[data-position-status]");
          if (note) note.textContent = "Position sent at " + new Date().toLocaleTimeString() + ".";
        }).catch(function () { lastSent = null; });
    }, function () {
      var note = document.querySelector("[data-position-status]");
      if (note) note.textContent = "Location is off: your district's centre stands in for you.";
    }, { enableHighAccuracy: true, maximumAge: 30000, timeout: 30000 });
  }

  // Alerts: subscribe to Web Push with the server's key, and again on every open,
  // because iOS and Android drop subscriptions without telling anyone.
  function keyBytes(base64url) {
    var s = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(s + "===".slice((s.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function subscribe(key, url) {
    return navigator.serviceWorker.ready.then(function (reg) {
      function fresh() { return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) }); }
      function post(sub) {
        return fetch(url, { method: "POST", credentials: "same-origin", headers: csrfHeaders(), body: JSON.stringify(sub.toJSON()) });
      }
      return reg.pushManager.getSubscription().then(function (existing) {
        return existing || fresh();
      }).then(function (sub) {
        return post(sub).then(function (r) {
          // 409: this browser's subscription belongs to whoever used the device before
          // (a shared car computer). The server never hands it over; a new one is made.
          if (r.status !== 409) return r;
          return sub.unsubscribe().then(fresh).then(post);
        });
      });
    }).then(function (r) {
      if (r.ok) return store.set("alerts", { key: key, url: url });
      return r.json().catch(function () { return {}; }).then(function (body) {
        throw new Error((body.error || "the server refused the subscription (" + r.status + ")").replace(/\.$/, ""));
      });
    });
  }
  function setupAlerts() {
    var button = document.querySelector("[data-enable-alerts]");
    var saved = store.get("alerts", null);
    if (saved && "serviceWorker" in navigator && window.Notification && Notification.permission === "granted") {
      subscribe(saved.key, saved.url).catch(function () { /* shown when they next tap the button */ });
    }
    if (!button) return;
    var status = document.querySelector("[data-alerts-status]");
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      status.textContent = "This browser cannot receive alerts. On iPhone, add fieldapp to the Home Screen first.";
      button.disabled = true;
      return;
    }
    button.addEventListener("click", function () {
      status.textContent = "Asking permission…";
      Notification.requestPermission().then(function (permission) {
        if (permission !== "granted") throw new Error("notifications are blocked for this site");
        return subscribe(button.dataset.key, button.dataset.url);
      }).then(function () {
        status.textContent = "Alerts are on for this device.";
      }).catch(function (err) {
        status.textContent = "Alerts are not on: " + err.message + ".";
      });
    });
  }

  // Requests queued offline: show them, and send them when the network returns
  // (the service worker's Background Sync does the same where the browser has it).
  function mine(entries) {
    var me = document.body.dataset.user || store.get("owner", "");
    return entries.filter(function (e) { return !e.user_id || e.user_id === me; });
  }
  function showQueued() {
    var banner = document.querySelector("[data-queued]");
    return fieldappQueue.all().then(function (entries) {
      entries = mine(entries);
      if (banner) banner.hidden = entries.length === 0;
      // The big button says it is done: a second tap must not look like a second request.
      var form = document.querySelector("[data-request-form]:not([data-different-scene])");
      var button = form && form.querySelector("[data-request-button]");
      if (button) {
        form.dataset.hasQueued = entries.length ? "1" : "";
        button.textContent = entries.length ? "CIT request queued — sends when online" : "Request CIT officer";
        button.classList.toggle("is-queued", entries.length > 0);
      }
      return entries;
    });
  }
  function setupQueue() {
    if (!window.fieldappQueue || !window.indexedDB) return;
    var banner = document.querySelector("[data-queued]");
    // An offline copy of a page names no one and carries no token: it cannot send.
    var isCopy = document.body.dataset.signedIn === "1" && !document.body.dataset.user;
    var afterQueue = new URLSearchParams(location.search).has("after_queue");
    function flush(backOnline) {
      if (!navigator.onLine) return showQueued();
      if (isCopy) {
        return showQueued().then(function (entries) {
          // Signal is back: the live home sends it (or the worker did: ?after_queue leads to it).
          if (backOnline === true && entries.length) location.assign(document.body.dataset.home + "?after_queue=1");
        });
      }
      // This page's token: one queued before a sign-in belongs to a session that has ended.
      // Only this officer's requests; another officer's were dropped when this one signed in.
      return fieldappQueue.sendAll(csrfHeaders()["X-CSRFToken"], document.body.dataset.user).then(function (sent) {
        if (sent.length) location.href = sent[0].url; else showQueued();
      });
    }
    flushQueued = function () { return flush(true); };
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.addEventListener("message", function (event) {
        if (event.data && event.data.type === "request-sent" && banner && (!banner.hidden || afterQueue)) {
          location.href = event.data.url;
        }
      });
    }
    addEventListener("online", function () { flush(true); });
    showQueued().then(flush).catch(function () { /* storage blocked: nothing was queued */ });
  }

  onReady(function () {
    guardDevice(); setupSignOut();
    setupQueue();
    setupTheme(); setupWorker(); setupNetStatus(); setupChecklist(); rememberTopic(); showRecent();
    setupRequestForm(); setupPolling(); setupLiveWake(); setupAlerts(); syncDutyWatch();
    document.body.addEventListener("htmx:afterSwap", function () { syncDutyWatch(); tickTimes(); });
    tickTimes(); setInterval(tickTimes, 1000);
  });
})();
