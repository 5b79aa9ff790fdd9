// Nudge's hosted form page: fills hidden fields from the page's query, passes the
// browser's anonymous id (analytics.js's `ajs_anonymous_id`) when there is one, and
// solves the proof of work when the form asks for one. The form works without it.
(function () {
  "use strict";
  function anonymousId() {
    try {
      var ls = window.localStorage.getItem("ajs_anonymous_id");
      if (ls) return JSON.parse(ls);
    } catch (e) { /* not JSON or no storage */ }
    var m = document.cookie.match(/(?:^|;\s*)ajs_anonymous_id=([^;]+)/);
    if (!m) return "";
    var v = decodeURIComponent(m[1]);
    try { return JSON.parse(v); } catch (e) { return v; }
  }
  async function solve(stamp, bits) {
    var enc = new TextEncoder();
    for (var n = 0; n < 50000000; n++) {
      var hash = new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(stamp + ":" + n)));
      var zeros = 0;
      for (var i = 0; i < hash.length; i++) {
        if (hash[i] === 0) { zeros += 8; continue; }
        zeros += Math.clz32(hash[i]) - 24;
        break;
      }
      if (zeros >= bits) return String(n);
    }
    return "";
  }
  window.NudgeForms = { anonymousId: anonymousId, solve: solve };
  document.addEventListener("DOMContentLoaded", function () {
    var params = new URLSearchParams(window.location.search);
    document.querySelectorAll("form.nudge-form").forEach(function (form) {
      form.querySelectorAll("input[data-query]").forEach(function (input) {
        var q = input.getAttribute("data-query");
        if (q && params.get(q)) input.value = params.get(q);
      });
      var anon = form.querySelector("input[name=_nudge_anonymous_id]");
      if (anon) anon.value = anonymousId() || "";
      var bits = parseInt(form.getAttribute("data-pow") || "0", 10);
      var solved = bits === 0;
      form.addEventListener("submit", function (ev) {
        var button = form.querySelector("button[type=submit]");
        if (solved) { if (button) button.disabled = true; return; }
        ev.preventDefault();
        if (button) { button.disabled = true; button.textContent = button.getAttribute("data-sending"); }
        var stamp = form.querySelector("input[name=_nudge_t]").value;
        solve(stamp, bits).then(function (nonce) {
          form.querySelector("input[name=_nudge_pow]").value = nonce;
          solved = true;
          form.submit();
        });
      });
    });
  });
})();
