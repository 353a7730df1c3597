// Loaded first, as a classic script: collects every error the page meets (uncaught exceptions,
// rejected promises; api.js adds failed requests) in window.__dealhouseErrors, so a person can
// read them in the console and the browser tests can assert there are none.
"use strict";
window.__dealhouseErrors = [];
window.addEventListener("error", function (e) {
  var where = e.filename ? " (" + e.filename + ":" + e.lineno + ")" : "";
  var target = e.target && e.target !== window && (e.target.src || e.target.href);
  window.__dealhouseErrors.push({ kind: target ? "resource" : "error", message: target ? "failed to load " + target : String(e.message) + where });
}, true);
window.addEventListener("unhandledrejection", function (e) {
  var r = e.reason;
  window.__dealhouseErrors.push({ kind: "rejection", message: String(r && r.stack ? r.stack : r) });
});
