// Shared by the pages: the CSRF token for API calls, and photos shrunk on the phone before
// they travel (a village's mobile signal should not carry 8 MB per picture).
var Whistle = (function () {
  var MAX_SIDE = 1600;
  function csrf() {
    return decodeURIComponent((document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "");
  }
  function shrinkPhoto(file) {
    return createImageBitmap(file).then(function (bitmap) {
      var ratio = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * ratio);
      canvas.height = Math.round(bitmap.height * ratio);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return canvas.toDataURL("image/jpeg", 0.8);
    });
  }
  function failed(response) {
    return response.json().then(function (d) { throw new Error(d.detail || response.statusText); },
      function () { throw new Error(response.statusText); });
  }
  // A shrunk photo (data URL) → [its address on the server]; no photo → [].
  function uploadPhoto(dataUrl) {
    if (!dataUrl) return Promise.resolve([]);
    return fetch(dataUrl).then(function (r) { return r.blob(); }).then(function (blob) {
      var body = new FormData();
      body.append("file", blob, "photo.jpg");
      return fetch("/api/v1/photos", { method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": csrf() }, body: body });
    }).then(function (response) {
      if (!response.ok) return failed(response);
      return response.json().then(function (photo) { return [photo.url]; });
    });
  }
  function postJson(url, payload) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(payload),
    }).then(function (response) { return response.ok ? response : failed(response); });
  }
  // Two short tones, unless muted on the board (the choice is kept for the browser). One audio
  // context for the page: each new one holds an audio thread.
  var audio = null;
  function beep() {
    if (localStorage.getItem("whistle-muted") === "1") return;
    try {
      var context = audio || (audio = new (window.AudioContext || window.webkitAudioContext)());
      [0, 0.35].forEach(function (offset) {
        var tone = context.createOscillator(), gain = context.createGain();
        tone.frequency.value = 880; tone.connect(gain); gain.connect(context.destination);
        gain.gain.setValueAtTime(0.2, context.currentTime + offset);
        tone.start(context.currentTime + offset); tone.stop(context.currentTime + offset + 0.2);
      });
    } catch (e) { /* no audio device: what is on the screen still shows */ }
  }
  return { csrf: csrf, shrinkPhoto: shrinkPhoto, uploadPhoto: uploadPhoto, postJson: postJson, beep: beep };
})();

// Shows whether the board's socket is live; htmx's ws extension reconnects by itself and the
// server re-sends the full state on every connect.
(function () {
  function setStatus(live) {
    var status = document.getElementById("live-status");
    var socket = document.getElementById("board-socket") || document.getElementById("district-socket");
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
    var rowId = row && row.id;
    // The row may be redrawn by a push while the request is out: the answer goes in the row
    // that is there when it comes back.
    function problemNow() {
      var current = (rowId && document.getElementById(rowId)) || row;
      return current && current.querySelector(".problem");
    }
    var body;
    if (button.dataset.reasonPrompt) {
      var reason = window.prompt(button.dataset.reasonPrompt);
      if (!reason) { button.disabled = false; return; }
      body = Promise.resolve({ reason: reason });
    } else if (button.dataset.numberPrompt) {
      // e.g. the alert to merge into: {"into": 42}
      var answer = (window.prompt(button.dataset.numberPrompt) || "").replace(/^\s*#/, "").trim();
      if (!/^\d+$/.test(answer)) { button.disabled = false; return; }
      var numbered = {};
      numbered[button.dataset.numberField] = Number(answer);
      body = Promise.resolve(numbered);
    } else if (button.hasAttribute("data-with-position")) {
      body = position();
    } else {
      body = Promise.resolve(button.dataset.body ? JSON.parse(button.dataset.body) : {});
    }
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
        var problem = problemNow();
        if (problem) problem.textContent = data.detail || response.statusText;
        button.disabled = false;
      });
    }).catch(function () {
      var problem = problemNow();
      if (problem) problem.textContent = "⚠";
      button.disabled = false;
    });
  });
})();

