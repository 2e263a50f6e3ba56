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
