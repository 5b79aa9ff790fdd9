"""Forms in Chromium: the owner builds a form in the editor; its hosted page (in a
phone-sized window) and the same form embedded on a shop page served from another
origin each create a contact with traits and consent; a double opt-in form sends the
confirmation e-mail to the real SMTP server the runner started; a filled honeypot and
a too-fast submission store nothing; a form asking a proof of work is solved by the
hosted page's script and refused without JavaScript; a flood from one address is rate-limited while
another address still goes through (the server trusts X-Forwarded-For in this run).

Contract (tests/ui harness): ``ctx.base``, ``ctx.api``, ``ctx.page``,
``ctx.new_context()``, ``ctx.shot``, ``ctx.smtp_port``, ``ctx.mails``.
"""

import functools
import http.server
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

SHOP = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title></head><body>
<h1>Our shop</h1>
<p>Sign up below.</p>
<script src="{base}/f/{slug}/embed.js" async></script>
</body></html>
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def __init__(self, body, *args, **kwargs):
        self.body = body
        super().__init__(*args, **kwargs)

    def do_GET(self):  # noqa: N802 (http.server's name)
        data = self.body.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _serve(body):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_Handler, body))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return port


def _contact(ctx, email, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        status, c = ctx.api("GET", "/api/v1/contacts/lookup?email=" + urllib.parse.quote(email))
        if status == 200:
            return c
        assert time.monotonic() < deadline, f"no contact {email}: {status} {c}"
        time.sleep(0.2)


def _absent(ctx, email):
    time.sleep(0.5)
    status, _ = ctx.api("GET", "/api/v1/contacts/lookup?email=" + urllib.parse.quote(email))
    assert status == 404, f"{email} must not be stored"


def _post(ctx, slug, fields, ip):
    """A plain form post from address `ip` (X-Forwarded-For); its status."""
    data = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(f"{ctx.base}/f/{slug}", data=data, method="POST",
                                 headers={"x-forwarded-for": ip,
                                          "content-type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def run(ctx):
    tag = uuid.uuid4().hex[:8]
    slug = f"news-{tag}"
    shop_port = _serve(SHOP.format(base=ctx.base, slug=slug))
    shop = f"http://127.0.0.1:{shop_port}"

    # The owner builds the form in the editor.
    owner = ctx.page("owner")
    owner.goto(ctx.base + "/forms/new")
    owner.fill("input[name=name]", f"Newsletter {tag}")
    owner.fill("input[name=slug]", slug)
    owner.fill("input[name='fields[1].name']", "first_name")
    owner.fill("input[name='fields[1].label']", "First name")
    owner.fill("input[name='fields[2].name']", "utm_source")
    owner.select_option("select[name='fields[2].type']", "hidden")
    owner.fill("input[name='fields[2].query']", "utm_source")
    owner.fill("input[name='consents[0].subscription']", "email:newsletter")
    owner.fill("input[name='consents[0].label']", "Send me the newsletter")
    owner.fill("textarea[name=thanks]", "Welcome aboard!")
    owner.fill("textarea[name=origins]", shop)
    owner.fill("input[name=title]", "Join our newsletter")
    owner.fill("textarea[name=text]", "One e-mail a month, **no spam**.")
    owner.fill("input[name=min_fill_ms]", "1500")
    owner.click("#save-form")
    owner.wait_for_url("**/forms/*")
    assert slug in owner.inner_text("#embed-snippet"), owner.inner_text("#embed-snippet")
    ctx.shot(owner, "form-report")
    form_id = int(owner.url.rstrip("/").split("/")[-1])

    # The hosted page on a phone: a contact with traits and consent.
    phone = ctx.new_context().browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    phone.goto(f"{ctx.base}/f/{slug}?utm_source=ad-{tag}")
    assert phone.inner_text("h1") == "Join our newsletter"
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "fits the phone"
    phone.fill("input[name=email]", f"page-{tag}@ui-test.example")
    phone.fill("input[name=first_name]", "Paula")
    phone.check("input[name='consent:email:newsletter']")
    ctx.shot(phone, "form-page-phone")
    phone.wait_for_timeout(1600)
    phone.click("button[type=submit]")
    phone.wait_for_selector(".thanks")
    assert "Welcome aboard!" in phone.inner_text(".thanks")
    c = _contact(ctx, f"page-{tag}@ui-test.example")
    assert c["traits"]["first_name"] == "Paula" and c["traits"]["utm_source"] == f"ad-{tag}", c
    assert c["subscriptions"]["email:newsletter"] == "subscribed", c

    # Too fast: sent at once after the page was shown; nothing stored, a clear message.
    fast = ctx.new_context().new_page()
    fast.goto(f"{ctx.base}/f/{slug}")
    fast.fill("input[name=email]", f"fast-{tag}@ui-test.example")
    fast.click("button[type=submit]")
    fast.wait_for_selector(".alert")
    assert "too quickly" in fast.inner_text(".alert"), fast.inner_text(".alert")
    _absent(ctx, f"fast-{tag}@ui-test.example")
    # The honeypot, filled by a bot: nothing stored.
    bot = ctx.new_context().new_page()
    bot.goto(f"{ctx.base}/f/{slug}")
    bot.fill("input[name=email]", f"bot-{tag}@ui-test.example")
    bot.evaluate("document.querySelector('input[name=_nudge_hp]').value = 'http://spam.example'")
    bot.wait_for_timeout(1600)
    bot.click("button[type=submit]")
    bot.wait_for_selector(".alert")
    assert "automated" in bot.inner_text(".alert")
    _absent(ctx, f"bot-{tag}@ui-test.example")

    # Embedded on the shop (another origin): rendered in place, posted with CORS.
    page = ctx.new_context().new_page()
    page.goto(shop)
    page.wait_for_selector(".nudge-embed input[name=email]")
    page.fill(".nudge-embed input[name=email]", f"embed-{tag}@ui-test.example")
    page.fill(".nudge-embed input[name=first_name]", "Emil")
    page.check(".nudge-embed input[name='consent:email:newsletter']")
    page.wait_for_timeout(1600)
    page.click(".nudge-embed button[type=submit]")
    page.wait_for_selector(".nudge-embed .thanks")
    ctx.shot(page, "form-embedded")
    c = _contact(ctx, f"embed-{tag}@ui-test.example")
    assert c["traits"]["first_name"] == "Emil" and c["subscriptions"]["email:newsletter"] == "subscribed", c
    status, subs = ctx.api("GET", f"/api/v1/forms/{form_id}/submissions")
    assert [s["source"] for s in subs["data"]] == ["embed", "page"], subs

    # The same shop page from an origin the form does not allow: refused, nothing stored.
    other = ctx.new_context().new_page()
    other.goto(f"http://localhost:{shop_port}/")
    other.wait_for_selector(".nudge-embed input[name=email]")
    other.fill(".nudge-embed input[name=email]", f"other-{tag}@ui-test.example")
    other.wait_for_timeout(1600)
    other.click(".nudge-embed button[type=submit]")
    other.wait_for_selector(".nudge-embed .alert:not([hidden])")
    _absent(ctx, f"other-{tag}@ui-test.example")

    # Double opt-in: the confirmation goes to the real SMTP server.
    status, body = ctx.api("PUT", "/api/v1/channels/email", json={
        "transport": "smtp", "url": f"smtp://127.0.0.1:{ctx.smtp_port}", "from": "Shop <shop@ui-test.example>"})
    assert status == 200, (status, body)
    status, body = ctx.api("POST", "/api/v1/templates", json={
        "name": f"confirm-{tag}", "transactional": True,
        "content": {"channel": "email", "subject": f"Confirm {tag}",
                    "html": "<p><a href=\"{{ confirm_url }}\">Confirm your subscription</a></p>"}})
    assert status == 201, (status, body)
    doi = f"doi-{tag}"
    status, body = ctx.api("POST", "/api/v1/forms", json={"name": f"DOI {tag}", "slug": doi, "definition": {
        "fields": [{"name": "email", "type": "email", "label": "Email", "required": True}],
        "consents": [{"subscription": "email:news", "label": "News"}],
        "double_opt_in": {"confirm_template": f"confirm-{tag}"},
        "spam": {"min_fill_ms": 1000}}})
    assert status == 201, (status, body)
    before = len(ctx.mails(0))
    d = ctx.new_context().new_page()
    d.goto(f"{ctx.base}/f/{doi}")
    d.fill("input[name=email]", f"doi-{tag}@ui-test.example")
    d.check("input[name='consent:email:news']")
    d.wait_for_timeout(1100)
    d.click("button[type=submit]")
    d.wait_for_selector(".thanks")
    c = _contact(ctx, f"doi-{tag}@ui-test.example")
    assert c["subscriptions"]["email:news"] == "pending", c
    mails = ctx.mails(before + 1, timeout=30)
    mail = next(m for m in mails if f"Confirm {tag}" in json.dumps(m))
    assert "/confirm/" in json.dumps(mail), mail

    # Proof of work: the hosted page's script finds the nonce (crypto.subtle: the page is
    # on 127.0.0.1, a secure context) and the submission passes; the same form posted
    # by a browser without JavaScript carries no proof and is refused, storing nothing.
    pow_slug = f"pow-{tag}"
    status, body = ctx.api("POST", "/api/v1/forms", json={"name": f"PoW {tag}", "slug": pow_slug, "definition": {
        "fields": [{"name": "email", "type": "email", "label": "Email", "required": True}],
        "spam": {"min_fill_ms": 0, "proof_of_work": 16}}})
    assert status == 201, (status, body)
    solver = ctx.new_context().new_page()
    solver.goto(f"{ctx.base}/f/{pow_slug}")
    solver.fill("input[name=email]", f"pow-{tag}@ui-test.example")
    solver.click("button[type=submit]")
    solver.wait_for_selector(".thanks", timeout=60000)
    _contact(ctx, f"pow-{tag}@ui-test.example")
    nojs_context = ctx.browser.new_context(java_script_enabled=False, locale="en-US")
    nojs = nojs_context.new_page()
    nojs.goto(f"{ctx.base}/f/{pow_slug}")
    nojs.fill("input[name=email]", f"nopow-{tag}@ui-test.example")
    nojs.click("button[type=submit]")
    nojs.wait_for_selector(".alert")
    assert "security check" in nojs.inner_text(".alert"), nojs.inner_text(".alert")
    ctx.shot(nojs, "form-pow-refused")
    nojs_context.close()
    _absent(ctx, f"nopow-{tag}@ui-test.example")

    # A flood from one address gets 429s; another address still goes through.
    status, _ = ctx.api("PUT", f"/api/v1/forms/{form_id}", json={"name": f"Newsletter {tag}", "slug": slug,
        "definition": {"fields": [{"name": "email", "type": "email", "label": "Email", "required": True}],
                       "spam": {"min_fill_ms": 0}}})
    assert status == 200
    html = urllib.request.urlopen(f"{ctx.base}/f/{slug}").read().decode()
    at = html.index('name="_nudge_t" value="') + len('name="_nudge_t" value="')
    stamp = html[at:html.index('"', at)]
    flood_ip = f"203.0.113.{int(tag[:2], 16) % 250 + 1}"
    codes = [_post(ctx, slug, {"_nudge_t": stamp, "email": f"flood{i}-{tag}@ui-test.example"}, flood_ip)
             for i in range(15)]
    assert codes[0] == 200 and 429 in codes, codes
    assert _post(ctx, slug, {"_nudge_t": stamp, "email": f"calm-{tag}@ui-test.example"}, "198.51.100.77") == 200
    _contact(ctx, f"calm-{tag}@ui-test.example")
    refused = codes.index(429)
    _absent(ctx, f"flood{refused}-{tag}@ui-test.example")
