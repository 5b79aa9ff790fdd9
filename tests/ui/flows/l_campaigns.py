"""Campaigns in the browser: a marketer builds a campaign with two variants and a
50 % A/B test in the editor (the live audience count, a variant's preview, the
application's error at a bad test share), saves and sends it now, picks the winner
while the test runs, and watches the progress reach "completed" (the demo's capture
e-mail channel delivers); opens and clicks arrive through the tracking links; the
report shows the variant table, the holdout with its conversions and each variant's
lift over it, clicks per link and the charts; an analyst sees no Send button; the
report in Persian; the workspace report.

Contract (tests/ui harness): ``ctx.base``, ``ctx.page(role, key)``, ``ctx.shot(page,
name)``, ``ctx.api(method, path, json=None) -> (status, json)``, ``ctx.track(body)``.
"""

import re
import time
import urllib.error
import urllib.request
import uuid

from playwright.sync_api import expect

AUDIENCE = 20
HOLDOUT = 25
LINK = "https://shop.example/spring"
# Fluent wraps values in Unicode isolation marks (FSI ... PDI).
ISOLATES = re.compile("[\u2068\u2069]")


def _setup(ctx, tag):
    """Two marketing e-mail templates and a segment of eight new contacts."""
    ids = []
    for v in ("A", "B"):
        status, body = ctx.api("POST", "/api/v1/templates", json={
            "name": f"ui-campaign-{v.lower()}-{tag}",
            "content": {"channel": "email", "subject": f"Spring {v} {tag}",
                        "html": f'<p>Spring {v}</p><p><a href="{LINK}">Shop the sale</a></p>'},
        })
        assert status == 201, (status, body)
        ids.append(body["id"])
    ctx.track({"batch": [
        {"type": "identify", "userId": f"campaign-{tag}-{i}",
         "traits": {"email": f"campaign-{tag}-{i}@ui-test.example", "campaign_flow": tag}}
        for i in range(AUDIENCE)
    ]}, kind="batch")
    status, segment = ctx.api("POST", "/api/v1/segments", json={
        "name": f"Spring audience {tag}",
        "definition": {"type": "trait", "trait": "campaign_flow", "op": "equals", "value": tag},
    })
    assert status == 201, (status, segment)
    return ids, segment["id"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A click answers with a redirect to the shop, which is not reachable here."""

    def redirect_request(self, *args, **kwargs):
        return None


def _open_and_click(ctx, template_ids):
    """Opens every captured message and clicks its link once, through the tracking
    URLs the deliverer put in it."""
    opener = urllib.request.build_opener(_NoRedirect)
    hits = messages = 0
    for template in template_ids:
        status, page = ctx.api("GET", f"/api/v1/messages?template_id={template}&limit=50")
        assert status == 200, (status, page)
        for m in page["data"]:
            messages += 1
            html = (m.get("rendered") or {}).get("html") or ""
            for path in re.findall(r"/t/[oc]/[^\"'<>\s]+", html):
                try:
                    opener.open(ctx.base + path.replace("&amp;", "&"), timeout=10).close()
                except urllib.error.HTTPError as e:
                    assert e.code in (302, 303, 307), (path, e.code)
                hits += 1
    assert messages > 0 and hits >= 2 * messages, f"expected an open and a click per message, made {hits} requests"


def _held_out(ctx, tag, template_ids):
    """The user ids of the audience that got no message (the holdout)."""
    got = set()
    for template in template_ids:
        status, page = ctx.api("GET", f"/api/v1/messages?template_id={template}&limit=100")
        assert status == 200, (status, page)
        got.update(m["contact_id"] for m in page["data"])
    held = []
    for i in range(AUDIENCE):
        user = f"campaign-{tag}-{i}"
        status, contact = ctx.api("GET", f"/api/v1/contacts/lookup?user_id={user}")
        assert status == 200, (status, contact)
        if contact["id"] not in got:
            held.append(user)
    return held


def run(ctx):
    tag = uuid.uuid4().hex[:8]
    templates, segment = _setup(ctx, tag)
    name = f"Spring sale <b>{tag}</b>"

    page = ctx.page("marketer")
    page.goto(ctx.base + "/campaigns")
    page.click("#new-campaign")
    page.wait_for_url("**/campaigns/new")
    page.fill("#campaign-name", name)
    page.check(f"input[name='audience.segments'][value='{segment}']")
    # The live audience size follows the checkbox (debounced, htmx).
    expect(page.locator("#audience-count")).to_have_attribute("data-count", str(AUDIENCE))
    page.select_option("select[name='variants[0].template']", str(templates[0]))
    page.click("#add-variant")
    page.wait_for_selector("select[name='variants[1].template']")
    page.select_option("select[name='variants[1].template']", str(templates[1]))
    page.click("#preview-1")
    expect(page.locator("#variant-preview #preview-subject")).to_contain_text(f"Spring B {tag}")
    frame = page.frame_locator("#variant-preview iframe.mail")
    expect(frame.locator("body")).to_contain_text("Shop the sale")
    page.locator("#variant-preview iframe.mail").scroll_into_view_if_needed()
    ctx.shot(page, "campaign-editor-preview")
    page.fill("input[name='holdout']", str(HOLDOUT))
    page.check("#test-on")
    page.fill("#test-share", "150")
    page.click("#save-campaign")
    # The application's problem, next to the share's field.
    expect(page.locator("#campaign-problems")).to_be_visible()
    expect(page.locator("input[name='test.share'][aria-invalid='true']")).to_have_count(1)
    expect(page.locator("#test .field-error")).to_contain_text("a percent of the audience from 1 to 100")
    ctx.shot(page, "campaign-editor-error")
    page.fill("#test-share", "50")
    page.click("#save-campaign")
    page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
    campaign = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#campaign-status")).to_have_attribute("data-status", "draft")
    expect(page.locator("#campaign-title")).to_contain_text(f"<b>{tag}</b>")
    assert page.locator("#campaign-title b").count() == 0, "the name is escaped"
    ctx.shot(page, "campaign-draft")

    # An analyst reads the draft and has no Send button.
    analyst = ctx.page("analyst", key="campaigns-analyst")
    analyst.goto(f"{ctx.base}/campaigns/{campaign}")
    expect(analyst.locator("#campaign-title")).to_contain_text(tag)
    assert analyst.locator("#send-campaign").count() == 0
    assert analyst.locator("#edit-campaign, #delete-campaign").count() == 0
    ctx.shot(analyst, "campaign-analyst")

    # Sent now: the test share gets its variants; the marketer picks B while the test
    # runs; the rest of the audience gets B and the campaign completes.
    page.check("input[name='schedule'][value='now']")
    page.click("#send-campaign")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#pick-winner")).to_be_visible(timeout=20000)
    ctx.shot(page, "campaign-sending")
    page.select_option(".pick-winner select[name='variant']", "1")
    page.click("#pick-winner")
    expect(page.locator("#campaign-status")).to_have_attribute("data-status", "completed", timeout=30000)
    assert ISOLATES.sub("", page.inner_text("#progress-pending")) == "0"

    _open_and_click(ctx, templates)
    page.reload()
    report = page.locator("#variant-report")
    expect(report.locator("tbody tr[data-variant]")).to_have_count(2)
    expect(page.locator("#winner-mark")).to_be_visible()
    expect(page.locator("#decision")).to_contain_text("picked by")
    expect(page.locator("#hourly svg polyline.series")).to_have_count(3)
    assert page.locator("#hours-of-day svg rect.bar").count() == 48
    expect(page.locator("#domains")).to_contain_text("ui-test.example")
    number = lambda t: int(ISOLATES.sub("", t).replace(",", ""))  # noqa: E731
    recipients = sum(number(t) for t in report.locator("tbody tr[data-variant] td:nth-child(2)").all_inner_texts())
    held = _held_out(ctx, tag, templates)
    assert recipients + len(held) == AUDIENCE, (recipients, held)
    expect(page.locator("#links")).to_contain_text(LINK)
    if held:
        # A held-out contact and a recipient buy: the holdout's conversion is counted
        # (nothing was sent to attribute it to), and so is each variant's lift.
        assert number(page.inner_text("#holdout-row td:nth-child(2)")) == len(held)
        status, msgs = ctx.api("GET", f"/api/v1/messages?template_id={templates[1]}&limit=1")
        status, buyer = ctx.api("GET", f"/api/v1/contacts/{msgs['data'][0]['contact_id']}")
        ctx.track({"batch": [
            {"type": "track", "userId": user, "event": "Order Completed",
             "properties": {"revenue": revenue}}
            for user, revenue in ((held[0], 40), (buyer["user_id"], 60))
        ]}, kind="batch")
        # The campaign is over, so its page no longer refreshes itself: reload until
        # the engine has recorded the conversions (its round is about a second).
        deadline = time.monotonic() + 20
        while "40" not in page.inner_text("#holdout-row"):
            assert time.monotonic() < deadline, page.inner_text("#variant-report")
            time.sleep(0.5)
            page.reload()
        expect(report.locator("small.lift").first).to_be_visible()
    else:
        print("l_campaigns: the hash held out no one this run; holdout checks skipped")
    ctx.shot(page, "campaign-report")
    csv = page.request.get(f"{ctx.base}/campaigns/{campaign}/report.csv")
    assert csv.ok and csv.text().startswith("variant,name,"), csv.text()[:200]

    page.goto(ctx.base + "/campaigns")
    expect(page.locator(f"#campaigns tr[data-campaign='{campaign}']")).to_contain_text(tag)
    ctx.shot(page, "campaigns-list")
    page.goto(ctx.base + "/reports")
    expect(page.locator("#report-campaign")).to_contain_text(tag)
    ctx.shot(page, "reports")

    # Owners change the conversion settings; a window that is not a number is refused
    # at its field and nothing is saved.
    owner = ctx.page("owner")
    owner.goto(ctx.base + "/reports")
    before = owner.input_value("#engaged-window")
    owner.fill("#engaged-window", "a week")
    owner.click("#save-conversions")
    expect(owner.locator("#engaged-window[aria-invalid='true']")).to_have_count(1)
    expect(owner.locator("#conversions .field-error")).to_contain_text("whole number")
    ctx.shot(owner, "reports-conversions-error")
    status, settings = ctx.api("GET", "/api/v1/conversion-settings")
    assert status == 200 and settings["engaged_window"] == int(before) * 86_400_000, (before, settings)

    # The report in Persian, right to left.
    page.goto(f"{ctx.base}/campaigns/{campaign}")
    page.select_option("#lang", "fa")
    page.wait_for_selector('html[dir="rtl"]')
    expect(page.locator("nav a[href='/campaigns']")).to_have_text("کمپین‌ها")
    assert re.search("[۰-۹]", page.inner_text("#variant-report")), "Persian digits"
    ctx.shot(page, "campaign-report-fa")
    page.goto(ctx.base + "/campaigns/new")
    ctx.shot(page, "campaign-editor-fa")
    page.goto(ctx.base + "/reports")
    ctx.shot(page, "reports-fa")
    page.goto(ctx.base + "/")
    ctx.shot(page, "dashboard-fa")
    page.select_option("#lang", "en")
    page.wait_for_selector('html[dir="ltr"]')
