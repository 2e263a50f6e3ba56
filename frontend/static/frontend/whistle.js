// Shows whether the board's socket is live; htmx's ws extension reconnects by itself and the
// server re-sends the full state on every connect.
(function () {
  function setStatus(live) {
    var status = document.getElementById("live-status");
    var socket = document.getElementById("board-socket");
    if (!status || !socket) return;
    status.textContent = live ? socket.dataset.live : socket.dataset.reconnecting;
    status.classList.toggle("live", live);
    status.classList.toggle("connecting", !live);
    document.body.dataset.live = live ? "1" : "0";
  }
  document.addEventListener("htmx:wsOpen", function () { setStatus(true); });
  document.addEventListener("htmx:wsClose", function () { setStatus(false); });
  document.addEventListener("htmx:wsError", function () { setStatus(false); });
})();

// Action buttons post JSON to the API with the session's CSRF token; the result arrives over
// the websocket like every other change, so the page shows only what the database holds.
(function () {
  function csrfToken() {
    var match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  function position() {
    return new Promise(function (resolve) {
      if (!navigator.geolocation) return resolve({});
      navigator.geolocation.getCurrentPosition(
        function (p) { resolve({ latitude: p.coords.latitude, longitude: p.coords.longitude }); },
        function () { resolve({}); },
        { timeout: 5000, maximumAge: 60000 }
      );
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-api-post]");
    if (!button) return;
    button.disabled = true;
    var row = button.closest("li");
    var problem = row && row.querySelector(".problem");
    var body = button.hasAttribute("data-with-position") ? position()
      : Promise.resolve(button.dataset.body ? JSON.parse(button.dataset.body) : {});
    body.then(function (payload) {
      return fetch(button.dataset.apiPost, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(payload),
      });
    }).then(function (response) {
      if (response.ok) return;
      return response.json().then(function (data) {
        if (problem) problem.textContent = data.detail || response.statusText;
        button.disabled = false;
      });
    }).catch(function () {
      if (problem) problem.textContent = "⚠";
      button.disabled = false;
    });
  });
})();

// Countdowns to each summoned department's check-in deadline: green, amber in the last five
// minutes, red and flashing once overdue. Recomputed every second from the deadline the server
// rendered, so a re-render or a reconnect never drifts.
(function () {
  var NEAR = 5 * 60 * 1000;
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (item) {
      var remaining = item.querySelector(".remaining");
      if (!remaining) return;
      var left = Date.parse(item.dataset.deadline) - now;
      item.classList.toggle("ok", left > NEAR);
      item.classList.toggle("near", left <= NEAR && left > 0);
      item.classList.toggle("late", left <= 0);
      var seconds = Math.floor(Math.abs(left) / 1000);
      var text = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
      remaining.textContent = left > 0 ? text : remaining.dataset.overdue + " " + text;
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:wsAfterMessage", tick);
})();