// Countdowns to each summoned department's check-in deadline: green, amber in the last five
// minutes, red and flashing once overdue. Recomputed every second from the deadline the server
// rendered, so a re-render or a reconnect never drifts. A replay sets window.whistleClock to
// its own moment, so the same countdowns show the time left as it was then.
(function () {
  var NEAR = 5 * 60 * 1000;
  function tick() {
    var now = window.whistleClock ? window.whistleClock() : Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (item) {
      var remaining = item.querySelector(".remaining");
      if (!remaining) return;
      var left = Date.parse(item.dataset.deadline) - now;
      item.classList.toggle("ok", left > NEAR);
      item.classList.toggle("near", left <= NEAR && left > 0);
      item.classList.toggle("late", left <= 0);
      var seconds = Math.floor(Math.abs(left) / 1000);
      var two = function (n) { return String(n).padStart(2, "0"); };
      var hours = Math.floor(seconds / 3600), minutes = Math.floor(seconds / 60) % 60;
      // Finishing deadlines run for hours or days: 2d 03:15, 3:59:58, else 29:58.
      var text = hours >= 24 ? Math.floor(hours / 24) + "d " + two(hours % 24) + ":" + two(minutes)
        : hours ? hours + ":" + two(minutes) + ":" + two(seconds % 60)
        : minutes + ":" + two(seconds % 60);
      remaining.textContent = left > 0 ? text : remaining.dataset.overdue + " " + text;
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:wsAfterMessage", tick);
  document.addEventListener("whistle:clock", tick);
})();


// Paged lists (the alert queue, a console's summons): "N more — show more" asks for the page
// after the last row shown (its data-cursor). A row may already be there (a push put it there
// first): the copy further down goes. The count of what is left follows every push: the open
// count the server pushes, less the rows shown.
(function () {
  function recount() {
    document.querySelectorAll("ol[data-paged]").forEach(function (list) {
      var count = document.querySelector(list.dataset.count);
      var more = document.querySelector('[data-page-after="#' + list.id + '"]');
      if (!count || !more) return;
      var left = Number(count.textContent) - list.querySelectorAll(":scope > li[data-cursor]").length;
      more.hidden = !(left > 0);
      var shown = more.querySelector(".more-count");
      if (shown) shown.textContent = String(Math.max(left, 0));
    });
  }
  document.addEventListener("htmx:configRequest", function (event) {
    var list = event.detail.elt.dataset && event.detail.elt.dataset.pageAfter;
    if (!list) return;
    var shown = document.querySelectorAll(list + " > li[data-cursor]");
    if (shown.length) event.detail.parameters.after = shown[shown.length - 1].dataset.cursor;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var list = event.detail.target;
    if (!list.matches || !list.matches("ol[data-paged]")) return;
    var ids = new Set();
    Array.from(list.querySelectorAll(":scope > li[id]")).forEach(function (row) {
      if (ids.has(row.id)) row.remove(); else ids.add(row.id);
    });
    list.dataset.shown = String(list.querySelectorAll(":scope > li[data-cursor]").length);
    recount();
  });
  // After the other handlers of the frame (the queue trims its rows on the same event).
  document.addEventListener("htmx:wsAfterMessage", function () { setTimeout(recount, 0); });
})();

// The board at a glance and by keyboard: ↑/↓ (or J/K) choose an alert, A acknowledges, I opens
// an incident, D dismisses. A new critical alert sounds (unless muted) and flashes the screen.
(function () {
  var queue = function () { return document.getElementById("alert-queue"); };
  function rows() { var q = queue(); return q ? Array.from(q.querySelectorAll("li.alert")) : []; }
  // The choice is kept by alert id: a push may replace the row, or the whole queue in a burst,
  // and the officer's selection must survive it.
  var selectedId = null;
  function selected() { return selectedId && document.getElementById(selectedId); }
  function select(row) {
    selectedId = row ? row.id : null;
    rows().forEach(function (r) { r.classList.toggle("selected", r === row); });
    if (row) row.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("htmx:wsAfterMessage", function () {
    var row = selected();
    if (row && !row.classList.contains("selected")) row.classList.add("selected");
  });
  // The mouse chooses too: a click on a row (or Tab onto it) makes it the one the keys act on.
  document.addEventListener("focusin", function (event) {
    var row = event.target.closest && event.target.closest("#alert-queue li.alert");
    if (row) select(row);
  });
  document.addEventListener("keydown", function (event) {
    if (!queue() || event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey) return;
    var key = event.key.toLowerCase();
    var all = rows(), current = selected(), index = all.indexOf(current);
    if (key === "arrowdown" || key === "j") { select(all[Math.min(index + 1, all.length - 1)] || all[0]); event.preventDefault(); }
    else if (key === "arrowup" || key === "k") { select(all[Math.max(index - 1, 0)]); event.preventDefault(); }
    else if (current) {
      var button = current.querySelector('[data-key="' + key + '"]');
      if (button) { button.click(); event.preventDefault(); }
    }
  });

  var seen = new Set(rows().map(function (r) { return r.id; }));
  var muted = localStorage.getItem("whistle-muted") === "1";
  // Pushes only ever prepend: the queue keeps as many rows as the officer chose to see (the
  // first page, plus each page shown with "show more"); the rest stays reachable that way.
  document.addEventListener("htmx:wsAfterMessage", function () {
    var q = queue();
    if (q) rows().slice(Number(q.dataset.shown || q.dataset.pageSize || 50)).forEach(function (r) { r.remove(); });
    var fresh = rows().filter(function (r) { return !seen.has(r.id); });
    fresh.forEach(function (r) { seen.add(r.id); });
    if (fresh.some(function (r) { return r.dataset.severity === "critical"; })) {
      document.body.classList.remove("critical-flash");
      void document.body.offsetWidth;
      document.body.classList.add("critical-flash");
      document.body.dataset.lastCritical = String(Date.now());
      Whistle.beep();
    }
  });
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("#mute-toggle");
    if (!toggle) return;
    muted = !muted;
    localStorage.setItem("whistle-muted", muted ? "1" : "0");
    toggle.setAttribute("aria-pressed", muted ? "true" : "false");
  });
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("mute-toggle");
    if (toggle) toggle.setAttribute("aria-pressed", muted ? "true" : "false");
  });
})();

