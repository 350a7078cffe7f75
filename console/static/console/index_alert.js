// Shows a banner to editors and admins when the knowledge-base index is not healthy
// (a new index failed to load and the previous one keeps serving, or none is loaded), and when
// writes wait in the action server's spool or were dead-lettered (GET /api/health/spool), and
// when a process of the stack is restarting after a crash or was given up after crashing
// repeatedly (GET /api/health/processes, from the process supervisor).
// Data comes from GET /api/health/index; no inline script (CSP).
(function () {
  "use strict";
  const banner = document.getElementById("index-alert");
  if (!banner) return;

  function show(message) {
    banner.textContent = banner.hidden ? message : banner.textContent + " " + message;
    banner.hidden = false;
  }

  fetch("/api/health/index", { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (resp) { return resp.ok ? resp.json() : null; })
    .then(function (status) {
      if (!status || status.ok) return;
      if (status.last_error && status.serving) {
        show("Knowledge-base index alert: the newest index could not be loaded (" +
             status.last_error + "). The bot keeps answering from version " + status.serving +
             ". Rebuild the index to fix it.");
      } else {
        show("Knowledge-base index alert: " + (status.error || status.last_error || "unknown problem"));
      }
    })
    .catch(function () { /* the console itself is down; nothing to show */ });

  // Database outage and writes waiting in the action server's spool (askagency/spool.py).
  fetch("/api/health/spool", { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (resp) { return resp.ok ? resp.json() : null; })
    .then(function (status) {
      if (status && !status.ok && status.message) show("Database alert: " + status.message);
    })
    .catch(function () { /* nothing to show */ });

  // A process restarting after a crash, or given up (askagency/supervision.py).
  fetch("/api/health/processes", { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (resp) { return resp.ok ? resp.json() : null; })
    .then(function (status) {
      if (status && !status.ok && status.message) show(status.message);
    })
    .catch(function () { /* nothing to show */ });
})();
