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
    }
  };
  window.fieldapp = { store: store };

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
  window.fieldapp.marks = marks;
  window.fieldapp.clearAllMarks = function () { store.set("marks", {}); };

  function rememberTopic() {
    var article = document.querySelector("[data-topic]");
    if (!article) return;
    var recent = store.get("recent", []).filter(function (r) { return r.slug !== article.dataset.topic; });
    recent.unshift({ slug: article.dataset.topic, title: article.dataset.title, url: location.pathname });
    store.set("recent", recent.slice(0, 5));
  }

  function showRecent() {
    var section = document.querySelector("[data-recent]");
    if (!section) return;
    var list = section.querySelector("[data-recent-list]");
    var recent = store.get("recent", []);
    recent.forEach(function (r) {
      var li = document.createElement("li"), a = document.createElement("a"), strong = document.createElement("strong");
      a.className = "card-link"; a.href = r.url; strong.textContent = r.title;
      a.appendChild(strong); li.appendChild(a); list.appendChild(li);
    });
    section.hidden = recent.length === 0;
  }

  onReady(function () {
    setupTheme(); setupWorker(); setupNetStatus(); setupChecklist(); rememberTopic(); showRecent();
  });
})();