// The grid officer's report: sent as JSON; if sending fails (no signal in the village) the
// draft, photo included, stays on the phone and is filled in again next time. The photo is
// shrunk on the phone first: a village's mobile signal should not carry 8 MB per report.
(function () {
  var form = document.getElementById("report-form");
  if (!form) return;
  var key = form.dataset.draftKey;
  var fields = ["category", "description", "grid", "latitude", "longitude", "photo"];
  var preview = document.getElementById("photo-preview");
  var picker = document.getElementById("grid-picker");
  function showPhoto() {
    var data = form.elements.photo.value;
    preview.hidden = !data;
    preview.querySelector("img").src = data || "";
  }
  function showGrid() {
    if (!picker) return;
    picker.querySelectorAll("[data-grid]").forEach(function (path) {
      path.classList.toggle("picked", path.dataset.grid === form.elements.grid.value);
    });
  }
  function values() {
    var data = {};
    fields.forEach(function (f) { data[f] = form.elements[f].value; });
    return data;
  }
  function saveDraft() {
    try { localStorage.setItem(key, JSON.stringify(values())); }
    catch (e) {  // storage full: keep the words at least
      var data = values(); data.photo = "";
      try { localStorage.setItem(key, JSON.stringify(data)); } catch (e2) { /* nothing to do */ }
    }
  }
  try {
    var draft = JSON.parse(localStorage.getItem(key) || "null");
    if (draft) fields.forEach(function (f) { if (draft[f]) form.elements[f].value = draft[f]; });
  } catch (e) { localStorage.removeItem(key); }
  showPhoto(); showGrid();
  form.addEventListener("input", saveDraft);
  form.elements.grid.addEventListener("change", showGrid);
  if (picker) picker.addEventListener("click", function (event) {
    var path = event.target.closest("[data-grid]");
    if (!path) return;
    form.elements.grid.value = path.dataset.grid;
    showGrid(); saveDraft();
  });
  document.getElementById("id_photo").addEventListener("change", function (event) {
    var file = event.target.files[0];
    if (!file) return;
    Whistle.shrinkPhoto(file).then(function (dataUrl) {
      form.elements.photo.value = dataUrl;
      showPhoto(); saveDraft();
    }).catch(function () {
      document.getElementById("report-problem").textContent = event.target.dataset.unreadable || "⚠";
    });
  });
  document.getElementById("photo-remove").addEventListener("click", function () {
    form.elements.photo.value = ""; document.getElementById("id_photo").value = "";
    showPhoto(); saveDraft();
  });
  document.getElementById("use-position").addEventListener("click", function () {
    var state = document.getElementById("position-state");
    if (!navigator.geolocation) return;
    navigator.geolocation.getCurrentPosition(function (p) {
      form.elements.latitude.value = p.coords.latitude.toFixed(6);
      form.elements.longitude.value = p.coords.longitude.toFixed(6);
      state.textContent = form.elements.latitude.value + ", " + form.elements.longitude.value;
      saveDraft();
    }, function (error) { state.textContent = error.message; }, { timeout: 10000 });
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = values(), problem = document.getElementById("report-problem");
    var button = form.querySelector("button[type=submit]");
    saveDraft();
    problem.textContent = "";
    button.disabled = true;
    Whistle.uploadPhoto(data.photo).then(function (photos) {
      return Whistle.postJson("/api/v1/reports", { category: data.category,
        description: data.description, grid: data.grid || null, photos: photos,
        latitude: data.latitude ? Number(data.latitude) : null,
        longitude: data.longitude ? Number(data.longitude) : null });
    }).then(function () {
      localStorage.removeItem(key);
      form.reset(); form.elements.photo.value = ""; showPhoto();
      document.getElementById("report-sent").hidden = false;
      setTimeout(function () { window.location.reload(); }, 1500);
    }).catch(function (error) {
      button.disabled = false;
      problem.textContent = (error && error.message && error.message !== "Failed to fetch")
        ? error.message : problem.dataset.kept;
    });
  });
})();

