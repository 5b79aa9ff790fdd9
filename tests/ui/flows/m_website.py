"""A website tracked by Segment's own browser library, served by Nudge: a shop page
on another origin pastes the snippet; its page view and a track call arrive as an
anonymous visitor (with the page's context and UTM campaign); a reload keeps the
anonymous id; an identify joins that history to the contact; the same page served
from an origin the write key does not allow is refused (CORS) and stores nothing.

Contract (tests/ui harness): ``ctx.base``, ``ctx.api``, ``ctx.write_key``,
``ctx.new_context()``, ``ctx.shot``.
"""

import functools
import http.server
import socket
import threading
import time
import urllib.parse
import uuid

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Spring shop</title>
<link rel="canonical" href="https://shop.example/spring">
{snippet}
</head><body>
<h1>Spring shop</h1>
<button id="buy" onclick="analytics.track('Viewed Product', {{product_id: 'p-1', price: 12.5}})">View</button>
<button id="who" onclick="analytics.identify(document.body.dataset.user, {{email: document.body.dataset.email}})">Sign in</button>
</body></html>
"""


def _snippet(base, key):
    """The snippet docs/website.md gives (nudge_api::browser::snippet)."""
    return (
        '<script>!function(){var i="analytics",analytics=window[i]=window[i]||[];if(!analytics.initialize)'
        'if(analytics.invoked)window.console&&console.error&&console.error("Segment snippet included twice.");'
        'else{analytics.invoked=!0;analytics.methods=["trackSubmit","trackClick","trackLink","trackForm","pageview",'
        '"identify","reset","group","track","ready","alias","debug","page","screen","once","off","on",'
        '"addSourceMiddleware","addIntegrationMiddleware","setAnonymousId","addDestinationMiddleware","register"];'
        'analytics.factory=function(e){return function(){if(window[i].initialized)return window[i][e].apply(window[i],arguments);'
        'var n=Array.prototype.slice.call(arguments);if(["track","screen","alias","group","page","identify"].indexOf(e)>-1)'
        '{var c=document.querySelector("link[rel=\'canonical\']");n.push({__t:"bpc",c:c&&c.getAttribute("href")||void 0,'
        'p:location.pathname,u:location.href,s:location.search,t:document.title,r:document.referrer})}n.unshift(e);'
        'analytics.push(n);return analytics}};for(var n=0;n<analytics.methods.length;n++){var key=analytics.methods[n];'
        'analytics[key]=analytics.factory(key)}analytics.load=function(key,n){var t=document.createElement("script");'
        't.type="text/javascript";t.async=!0;t.setAttribute("data-global-segment-analytics-key",i);'
        f't.src="{base}/analytics.js/v1/"+key+"/analytics.min.js";var r=document.getElementsByTagName("script")[0];'
        'r.parentNode.insertBefore(t,r);analytics._loadOptions=n};'
        f'analytics._writeKey="{key}";analytics._cdn="{base}";analytics.SNIPPET_VERSION="5.2.1";'
        f'analytics.load("{key}");analytics.page();}}}}();</script>'
    )


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
    """Serves the shop page on a free port; returns the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_Handler, body))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return port


def _events_of(ctx, query, want, timeout=20):
    """The events of the contact found by `query` once it has at least `want`."""
    deadline = time.monotonic() + timeout
    while True:
        status, contact = ctx.api("GET", f"/api/v1/contacts/lookup?{query}")
        if status == 200:
            status, events = ctx.api("GET", f"/api/v1/contacts/{contact['id']}/events?limit=100")
            assert status == 200, (status, events)
            if len(events["data"]) >= want:
                return contact, events["data"]
        assert time.monotonic() < deadline, f"{query}: fewer than {want} events: {status} {contact}"
        time.sleep(0.2)


def _loaded(page, failed, console):
    """Waits for the library to initialise; on failure says what the page saw."""
    try:
        page.wait_for_function("window.analytics && window.analytics.initialized === true")
    except Exception as e:
        raise AssertionError(f"analytics.js did not load: failed {failed}, console {console}") from e


