// The body of `/f/{slug}/embed.js` (wrapped with `NUDGE_FORM`, the form's settings):
// draws the form after its script tag and posts it as JSON to Nudge.
"use strict";
var F = NUDGE_FORM;
var script = document.currentScript;
function el(tag, attrs, text) {
  var e = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) { if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) e.setAttribute(k, attrs[k] === true ? "" : attrs[k]); });
  if (text) e.textContent = text;
  return e;
}
function anonymousId() {
  try { var ls = window.localStorage.getItem("ajs_anonymous_id"); if (ls) return JSON.parse(ls); } catch (e) { /* none */ }
  var m = document.cookie.match(/(?:^|;\s*)ajs_anonymous_id=([^;]+)/);
  if (!m) return "";
  var v = decodeURIComponent(m[1]);
  try { return JSON.parse(v); } catch (e) { return v; }
}
async function solve(stamp, bits) {
  var enc = new TextEncoder();
  for (var n = 0; n < 50000000; n++) {
    var h = new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(stamp + ":" + n)));
    var z = 0;
    for (var i = 0; i < h.length; i++) { if (h[i] === 0) { z += 8; continue; } z += Math.clz32(h[i]) - 24; break; }
    if (z >= bits) return String(n);
  }
  return "";
}
if (!document.querySelector('link[data-nudge-forms]')) {
  document.head.appendChild(el("link", { rel: "stylesheet", href: F.css, "data-nudge-forms": "1" }));
}
var box = el("div", { "class": "nudge-embed", dir: F.dir, lang: F.lang });
var form = el("form", { "class": "nudge-form", novalidate: true });
var alertBox = el("p", { "class": "alert", role: "alert", hidden: true });
if (F.title) box.appendChild(el("h2", {}, F.title));
box.appendChild(alertBox);
var params = new URLSearchParams(window.location.search);
var hp = el("div", { "class": "hp", "aria-hidden": "true" });
hp.appendChild(el("input", { type: "text", name: F.names.honeypot, tabindex: "-1", autocomplete: "off" }));
form.appendChild(hp);
F.fields.forEach(function (f) {
  if (f.type === "hidden") {
    form.appendChild(el("input", { type: "hidden", name: f.name, value: (f.query && params.get(f.query)) || f.value || "" }));
    return;
  }
  var wrap = el("div", { "class": "field" + (f.type === "checkbox" ? " check" : ""), "data-name": f.name });
  var id = "nudge-" + f.name + "-" + Math.random().toString(36).slice(2, 8);
  if (f.type === "checkbox") {
    var l = el("label");
    l.appendChild(el("input", { type: "checkbox", name: f.name, required: f.required }));
    l.appendChild(document.createTextNode(" " + f.label + (f.required ? " *" : "")));
    wrap.appendChild(l);
  } else {
    wrap.appendChild(el("label", { "for": id }, f.label + (f.required ? " *" : "")));
    if (f.type === "select") {
      var s = el("select", { id: id, name: f.name, required: f.required });
      s.appendChild(el("option", { value: "" }, F.text.choose));
      f.options.forEach(function (o) { s.appendChild(el("option", { value: o }, o)); });
      wrap.appendChild(s);
    } else {
      var types = { email: "email", phone: "tel", number: "number", date: "date" };
      wrap.appendChild(el("input", { id: id, name: f.name, type: types[f.type] || "text", required: f.required }));
    }
  }
  wrap.appendChild(el("p", { "class": "error", hidden: true }));
  form.appendChild(wrap);
});
F.consents.forEach(function (c) {
  var wrap = el("div", { "class": "field check", "data-name": c.name });
  var l = el("label");
  l.appendChild(el("input", { type: "checkbox", name: c.name, required: c.required }));
  l.appendChild(document.createTextNode(" " + c.label + (c.required ? " *" : "")));
  wrap.appendChild(l);
  wrap.appendChild(el("p", { "class": "error", hidden: true }));
  form.appendChild(wrap);
});
var button = el("button", { type: "submit" }, F.text.submit);
form.appendChild(button);
box.appendChild(form);
if (script && script.parentNode) script.parentNode.insertBefore(box, script.nextSibling); else document.body.appendChild(box);
form.addEventListener("submit", async function (ev) {
  ev.preventDefault();
  button.disabled = true;
  button.textContent = F.text.sending;
  alertBox.hidden = true;
  form.querySelectorAll(".error").forEach(function (e) { e.hidden = true; e.textContent = ""; });
  var body = {};
  new FormData(form).forEach(function (v, k) { body[k] = v; });
  body[F.names.stamp] = F.stamp;
  body[F.names.anonymous] = anonymousId() || "";
  if (F.pow > 0) body[F.names.pow] = await solve(F.stamp, F.pow);
  try {
    var r = await fetch(F.action, { method: "POST", mode: "cors", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    var j = await r.json();
    if (r.ok) {
      if (j.redirect) { window.location.href = j.redirect; return; }
      box.replaceChildren(el("p", { "class": "thanks", role: "status" }, j.message));
      return;
    }
    var e = j.error || {};
    alertBox.textContent = e.localized || e.summary || e.message || F.text.failed;
    alertBox.hidden = false;
    (e.details || []).forEach(function (p) {
      var wrap = form.querySelector('[data-name="' + CSS.escape(p.field) + '"] .error');
      if (wrap) { wrap.textContent = p.message; wrap.hidden = false; }
    });
  } catch (err) {
    alertBox.textContent = F.text.failed;
    alertBox.hidden = false;
  }
  button.disabled = false;
  button.textContent = F.text.submit;
});