// The grid's open matters on the phone: settle one on the spot (what was done, a photo shrunk
// like the report's) or hand it up to the township (why not). The page then shows where it went.
(function () {
  var list = document.getElementById("grid-matters");
  if (!list) return;
  list.addEventListener("change", function (event) {
    var input = event.target.closest("input[type=file][name=photo]");
    if (!input) return;
    var form = input.form, preview = form.querySelector(".matter-preview");
    var problem = form.closest("li").querySelector(".problem");
    delete form.dataset.photo; preview.hidden = true;
    if (!input.files[0]) return;
    Whistle.shrinkPhoto(input.files[0]).then(function (dataUrl) {
      form.dataset.photo = dataUrl; preview.src = dataUrl; preview.hidden = false;
    }).catch(function () { problem.textContent = input.dataset.unreadable || "⚠"; });
  });
  list.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-matter-post]");
    if (!form) return;
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var problem = form.closest("li").querySelector(".problem");
    button.disabled = true;
    problem.textContent = "";
    Whistle.uploadPhoto(form.dataset.photo || "").then(function (photos) {
      var body = { note: form.elements.note.value };
      if (form.elements.photo) body.photos = photos;
      return Whistle.postJson(form.dataset.matterPost, body);
    }).then(function () { window.location.reload(); }).catch(function (error) {
      button.disabled = false;
      problem.textContent = (error && error.message) || "⚠";
    });
  });
})();

