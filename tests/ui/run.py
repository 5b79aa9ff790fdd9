"""Browser tests of Nudge's web UI: Playwright driving Debian's Chromium (never a
downloaded browser) against a running `nudge demo`.

Run by crates/nudge/tests/ui.rs, which starts the server and passes, in the
environment: NUDGE_UI_BASE (URL), NUDGE_UI_OWNER_EMAIL, NUDGE_UI_OWNER_PASSWORD,
NUDGE_UI_ADMIN_KEY, NUDGE_UI_WRITE_KEY, NUDGE_UI_SHOTS (where screenshots go),
NUDGE_UI_CHROMIUM (the browser), NUDGE_UI_SMTP_PORT and NUDGE_UI_MAIL_DIR (a real
SMTP server on 127.0.0.1 and where it writes what it receives, one JSON file per
e-mail: tests/smtp/sink.py), and optionally NUDGE_UI_FLOWS (comma-separated flow
names; all of tests/ui/flows/*.py otherwise).

Each flow is a module in flows/ with `run(ctx)`; it fails by raising. The harness
prints one line per flow and exits non-zero if any failed.
"""

import base64
import importlib.util
import json
import os
import pathlib
import sys
import time
import traceback
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

HERE = pathlib.Path(__file__).resolve().parent
PASSWORD = "correct horse battery staple"
# Users made for the run, shared by every flow: key -> (email, password).
USERS = {}


class Ctx:
    def __init__(self, pw, browser):
        self.base = os.environ["NUDGE_UI_BASE"].rstrip("/")
        self.owner_email = os.environ["NUDGE_UI_OWNER_EMAIL"]
        self.owner_password = os.environ["NUDGE_UI_OWNER_PASSWORD"]
        self.admin_key = os.environ["NUDGE_UI_ADMIN_KEY"]
        self.write_key = os.environ["NUDGE_UI_WRITE_KEY"]
        self.shots = pathlib.Path(os.environ["NUDGE_UI_SHOTS"])
        self.smtp_port = int(os.environ["NUDGE_UI_SMTP_PORT"])
        self.mail_dir = pathlib.Path(os.environ["NUDGE_UI_MAIL_DIR"])
        self.shots.mkdir(parents=True, exist_ok=True)
        self.pw = pw
        self.browser = browser
        USERS.setdefault("owner", (self.owner_email, self.owner_password))
        self.users = USERS
        # Alerts and prompts seen (an injected script would show here); confirmations
        # (`form[data-confirm]`) are accepted.
        self.dialogs = []
        self._contexts = []

    def new_context(self):
        context = self.browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
        context.set_default_timeout(15000)
        self._contexts.append(context)
        return context

    def sign_in(self, page, email, password):
        page.goto(self.base + "/sign-in")
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")

    def page(self, role="owner", key=None):
        """A new browser (context) signed in as a user of `role` (one per `key`,
        which defaults to the role)."""
        key = key or role
        if key not in self.users:
            self.make_user(role, key)
        email, password = self.users[key]
        page = self.new_context().new_page()
        page.on("dialog", self._dialog)
        self.sign_in(page, email, password)
        assert "/sign-in" not in page.url, f"signing in as {email} failed: {page.url}"
        # Every flow starts in English, whatever an earlier flow chose.
        if page.locator("html").get_attribute("lang") != "en":
            page.select_option("#lang", "en")
            page.wait_for_selector('html[lang="en"]')
        return page

    def _dialog(self, dialog):
        if dialog.type == "confirm":
            dialog.accept()
        else:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

    def make_user(self, role, key=None):
        """Creates a user of `role` through the owner's Users page."""
        key = key or role
        owner = self.page("owner")
        email = f"{key}@ui-test.example"
        owner.goto(self.base + "/settings/users")
        owner.fill("#new-email", email)
        owner.select_option("#new-role", role)
        owner.fill("#new-password", PASSWORD)
        owner.click("form[action='/settings/users'] button.primary")
        owner.wait_for_load_state("networkidle")
        assert email in owner.content(), f"user {email} not listed after creation"
        self.users[key] = (email, PASSWORD)
        owner.context.close()

    def shot(self, page, name):
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def _request(self, method, path, body, headers):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        if data is not None:
            req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                text = resp.read().decode()
                return resp.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            return e.code, (json.loads(text) if text.startswith("{") else text)

    def api(self, method, path, json=None):  # noqa: A002 (the name the flows use)
        """The admin API with the admin key: (status, body)."""
        return self._request(method, path, json, {"authorization": f"Bearer {self.admin_key}"})

    def track(self, body, kind="track"):
        """A Segment call (`track`, `identify`, ...) with the write key."""
        auth = base64.b64encode(f"{self.write_key}:".encode()).decode()
        status, out = self._request("POST", f"/v1/{kind}", body, {"authorization": f"Basic {auth}"})
        assert status == 200, f"/v1/{kind} answered {status}: {out}"
        return out

    def mails(self, count, timeout=15):
        """The e-mails the SMTP server has received (oldest first), once it has at
        least `count`: each a dict with rcpt_tos, headers ([name, value] pairs) and
        parts (tests/smtp/sink.py)."""
        deadline = time.monotonic() + timeout
        while True:
            files = sorted(self.mail_dir.glob("*.json"), key=lambda p: int(p.stem))
            if len(files) >= count:
                return [json.loads(p.read_text()) for p in files]
            assert time.monotonic() < deadline, f"expected {count} e-mails, the SMTP server has {len(files)}"
            time.sleep(0.1)

    def close(self):
        for c in self._contexts:
            try:
                c.close()
            except Exception:
                pass


def flows():
    wanted = [f for f in os.environ.get("NUDGE_UI_FLOWS", "").split(",") if f]
    found = sorted(p.stem for p in (HERE / "flows").glob("*.py") if not p.stem.startswith("_"))
    return wanted or found


def load(name):
    spec = importlib.util.spec_from_file_location(f"flows.{name}", HERE / "flows" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    failed = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=os.environ.get("NUDGE_UI_CHROMIUM", "/usr/bin/chromium"),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        for name in flows():
            ctx = Ctx(pw, browser)
            try:
                load(name).run(ctx)
                print(f"ok      {name}", flush=True)
            except Exception:
                failed.append(name)
                print(f"FAILED  {name}\n{traceback.format_exc()}", flush=True)
            finally:
                ctx.close()
        browser.close()
    print(f"screenshots in {os.environ['NUDGE_UI_SHOTS']}")
    if failed:
        print(f"{len(failed)} flow(s) failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
