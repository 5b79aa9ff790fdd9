"""Flow 4: edit a template and see the preview change; an error shows at its field
and line; saving makes a version whose changes the diff shows; "Send a test" through
the demo's capture channel says nothing left the server (k_channels sends one
through a real SMTP server)."""

import uuid

from playwright.sync_api import expect


def run(ctx):
    page = ctx.page("owner")
    page.click("nav a[href='/templates']")
    page.wait_for_load_state("networkidle")
    assert page.locator("#templates tbody tr").count() >= 1, "the demo has templates"
    page.click("a[href='/templates/new?channel=email']")
    page.wait_for_load_state("networkidle")
    name = f"Spring sale {uuid.uuid4().hex[:6]}"
    page.fill("#name", name)
    # The preview renders the starting point with the sample data (Ada).
    page.wait_for_selector("#preview-subject")
    assert "Ada" in page.locator("#preview-subject").inner_text()
    page.fill("#subject", "Spring sale for {{ contact.traits.first_name }} — 20% off")
    expect(page.locator("#preview-subject")).to_contain_text("20% off")
    assert "Spring sale for Ada" in page.locator("#preview-subject").inner_text()
    frame = page.frame_locator("iframe.mail")
    frame.locator("body").wait_for()
    assert "Visit the shop" in frame.locator("body").inner_text(), "the MJML renders in the frame"
    # Preview as a demo contact instead of the sample.
    status, contacts = ctx.api("GET", "/api/v1/contacts?limit=1")
    assert status == 200, contacts
    email = contacts["data"][0]["email"]
    first = contacts["data"][0]["traits"].get("first_name", "")
    page.fill("#preview_as", email)
    expect(page.locator("#preview-subject")).to_contain_text(first)
    page.check("#w-mobile")
    ctx.shot(page, "template-editor-mobile")
    page.check("#w-desktop")
    # A Liquid error is reported by the preview, and saving shows it at its field and line.
    body = page.locator("#body").input_value()
    page.fill("#body", body.replace("Write your message here.", "{% if %}broken"))
    page.wait_for_selector("#preview-errors")
    assert "line" in page.locator("#preview-errors").inner_text()
    page.click("#save")
    page.wait_for_load_state("networkidle")
    assert page.locator("#body-error").count() == 1, "the error sits under the body field"
    assert "line" in page.locator("#body-error").inner_text()
    ctx.shot(page, "template-error")
    page.fill("#body", body)
    page.click("#save")
    page.wait_for_load_state("networkidle")
    assert "?saved=1" in page.url, page.url
    # A second version, then the diff between them.
    page.fill("#subject", "Spring sale: {{ contact.traits.first_name }}, 30% off")
    page.click("#save")
    page.wait_for_load_state("networkidle")
    # A test to an address: refused at once when it is not one, else sent.
    page.fill("#test_to", "not an address")
    page.click("#send-test")
    expect(page.locator("#test-result .field-error")).to_contain_text("not an e-mail address")
    page.fill("#test_to", "me@ui-test.example")
    page.click("#send-test")
    expect(page.locator("#test-result")).to_contain_text("captures")
    ctx.shot(page, "template-test")
    page.click("a[href$='/versions']")
    page.wait_for_load_state("networkidle")
    diff = page.locator("#diff")
    assert "- Spring sale for" in diff.inner_text() and "+ Spring sale: " in diff.inner_text(), diff.inner_text()
    ctx.shot(page, "template-diff")