// The board's intake desk: photos are shrunk and uploaded as they are chosen (the form then
// carries their addresses), and the grid can be picked on the map as on the phone page.
(function () {
  function showGrid(form) {
    var picked = form.elements.grid.value;
    form.querySelectorAll("#intake-grid-picker [data-grid]").forEach(function (path) {
      path.classList.toggle("picked", path.dataset.grid === picked);
    });
  }
  document.addEventListener("click", function (event) {
    var path = event.target.closest("#intake-grid-picker [data-grid]");
    if (!path) return;
    var form = path.closest("form");
    form.elements.grid.value = path.dataset.grid;
    showGrid(form);
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches(".intake-dialog select[name=grid]")) showGrid(event.target.form);
    if (!event.target.matches("#intake-photo")) return;
    var input = event.target, form = input.form;
    var list = document.getElementById("intake-photos");
    var submit = form.querySelector("button[type=submit]");
    var problem = form.querySelector(".photo-problem");
    if (problem) problem.remove();
    submit.disabled = true;
    Promise.all(Array.from(input.files).map(function (file) {
      return Whistle.shrinkPhoto(file).then(Whistle.uploadPhoto).then(function (urls) {
        var item = document.createElement("span");
        item.className = "intake-photo";
        var hidden = document.createElement("input");
        hidden.type = "hidden"; hidden.name = "photos"; hidden.value = urls[0];
        var img = document.createElement("img");
        img.src = urls[0]; img.alt = "";
        item.append(hidden, img);
        list.append(item);
      });
    })).catch(function (error) {
      var note = document.createElement("div");
      note.className = "error photo-problem"; note.setAttribute("role", "alert");
      note.textContent = input.dataset.unreadable + " " + (error.message || "");
      list.after(note);
    }).finally(function () { submit.disabled = false; input.value = ""; });
  });
})();

// Dialogs the server renders into #dialog-slot (the board's whistle): shown modal when they
// arrive, removed when cancelled (button or Escape) or when the server answers with nothing.
(function () {
  // After the settle, not the swap: htmx wires the new content's hx-* attributes in its settle
  // tasks, and a dialog shown before that would drop a choice made at once (the joint
  // township's select redraws the dialog through hx-post).
  document.addEventListener("htmx:afterSettle", function (event) {
    var dialog = event.detail.target.querySelector("dialog[data-show-modal]");
    if (dialog && !dialog.open) dialog.showModal();
  });
  function close(dialog) {
    var slot = dialog.closest("#dialog-slot");
    if (slot) slot.innerHTML = ""; else dialog.remove();
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-close-dialog]");
    if (button) close(button.closest("dialog"));
  });
  document.addEventListener("cancel", function (event) {
    if (event.target.matches("dialog[data-show-modal]")) { event.preventDefault(); close(event.target); }
  }, true);
})();

// The department console: "done" with what was done and a photo of it; and a notification
// when a summons arrives while the console is in a background tab.
(function () {
  var inbox = document.getElementById("summons-inbox");
  if (!inbox) return;
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-done]");
    if (!form) return;
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var problem = form.closest("li").querySelector(".problem");
    var file = form.elements.photo.files[0];
    button.disabled = true;
    problem.textContent = "";
    (file ? Whistle.shrinkPhoto(file) : Promise.resolve("")).then(Whistle.uploadPhoto)
      .then(function (photos) {
        return Whistle.postJson(form.dataset.done, { note: form.elements.note.value, photos: photos });
      })
      .catch(function (error) {
        problem.textContent = (error && error.message) || "⚠";
        button.disabled = false;
      });
  });

  var seen = new Set(Array.from(inbox.querySelectorAll("li.summons")).map(function (r) { return r.id; }));
  var title = document.title, unseen = 0;
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { unseen = 0; document.title = title; }
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    var rows = Array.from(document.querySelectorAll("#summons-inbox li.summons"));
    var fresh = rows.filter(function (r) { return !seen.has(r.id); });
    fresh.forEach(function (r) { seen.add(r.id); });
    if (!fresh.length || !document.hidden) return;
    unseen += fresh.length;
    document.title = "(" + unseen + ") " + title;
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    fresh.forEach(function (row) {
      var note = new Notification(row.querySelector(".sev").textContent + " · " + row.querySelector(".what").textContent, {
        body: row.querySelector(".deadline").textContent.trim(), tag: row.id, requireInteraction: true,
      });
      note.onclick = function () { window.focus(); row.scrollIntoView({ block: "center" }); note.close(); };
    });
  });
})();

// The department console's supervision orders (督办单): the answer, what was done, as JSON to
// the API; the answered order leaves the list through the socket, like every other change.
(function () {
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-order-answer]");
    if (!form) return;
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var problem = form.closest("li").querySelector(".problem");
    button.disabled = true;
    problem.textContent = "";
    Whistle.postJson(form.dataset.orderAnswer, { answer: form.elements.answer.value })
      .catch(function (error) {
        problem.textContent = (error && error.message) || "⚠";
        button.disabled = false;
      });
  });
})();

