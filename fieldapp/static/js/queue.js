/* The offline request queue, shared by the page (app.js) and the service worker.
   A CIT request made with no network waits here, in IndexedDB, under the id the
   device gave it; the server treats that id as an idempotency key, so sending it
   twice (Background Sync and the page racing) still makes one request. */
var fieldappQueue = (function () {
  "use strict";
  var DB_NAME = "fieldapp", STORE = "queued-requests";

  function open() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE, { keyPath: "client_id" }); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function run(mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var req = work(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(req ? req.result : undefined); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function add(entry) { return run("readwrite", function (s) { return s.put(entry); }); }
  // Keep a request's form fields to post to `action` later, under the id the device gave it
  // and bound to the officer whose page it was tapped on (`user_id`; the server refuses it
  // from anyone else). One open request per officer: a second tap while one is queued keeps
  // the first, unless it says it is a different scene. Resolves to the entry kept.
  function enqueue(action, fields) {
    if (!fields.client_id) fields.client_id = self.crypto.randomUUID();
    var entry = { client_id: fields.client_id, user_id: fields.requester_id || "", action: action, fields: fields, queued_at: Date.now() };
    return all().then(function (entries) {
      var first = entries.filter(function (e) { return e.user_id === entry.user_id && !e.fields.different_scene; })[0];
      if (first && !fields.different_scene) return first;
      return add(entry).then(function () { return entry; });
    });
  }
  function all() { return run("readonly", function (s) { return s.getAll(); }); }
  function remove(id) { return run("readwrite", function (s) { return s.delete(id); }); }
  function clear() { return run("readwrite", function (s) { return s.clear(); }); }
  // Requests queued under anyone but `userId` are dropped, never sent: they were tapped
  // by the officer before, on a shared car computer. Resolves to how many were dropped.
  function dropOthers(userId) {
    return all().then(function (entries) {
      var others = entries.filter(function (e) { return e.user_id && e.user_id !== userId; });
      return Promise.all(others.map(function (e) { return remove(e.client_id); })).then(function () { return others.length; });
    });
  }

  // Whether a post to `action` (the server's URL for new requests) landed on the page of
  // the request it made: `action` + "/" + its number.
  function isRequestPage(url, action) {
    var path = new URL(url, self.location.href).pathname;
    return path.indexOf(action + "/") === 0 && /^\d+$/.test(path.slice(action.length + 1));
  }

  // Send every queued request of `userId` (every one when the page does not say who is
  // signed in, as in the worker; the server still refuses another officer's);
  // resolves to [{client_id, url}] for those the server took.
  // `csrfToken`, when the page gives one, replaces the token saved with each entry.
  function sendAll(csrfToken, userId) {
    return all().then(function (entries) {
      if (userId) entries = entries.filter(function (e) { return !e.user_id || e.user_id === userId; });
      return Promise.all(entries.map(function (entry) {
        var fields = Object.assign({}, entry.fields);
        if (csrfToken) fields.csrf_token = csrfToken;
        return fetch(entry.action, {
          method: "POST", credentials: "same-origin", redirect: "follow",
          body: new URLSearchParams(fields),
        }).then(function (response) {
          if (response.ok && isRequestPage(response.url, entry.action)) {
            return remove(entry.client_id).then(function () { return { client_id: entry.client_id, url: response.url }; });
          }
          // 403: made by another officer (or by no one who may ask): never this session's to send.
          if (response.status === 403) return remove(entry.client_id).then(function () { return null; });
          return null; // signed out or offline: it stays queued and the page says so
        }).catch(function () { return null; });
      }));
    }).then(function (results) { return results.filter(Boolean); });
  }

  // One bar of signal can hold a post for minutes: after this long it is queued instead
  // (if the slow one got through after all, the id makes the queued copy a repeat).
  var POST_TIMEOUT_MS = 10000;

  return { enqueue: enqueue, isRequestPage: isRequestPage, all: all, clear: clear, dropOthers: dropOthers, sendAll: sendAll,
           POST_TIMEOUT_MS: POST_TIMEOUT_MS };
})();
