"""Settings: a new API key's secret is shown once and works; a frequency cap is saved;
the workspace's default language applies to users who chose none."""

import base64
import urllib.request
import uuid


def run(ctx):
    page = ctx.page("owner")
    page.click("nav a[href='/settings']")
    page.wait_for_load_state("networkidle")
    name = f"ui-key-{uuid.uuid4().hex[:6]}"
    page.select_option("#key-kind", "write")
    page.fill("#key-name", name)
    page.click("form[action='/settings/keys'] button")
    page.wait_for_load_state("networkidle")
    secret = page.locator("#new-secret pre").inner_text().strip()
    assert secret.startswith("nw_"), secret
    # The secret tracks ...
    auth = base64.b64encode(f"{secret}:".encode()).decode()
    req = urllib.request.Request(ctx.base + "/v1/track", method="POST",
                                 data=b'{"userId": "settings-flow", "event": "Key Tried"}',
                                 headers={"authorization": f"Basic {auth}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    ctx.shot(page, "settings-key-created")
    # ... and is never shown again.
    page.goto(ctx.base + "/settings")
    assert page.locator("#new-secret").count() == 0
    assert secret not in page.content()
    row = page.locator("#keys tr", has_text=name)
    row.locator("button.danger").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#keys tr.past", has_text=name).count() == 1, "revoked"

    # A frequency cap.
    caps = page.locator("#caps tbody tr")
    last = caps.nth(caps.count() - 1)
    last.locator("select[name=channel]").select_option("email")
    last.locator("input[name=max]").fill("3")
    last.locator("select[name=per]").select_option("week")
    page.click("#caps button.primary")
    page.wait_for_load_state("networkidle")
    status, body = ctx.api("GET", "/api/v1/frequency-caps")
    assert {"channel": "email", "max": 3, "per": "week"} in body["caps"], body
    # A cap that is not a number is refused at its field, and nothing changes.
    last = page.locator("#caps tbody tr").last
    last.locator("input[name=max]").fill("many")
    page.click("#caps button.primary")
    page.wait_for_load_state("networkidle")
    assert page.locator("#caps .field-error").count() == 1
    ctx.shot(page, "settings")

    # The workspace's default language: a new user without a choice of their own gets it.
    page.goto(ctx.base + "/settings")
    page.select_option("#locale", "he")
    page.click("#workspace button.primary")
    page.wait_for_load_state("networkidle")
    try:
        other = ctx.page("marketer", key="settings-marketer")
        other.goto(ctx.base + "/contacts")
        # ctx.page() switched this user to English; the workspace default shows once reset.
        other.request.post(ctx.base + "/me/language", form={
            "_csrf": other.locator("body").get_attribute("data-csrf"), "lang": "default", "back": "/contacts"})
        other.goto(ctx.base + "/contacts")
        assert other.locator("html").get_attribute("lang") == "he"
        assert other.locator("html").get_attribute("dir") == "rtl"
        ctx.shot(other, "contacts-he")
    finally:
        page.goto(ctx.base + "/settings")
        page.select_option("#locale", "en")
        page.click("#workspace button.primary")
        page.wait_for_load_state("networkidle")