// A device chosen on the board's map opens its panel (state and live chart); the panel
// refreshes itself while open; × or Escape closes it.
(function () {
  var socket = document.getElementById("board-socket");
  if (!socket || !document.getElementById("device-slot")) return;
  document.addEventListener("click", function (event) {
    var device = event.target.closest("#map-overlay [data-device]");
    if (device) {
      htmx.ajax("GET", socket.dataset.devices + device.dataset.device + "/",
        { target: "#device-slot", swap: "innerHTML" });
      return;
    }
    if (event.target.closest("[data-close-device]")) document.getElementById("device-slot").innerHTML = "";
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") document.getElementById("device-slot").innerHTML = "";
  });
})();

// The replay player: plays the incident at 1×, 10× or 60×, pauses, scrubs and steps from event
// to event. The board can only change at a timeline entry, so a frame is fetched when the clock
// crosses one (the countdowns follow the clock in between); the newest request wins. Paused,
// the address holds ?at= so the moment can be linked to.
(function () {
  var player = document.getElementById("replay-player");
  if (!player) return;
  var moments = JSON.parse(document.getElementById("replay-moments").textContent);
  var start = Number(player.dataset.start), end = Number(player.dataset.end);
  var opened = Number(player.dataset.opened);
  var slider = document.getElementById("replay-slider");
  var play = player.querySelector('[data-replay="play"]');
  var problem = document.getElementById("replay-problem");
  var at = Number(player.dataset.at), speed = 1, playing = false, lastTick = 0;
  var shownIndex = index(at), wanted = null, loading = false;
  var format = new Intl.DateTimeFormat("sv-SE", {
    timeZone: player.dataset.timeZone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  window.whistleClock = function () { return at; };

  // How many entries had happened by ``ms``: the frame to show.
  function index(ms) {
    var lo = 0, hi = moments.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (moments[mid] <= ms) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function showClock() {
    document.getElementById("replay-time").textContent = format.format(new Date(at));
    var minutes = (at - opened) / 60000;
    document.getElementById("replay-since").textContent = minutes.toFixed(1);
    slider.value = Math.round((at - start) / 1000);
    document.dispatchEvent(new CustomEvent("whistle:clock"));
  }
  function load() {
    if (loading) return;
    var ms = wanted; wanted = null;
    loading = true;
    fetch(player.dataset.frame + "?at=" + encodeURIComponent(new Date(ms).toISOString()),
          { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.text();
      })
      .then(function (html) {
        var parsed = document.createElement("template");
        parsed.innerHTML = html;
        Array.from(parsed.content.children).forEach(function (part) {
          var old = part.id && document.getElementById(part.id);
          if (old) old.replaceWith(part);
        });
        problem.textContent = "";
        player.dataset.shown = ms;
        document.dispatchEvent(new CustomEvent("whistle:clock"));
      })
      .catch(function () { problem.textContent = player.dataset.failed; if (wanted === null) wanted = ms; })
      .finally(function () { loading = false; if (wanted !== null) setTimeout(load, problem.textContent ? 1000 : 0); });
  }
  function moveTo(ms, fetchAlways) {
    at = Math.min(Math.max(ms, start), end);
    showClock();
    var now = index(at);
    if (now !== shownIndex || fetchAlways) { shownIndex = now; wanted = at; load(); }
  }
  function remember() {
    var url = new URL(window.location.href);
    url.searchParams.set("at", new Date(at).toISOString());
    history.replaceState(null, "", url);
  }
  function setPlaying(on) {
    playing = on && at < end;
    play.setAttribute("aria-pressed", String(playing));
    lastTick = performance.now();
    if (!playing) remember();
  }
  function step(direction) {
    setPlaying(false);
    var i = index(at);  // moments[i - 1] <= at < moments[i]
    var target = direction > 0 ? moments[i] : moments[at > moments[i - 1] ? i - 1 : i - 2];
    if (target === undefined) target = direction > 0 ? end : start;
    moveTo(target, true);
    remember();
  }
  setInterval(function () {
    if (!playing) return;
    var now = performance.now();
    moveTo(at + (now - lastTick) * speed);
    lastTick = now;
    if (at >= end) setPlaying(false);
  }, 100);
  play.addEventListener("click", function () {
    if (!playing && at >= end) moveTo(start);
    setPlaying(!playing);
  });
  player.querySelector('[data-replay="next"]').addEventListener("click", function () { step(1); });
  player.querySelector('[data-replay="previous"]').addEventListener("click", function () { step(-1); });
  player.querySelectorAll("[data-speed]").forEach(function (button) {
    button.addEventListener("click", function () {
      speed = Number(button.dataset.speed);
      player.querySelectorAll("[data-speed]").forEach(function (b) {
        b.setAttribute("aria-checked", String(b === button));
      });
    });
  });
  slider.addEventListener("input", function () { moveTo(start + Number(slider.value) * 1000); });
  slider.addEventListener("change", function () { if (!playing) remember(); });
  document.addEventListener("keydown", function (event) {
    if (event.target.closest("input, textarea, select, button")) return;
    if (event.key === " ") { event.preventDefault(); play.click(); }
    else if (event.key === "ArrowRight") step(1);
    else if (event.key === "ArrowLeft") step(-1);
  });
  player.dataset.shown = at;
  showClock();
})();

// Forms of a page that is not live (the incident's timeline): the fields as JSON to the API,
// then the page again, so it shows what the database now holds; a refusal stays in the form.
(function () {
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-api-form]");
    if (!form) return;
    event.preventDefault();
    var payload = {};
    Array.from(form.elements).forEach(function (field) {
      if (!field.name || field.type === "submit") return;
      if (field.type === "checkbox") payload[field.name] = field.checked;
      else if (field.type === "radio") { if (field.checked) payload[field.name] = field.value; }
      else payload[field.name] = field.value;
    });
    // A form of choices as buttons (the phone's 满意 / 基本满意 / 不满意): the one pressed.
    if (event.submitter && event.submitter.name) payload[event.submitter.name] = event.submitter.value;
    var problem = form.querySelector(".problem");
    Whistle.postJson(form.dataset.apiForm, payload).then(function () {
      window.location.reload();
    }, function (error) {
      if (problem) problem.textContent = error.message;
    });
  });
})();

