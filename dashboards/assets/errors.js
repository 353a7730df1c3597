// @ts-check
// Loaded first, as a classic script: collects every error the page meets (uncaught exceptions,
// rejected promises; client.js adds failed requests) in window.__dealhouseErrors, so a person can
// read them in the console and the browser tests can assert there are none.
"use strict";
(function () {
  var w = /** @type {any} */ (window);
  w.__dealhouseErrors = [];
  window.addEventListener("error", function (e) {
    var where = e.filename ? " (" + e.filename + ":" + e.lineno + ")" : "";
    var t = /** @type {any} */ (e.target);
    var target = t && t !== window && (t.src || t.href);
    w.__dealhouseErrors.push({ kind: target ? "resource" : "error", message: target ? "failed to load " + target : String(e.message) + where });
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    var r = e.reason;
    w.__dealhouseErrors.push({ kind: "rejection", message: String(r && r.stack ? r.stack : r) });
  });
})();
