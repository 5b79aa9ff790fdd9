// Nudge UI: the little JavaScript the pages use. Everything here only makes pages
// livelier; every page reads and every form posts without it.
(function () {
  "use strict";
  var csrf = function () { return document.body ? document.body.getAttribute("data-csrf") : null; };

  // htmx requests carry the session's CSRF token in a header.
  document.addEventListener("htmx:configRequest", function (e) {
    var token = csrf();
    if (token) { e.detail.headers["X-CSRF-Token"] = token; }
  });

  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) { el.form.submit(); }
  });

  // A click on a step of a journey's diagram opens it in the inspector beside it
  // (without JavaScript the inspector lists the steps as links), marks it, and puts
  // it in the address, so a reload shows the same step.
  var mark = function () {
    var step = new URLSearchParams(location.search).get("step");
    document.querySelectorAll("[data-inspect] [data-step]").forEach(function (g) {
      g.classList.toggle("selected", g.getAttribute("data-step") === step);
    });
  };
  document.addEventListener("click", function (e) {
    var g = e.target.closest && e.target.closest("[data-inspect] [data-step]");
    if (!g || !window.htmx) { return; }
    var box = g.closest("[data-inspect]"), step = encodeURIComponent(g.getAttribute("data-step"));
    window.htmx.ajax("GET", box.getAttribute("data-inspect") + step, { target: "#inspector", swap: "innerHTML" });
    history.replaceState(null, "", box.getAttribute("data-here") + step);
    mark();
  });
  document.addEventListener("htmx:afterSettle", mark);
  document.addEventListener("DOMContentLoaded", mark);
  // A select that changes which fields a form shows (the segment builder's condition
  // types and operators) re-renders the form through its first button.
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el.matches && el.matches("select[data-refresh]") && el.form && el.form.requestSubmit) {
      var button = el.form.querySelector("button[data-refresh-button]");
      el.form.requestSubmit(button || undefined);
    }
  });

  // Forms that destroy something ask first.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { e.preventDefault(); }
  }, true);
})();