def run(ctx):
    tag = uuid.uuid4().hex[:8]
    port = _serve(PAGE.format(snippet=_snippet(ctx.base, ctx.write_key)))
    allowed = f"http://127.0.0.1:{port}"
    status, keys = ctx.api("GET", "/api/v1/keys")
    assert status == 200, keys
    key = next(k for k in keys["data"]
               if k["kind"] == "write" and k["revoked_at"] is None and ctx.write_key.startswith(k["prefix"]))
    status, body = ctx.api("PUT", f"/api/v1/keys/{key['id']}/browser", json={"allowed_origins": [allowed]})
    assert status == 200 and body["allowed_origins"] == [allowed], (status, body)

    page = ctx.new_context().new_page()
    failed, console = [], []
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("response", lambda r: console.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{allowed}/spring?utm_campaign=spring-{tag}&utm_source=newsletter")
    _loaded(page, failed, console)
    anon = page.evaluate("analytics.user().anonymousId()")
    assert anon, "the library made an anonymous id"
    page.click("#buy")
    contact, events = _events_of(ctx, "anonymous_id=" + urllib.parse.quote(anon), 2)
    view = next(e for e in events if e["type"] == "page")
    assert view["context"]["campaign"]["name"] == f"spring-{tag}", view["context"]
    assert view["context"]["page"]["path"] == "/spring", view["context"]
    assert view["context"]["userAgent"], view["context"]
    assert view["context"]["library"]["name"] == "analytics.js", view["context"]
    track = next(e for e in events if e.get("event") == "Viewed Product")
    assert track["properties"]["product_id"] == "p-1", track

    # A reload keeps the anonymous id (the library's cookie and storage).
    page.reload()
    _loaded(page, failed, console)
    assert page.evaluate("analytics.user().anonymousId()") == anon

    # Signing in joins the anonymous history to the contact.
    user = f"web-{tag}"
    page.evaluate(f"document.body.dataset.user = '{user}'; document.body.dataset.email = '{user}@ui-test.example'")
    page.click("#who")
    contact, events = _events_of(ctx, f"user_id={user}", 4)
    assert anon in contact["anonymous_ids"], contact
    assert contact["email"] == f"{user}@ui-test.example", contact
    assert sum(1 for e in events if e["type"] == "page") >= 2, [e["type"] for e in events]
    ctx.shot(page, "website-shop")
    # A request still in flight when the page reloads is aborted by the browser (the
    # library keeps it and sends it again); anything else failing is a fault.
    assert not [u for u in failed if u.startswith(ctx.base) and "ERR_ABORTED" not in u], failed

    # The same page from an origin the key does not allow: the browser is refused and
    # nothing is stored.
    other = ctx.new_context().new_page()
    other.goto(f"http://localhost:{port}/spring")
    other.wait_for_timeout(500)
    refused = other.evaluate(
        """async ([base, key]) => {
            try {
                await fetch(base + '/v1/t', {method: 'POST', headers: {'content-type': 'text/plain'},
                    body: JSON.stringify({type: 'track', anonymousId: 'refused-visitor', event: 'X', writeKey: key})});
                return false;
            } catch (e) { return true; }
        }""",
        [ctx.base, ctx.write_key],
    )
    assert refused, "a disallowed origin's request must fail in the browser"
    time.sleep(1)
    status, _ = ctx.api("GET", "/api/v1/contacts/lookup?anonymous_id=refused-visitor")
    assert status == 404, "nothing stored for a refused origin"

    # The owner's Settings › Website: the key's origins, a bad one refused at its box
    # and nothing changed, and the snippet to paste.
    owner = ctx.page("owner")
    owner.goto(ctx.base + "/settings#website")
    box = owner.locator(f"#origins-{key['id']}")
    assert box.input_value().strip() == allowed, box.input_value()
    box.fill(allowed + "\nshop.example/path")
    owner.locator(f"form[data-key='{key['id']}'] button.primary").click()
    owner.wait_for_load_state("networkidle")
    assert owner.locator(f"#origins-{key['id']}[aria-invalid='true']").count() == 1
    assert "not an origin" in owner.inner_text("#website .field-error")
    status, keys = ctx.api("GET", "/api/v1/keys")
    assert next(k for k in keys["data"] if k["id"] == key["id"])["allowed_origins"] == [allowed]
    assert "/analytics.js/v1/" in owner.inner_text("#snippet")
    owner.locator("#website").scroll_into_view_if_needed()
    ctx.shot(owner, "settings-website")