// Evidence from the incident's page: a photo (shrunk and uploaded first) or a link.
(function () {
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-evidence]");
    if (!form) return;
    event.preventDefault();
    var problem = form.querySelector(".problem");
    var file = form.elements.photo.files[0];
    var link = form.elements.url.value.trim();
    if (!file && !link) return;
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    var address = file
      ? Whistle.shrinkPhoto(file).then(Whistle.uploadPhoto).then(function (urls) { return urls[0]; })
      : Promise.resolve(link);
    address.then(function (url) {
      return Whistle.postJson(form.dataset.evidence, {
        url: url, caption: form.elements.caption.value, kind: file ? "photo" : "link",
      });
    }).then(function () { window.location.reload(); }, function (error) {
      button.disabled = false;
      if (problem) problem.textContent = error.message;
    });
  });
})();

// "Notify me": the browser asks for permission only when a person asks for it (a button, not a
// prompt on load); shown while the choice is still to be made.
(function () {
  var ask = document.getElementById("notify-toggle");
  if (!ask) return;
  function refresh() {
    ask.hidden = !("Notification" in window) || Notification.permission !== "default";
  }
  refresh();
  ask.addEventListener("click", function () { Notification.requestPermission().then(refresh); });
})();

// 督办 for this person, on every live page they have open (console, board, supervisor
// console): the entry arrives over the page's socket; it sounds, shows the browser's
// notification (kept until dismissed) and, while the tab is in the background, flashes the
// title until the tab is looked at. Seen on a visible page, or clicked, it is marked read.
(function () {
  var list = document.getElementById("notification-list");
  if (!list) return;
  var prefix = list.closest("[data-flash]").dataset.flash;
  var seen = new Set(), timer = null, flashText = "", base = document.title;
  function flash(text) {
    flashText = prefix + text;
    document.body.dataset.titleFlashing = "1";
    if (timer) return;
    base = document.title;
    document.title = flashText;
    // Alternates with the page's own title (which other parts of the page may change).
    timer = setInterval(function () {
      if (document.title === flashText) document.title = base;
      else { base = document.title; document.title = flashText; }
    }, 1000);
  }
  function stopFlash() {
    if (!timer) return;
    clearInterval(timer);
    timer = null;
    if (document.title === flashText) document.title = base;
    delete document.body.dataset.titleFlashing;
  }
  function markRead(entry) {
    if (!entry.classList.contains("unread") || entry.dataset.reading) return;
    entry.dataset.reading = "1";
    fetch(entry.dataset.read, {
      method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": Whistle.csrf() },
    }).then(function (response) {
      if (!response.ok) return;
      entry.classList.remove("unread");
      entry.classList.add("read");
    }).catch(function () { /* still unread: the next look tries again */ })
      .finally(function () { delete entry.dataset.reading; });
  }
  function markShown() {
    if (document.hidden) return;
    list.querySelectorAll("li.notification.unread").forEach(markRead);
  }
  function announce(entry) {
    var text = entry.dataset.text;
    Whistle.beep();
    if (document.hidden) flash(text);
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      var note = new Notification(prefix + text, {
        body: entry.dataset.reason, tag: entry.id, requireInteraction: true,
      });
      note.onclick = function () {
        window.focus();
        markRead(entry);
        entry.focus();
        note.close();
      };
    } catch (e) { /* a browser that only notifies from a service worker: the page still shows it */ }
  }
  document.addEventListener("htmx:wsAfterMessage", function () {
    list.querySelectorAll("li.notification").forEach(function (entry) {
      if (seen.has(entry.id)) return;
      seen.add(entry.id);
      if (entry.classList.contains("unread")) announce(entry);
    });
    markShown();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) return;
    stopFlash();
    markShown();
  });
  list.addEventListener("click", function (event) {
    var entry = event.target.closest("li.notification");
    if (!entry) return;
    markRead(entry);
    if (event.target.closest("[data-dismiss-notification]")) entry.remove();
  });
  list.addEventListener("keydown", function (event) {
    var entry = event.target.closest("li.notification");
    if (!entry || event.target !== entry) return;
    if (event.key === "Enter") { markRead(entry); entry.querySelector("a").click(); }
    else if (event.key === "Delete" || event.key === "Escape") { markRead(entry); entry.remove(); }
  });
})();

