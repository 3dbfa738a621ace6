// rsb-server's dashboard, live: every 2 s, GET /status.json and put its
// texts into the cells whose id is c-NAME-KEY. Text only (textContent),
// never markup. The page works without this script.
(function () {
  "use strict";
  var badge = document.getElementById("live");
  if (!document.querySelector("table.clients") && !document.getElementById("uptime")) {
    return;
  }
  function mark(state, text) {
    if (badge) {
      badge.setAttribute("data-state", state);
      badge.textContent = text;
    }
  }
  function apply(status) {
    var up = document.getElementById("uptime");
    if (up && typeof status.uptime === "string") {
      up.textContent = status.uptime;
    }
    var unseen = false;
    (status.clients || []).forEach(function (c) {
      var row = document.getElementById("client-" + c.name);
      if (!row) {
        unseen = true;
        return;
      }
      row.setAttribute("data-state", c.state);
      row.setAttribute("data-busy", c.busy ? "1" : "0");
      Object.keys(c.cells || {}).forEach(function (key) {
        var cell = document.getElementById("c-" + c.name + "-" + key);
        if (cell) {
          cell.textContent = c.cells[key];
        }
      });
    });
    var note = document.getElementById("live-note");
    if (note) {
      note.hidden = !unseen;
    }
  }
  function poll() {
    fetch("/status.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.json();
      })
      .then(function (status) {
        apply(status);
        mark("live", "live");
      })
      .catch(function () {
        mark("offline", "offline");
      })
      .then(function () {
        setTimeout(poll, 2000);
      });
  }
  setTimeout(poll, 2000);
})();
