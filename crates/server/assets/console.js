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

  // Select the new API token so it can be copied at once.
  var token = document.getElementById("new-token");
  if (token) { token.focus(); token.select(); }
})();