// A link to one summons or order (#summons-12, #order-3: where a notification leads) marks its
// rows on the page, again after every push that redraws them.
(function () {
  var scrolled = false;
  function highlight() {
    var match = /^#((summons|order)-\d+)$/.exec(window.location.hash);
    if (!match) return;
    var rows = document.querySelectorAll("#" + match[1] + ', [data-anchor="' + match[1] + '"]');
    rows.forEach(function (row) { row.classList.add("highlighted"); });
    if (rows.length && !scrolled) {
      scrolled = true;
      rows[0].scrollIntoView({ block: "center" });
      if (!rows[0].hasAttribute("tabindex")) rows[0].setAttribute("tabindex", "-1");
      rows[0].focus({ preventScroll: true });
    }
  }
  document.addEventListener("DOMContentLoaded", highlight);
  document.addEventListener("htmx:wsAfterMessage", highlight);
  window.addEventListener("hashchange", function () { scrolled = false; highlight(); });
})();

// The supervisor console's "late by": from the missed deadline, in minutes, hours and days,
// kept current between pushes.
(function () {
  var socket = document.querySelector(".supervise-console");
  if (!socket) return;
  var units = socket.dataset;
  function tick() {
    var now = Date.now();
    socket.querySelectorAll(".late-by[data-since]").forEach(function (item) {
      var minutes = Math.max(0, Math.floor((now - Date.parse(item.dataset.since)) / 60000));
      var days = Math.floor(minutes / 1440), hours = Math.floor(minutes / 60) % 24;
      item.textContent = days ? days + " " + units.days + " " + hours + " " + units.hours
        : minutes >= 60 ? Math.floor(minutes / 60) + " " + units.hours + " " + (minutes % 60) + " " + units.minutes
        : minutes + " " + units.minutes;
    });
  }
  setInterval(tick, 30000);
  document.addEventListener("htmx:wsAfterMessage", tick);
  tick();
})();
