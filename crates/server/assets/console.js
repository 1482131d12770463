// Rapport console: a few progressive enhancements. Every page works
// without this script; it adds search as you type, the language switch
// on change, and confirmations before irreversible actions.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The language select submits itself.
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });

  // Forms that need a confirmation.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault();
    });
  });

  // Search as you type: fetch the table body for the query and replace it.
  var input = document.querySelector("input[data-live-search]");
  if (input) {
    var body = document.getElementById(input.getAttribute("aria-controls"));
    var pager = document.getElementById("pager");
    var form = input.form;
    var timer = null;
    var seq = 0;
    var run = function () {
      var params = new URLSearchParams(new FormData(form));
      var q = input.value.trim();
      if (!q) params.delete("q");
      var mine = ++seq;
      fetch(input.getAttribute("data-live-search") + "?" + params.toString(), {
        credentials: "same-origin",
        headers: { "Accept": "text/html" }
      }).then(function (r) {
        if (r.redirected || !r.ok) throw new Error("search failed: " + r.status);
        return r.text();
      }).then(function (html) {
        if (mine !== seq) return; // a newer query is on its way
        body.innerHTML = html;
        if (pager) pager.hidden = q.length > 0;
        body.setAttribute("data-query", q);
        var url = new URL(window.location.href);
        if (q) url.searchParams.set("q", q); else url.searchParams.delete("q");
        url.searchParams.delete("page");
        window.history.replaceState(null, "", url.toString());
      }).catch(function () { /* keep the current rows; submitting the form still works */ });
    };
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(run, 180);
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { input.value = ""; run(); }
    });
  }

  // Forms that move points are sent once per page: a second click waits
  // for the first answer (the server also applies a form's key once).
  document.querySelectorAll("form[data-once]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (f.getAttribute("data-sent") === "1") { e.preventDefault(); return; }
      f.setAttribute("data-sent", "1");
    });
  });

  // The segment builder: the count follows the conditions as they change.
  var builder = document.querySelector("form[data-live-count]");
  if (builder) {
    var out = document.getElementById("live-count");
    var errs = document.getElementById("builder-errors");
    var csrf = builder.querySelector("input[name=csrf_token]").value;
    var wait = null;
    var turn = 0;
    var recount = function () {
      var mine = ++turn;
      builder.setAttribute("data-counting", "1");
      fetch(builder.getAttribute("data-live-count"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf },
        body: new URLSearchParams(new FormData(builder)).toString()
      }).then(function (r) {
        if (!r.ok) throw new Error("count failed: " + r.status);
        return r.json();
      }).then(function (j) {
        if (mine !== turn) return;
        out.textContent = j.count;
        var list = errs.querySelector("ul");
        list.textContent = "";
        (j.errors || []).forEach(function (m) {
          var li = document.createElement("li");
          li.textContent = m;
          list.appendChild(li);
        });
        errs.hidden = !(j.errors && j.errors.length);
        builder.removeAttribute("data-counting");
      }).catch(function () { builder.removeAttribute("data-counting"); });
    };
    var soon = function () { window.clearTimeout(wait); wait = window.setTimeout(recount, 250); };
    builder.addEventListener("input", soon);
    // Pages draw without counting (a count can take a while on a large
    // hospital); the count follows at once.
    recount();
    builder.addEventListener("change", function (e) {
      // A new field takes other operators and values: redraw the form.
      if (e.target.hasAttribute("data-seg-field")) {
        var b = builder.querySelector("button[value=count]");
        if (b) { builder.requestSubmit(b); return; }
      }
      soon();
    });
  }

  // An import in progress: its panel is fetched again until it ends.
  var poll = document.querySelector("[data-poll]");
  if (poll) {
    var tick = function () {
      fetch(poll.getAttribute("data-poll"), { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) throw new Error("poll failed: " + r.status);
        return r.text();
      }).then(function (html) {
        poll.innerHTML = html;
        var panel = poll.querySelector("[data-status]");
        if (panel && panel.getAttribute("data-status") === "running") window.setTimeout(tick, 1000);
        else poll.setAttribute("data-done", "1");
      }).catch(function () { window.setTimeout(tick, 3000); });
    };
    var first = poll.querySelector("[data-status]");
    if (first && first.getAttribute("data-status") === "running") window.setTimeout(tick, 1000);
    else poll.setAttribute("data-done", "1");
  }

  // Imports: the file goes up as the request body, with the form's
  // choices in the query string; then the import's page follows it.
  var upload = document.querySelector("form[data-upload]");
  if (upload) {
    upload.addEventListener("submit", function (e) {
      e.preventDefault();
      var file = upload.querySelector("input[type=file]").files[0];
      var status = document.getElementById("upload-status");
      if (!file) return;
      var q = new URLSearchParams();
      q.set("kind", upload.querySelector("[name=kind]").value);
      q.set("encoding", upload.querySelector("[name=encoding]").value);
      q.set("file_name", file.name);
      if (upload.querySelector("[name=skip_invalid]").checked) q.set("skip_invalid", "1");
      status.textContent = upload.getAttribute("data-sending");
      upload.querySelector("button[type=submit]").disabled = true;
      fetch(upload.getAttribute("data-upload") + "?" + q.toString(), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/octet-stream", "X-CSRF-Token": upload.querySelector("input[name=csrf_token]").value },
        body: file
      }).then(function (r) {
        return r.json().then(function (j) { return { ok: r.ok, j: j }; });
      }).then(function (res) {
        if (res.ok && res.j.location) { window.location.assign(res.j.location); return; }
        status.textContent = res.j.error || upload.getAttribute("data-failed");
        upload.querySelector("button[type=submit]").disabled = false;
      }).catch(function () {
        status.textContent = upload.getAttribute("data-failed");
        upload.querySelector("button[type=submit]").disabled = false;
      });
    });
  }

  // Select the new API token so it can be copied at once.
  var token = document.getElementById("new-token");
  if (token) { token.focus(); token.select(); }
})();
