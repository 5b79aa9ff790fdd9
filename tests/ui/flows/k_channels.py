"""Settings › Channels: e-mail configured with the form to point at the test's real
SMTP server (a wrong sender refused at its field), a test e-mail accepted and
received, a refused recipient shows the server's 550; SMS configured for a local
Twilio-like API that records requests (the token never shown back, kept when left
empty), a test SMS sent; a template's "Send a test" through the SMTP server with a
"[Test]" subject; the page in Persian; analysts see the channels read-only; both
channels go back to the server's settings at the end."""

import base64
import http.server
import threading
import urllib.parse
import uuid

from playwright.sync_api import expect


class Provider(http.server.BaseHTTPRequestHandler):
    """A Twilio-compatible SMS API that records what it is sent."""

    requests = []

    def do_GET(self):  # noqa: N802 (the health check reads the account)
        answer = b'{"sid": "ACuitest", "status": "active"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_POST(self):  # noqa: N802 (the name http.server calls)
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        Provider.requests.append({
            "path": self.path,
            "authorization": self.headers.get("authorization"),
            "form": urllib.parse.parse_qs(body),
        })
        answer = b'{"sid": "SMtest1", "status": "queued"}'
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def subject(mail):
    return next(v for k, v in mail["headers"] if k.lower() == "subject")


def run(ctx):
    provider = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    page = ctx.page("owner")
    try:
        configure_and_test(ctx, page, provider)
    finally:
        # Back to the server's settings (capture), whatever happened.
        for kind in ["email", "sms"]:
            page.goto(ctx.base + "/settings/channels")
            if page.locator(f"#{kind}-reset").count():
                page.click(f"#{kind}-reset")
                page.wait_for_load_state("networkidle")
        provider.shutdown()
    status, channels = ctx.api("GET", "/api/v1/channels")
    assert {c["kind"]: c["transport"] for c in channels["data"]}["email"] == "capture", channels


def configure_and_test(ctx, page, provider):
    page.goto(ctx.base + "/settings")
    page.click(".tabs a[href='/settings/channels']")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#email")).to_contain_text("capture")
    expect(page.locator("#vapid-key")).not_to_be_empty()
    ctx.shot(page, "channels")

    # A test through the capture channel: nothing leaves, and the page says so.
    page.fill("#email-test-to", "someone@ui-test.example")
    page.click("#email-test-send")
    expect(page.locator("#email-test-result")).to_contain_text("captures")

    # E-mail through the real SMTP server; a sender that is not an address first.
    page.check("#email-smtp")
    page.fill("#email-host", "127.0.0.1")
    page.fill("#email-port", str(ctx.smtp_port))
    page.select_option("#email-tls", "none")
    page.fill("#email-from-name", "Nudge UI test")
    page.fill("#email-from-address", "nobody")
    page.click("#email-save")
    page.wait_for_load_state("networkidle")
    error = page.locator("#email-from-address + .field-error")
    expect(error).to_contain_text("not an email address")
    ctx.shot(page, "channels-field-error")
    page.fill("#email-from-address", "shop@ui-test.example")
    page.click("#email-save")
    page.wait_for_load_state("networkidle")
    assert "saved=email" in page.url, page.url
    expect(page.locator("#email .channel-status")).to_contain_text("answers")
    expect(page.locator("#email")).to_contain_text(f"smtp://127.0.0.1:{ctx.smtp_port}")
    assert page.locator("#email-host").input_value() == "127.0.0.1"

    before = len(list(ctx.mail_dir.glob("*.json")))
    to = f"ui-{uuid.uuid4().hex[:6]}@ui-test.example"
    page.fill("#email-test-to", to)
    page.click("#email-test-send")
    result = page.locator("#email-test-result")
    expect(result).to_contain_text("Accepted by")
    expect(result).to_contain_text("smtp")
    mail = ctx.mails(before + 1)[-1]
    assert mail["rcpt_tos"] == [to] and subject(mail) == "Test message from Nudge", mail["headers"]
    # The sink refuses recipients named bounce…: the server's answer is shown.
    page.fill("#email-test-to", "bounce@ui-test.example")
    page.click("#email-test-send")
    expect(result).to_contain_text("refused the recipient")
    expect(result.locator("pre")).to_contain_text("550")
    ctx.shot(page, "channels-email-test")

    # SMS through the recording provider; the token is never shown back.
    base_url = f"http://127.0.0.1:{provider.server_address[1]}"
    page.check("#sms-twilio")
    page.fill("#sms-base-url", base_url)
    page.fill("#sms-account", "ACuitest")
    page.fill("#sms-token", "s3cret-token")
    page.fill("#sms-from", "+15550001111")
    page.click("#sms-save")
    page.wait_for_load_state("networkidle")
    assert "saved=sms" in page.url, page.url
    expect(page.locator("#sms-token-set")).to_be_visible()
    expect(page.locator("#sms .channel-status")).to_contain_text("answers")
    assert page.locator("#sms-token").input_value() == ""
    assert "s3cret-token" not in page.content()
    # Saved again without a token: the stored one is kept.
    page.fill("#sms-from", "+15550002222")
    page.click("#sms-save")
    page.wait_for_load_state("networkidle")
    page.fill("#sms-test-to", "+1 555 000 3333")
    page.click("#sms-test-send")
    expect(page.locator("#sms-test-result")).to_contain_text("Accepted by")
    sent = Provider.requests[-1]
    assert sent["path"] == "/2010-04-01/Accounts/ACuitest/Messages.json", sent
    assert sent["form"]["To"] == ["+15550003333"] and sent["form"]["From"] == ["+15550002222"], sent
    assert sent["authorization"] == "Basic " + base64.b64encode(b"ACuitest:s3cret-token").decode(), sent
    ctx.shot(page, "channels-configured")

    # The same page in Persian, right to left.
    page.select_option("#lang", "fa")
    page.wait_for_selector('html[lang="fa"]')
    assert page.locator("html").get_attribute("dir") == "rtl"
    expect(page.locator("h1")).to_have_text("کانال‌ها")
    ctx.shot(page, "channels-fa")
    page.select_option("#lang", "en")
    page.wait_for_selector('html[lang="en"]')

    # A template's test goes through the SMTP server now, its subject marked.
    status, templates = ctx.api("GET", "/api/v1/templates")
    email = next(t for t in templates["data"] if t["channel"] == "email")
    page.goto(ctx.base + f"/templates/{email['id']}")
    page.fill("#test_to", "template-test@ui-test.example")
    before = len(list(ctx.mail_dir.glob("*.json")))
    page.click("#send-test")
    expect(page.locator("#test-result")).to_contain_text("Accepted by")
    mail = ctx.mails(before + 1)[-1]
    assert mail["rcpt_tos"] == ["template-test@ui-test.example"], mail["rcpt_tos"]
    assert subject(mail).startswith("[Test] "), subject(mail)
    ctx.shot(page, "template-test-sent")

    # Analysts see the channels, not the forms.
    analyst = ctx.page("analyst", key="channels-analyst")
    analyst.goto(ctx.base + "/")
    analyst.click("#channels h2 a")
    analyst.wait_for_load_state("networkidle")
    expect(analyst.locator("#email")).to_contain_text("smtp")
    assert analyst.locator("#email-form, #sms-form, #email-test-form").count() == 0
    ctx.shot(analyst, "channels-analyst")
    resp = analyst.request.post(ctx.base + "/settings/channels/email/test", form={
        "_csrf": analyst.locator("body").get_attribute("data-csrf"), "to": "x@ui-test.example"})
    assert resp.status == 403, resp.status
