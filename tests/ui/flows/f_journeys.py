"""Journeys in the browser: create a journey (event trigger, wait, send) through the
UI, validate and publish it, send its trigger event for three contacts, and watch the
per-step numbers on the diagram change without reloading (htmx polls every 5 s);
open a step in the inspector; then see the page right to left in Persian.

Contract (tests/ui harness): ``ctx.base``, ``ctx.page(role)``, ``ctx.shot(page,
name)``, ``ctx.api(method, path, json=None) -> (status, json)``, ``ctx.track(body)``.
"""

import json
import re
import time
import uuid

WAIT_FOR_NUMBERS_S = 20

# Fluent wraps numbers in Unicode isolation marks (FSI ... PDI).
ISOLATES = re.compile("[\u2068\u2069]")


def _step_text(page, step):
    texts = page.locator(f'#live [data-step="{step}"] text.extra').all_text_contents()
    return ISOLATES.sub("", " | ".join(texts))


def _wait_for(page, step, wanted, timeout_s):
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline:
        seen = _step_text(page, step)
        if wanted in seen:
            return seen
        page.wait_for_timeout(500)
    raise AssertionError(f"step {step!r} never showed {wanted!r} within {timeout_s} s; last: {seen!r}")


def run(ctx):
    tag = uuid.uuid4().hex[:8]
    event = f"UI Flow Signed Up {tag}"
    template = f"ui-flow-welcome-{tag}"
    status, body = ctx.api(
        "POST",
        "/api/v1/templates",
        json={
            "name": template,
            "transactional": True,
            "content": {"channel": "email", "subject": "Welcome", "html": "<p>Hello</p>"},
        },
    )
    assert status == 201, (status, body)

    definition = {
        "trigger": {"type": "event", "event": event},
        "start": "wait",
        "steps": [
            # Three seconds (a duration in milliseconds): long enough to be seen waiting.
            {"id": "wait", "type": "wait", "duration": 3000, "next": "hello"},
            {"id": "hello", "type": "send", "template": template},
        ],
    }

    page = ctx.page(role="owner")
    page.goto(f"{ctx.base}/journeys")
    page.click("#new-journey")
    page.wait_for_url(re.compile(r"/journeys/new"))
    page.fill("#name", f"UI flow {tag}")
    page.fill("#definition", json.dumps(definition, indent=2))

    # Validate (htmx): the draft is drawn below the editor, with no problem.
    page.click("button[value=validate]")
    page.wait_for_selector("#check p.good")
    assert page.locator('#check svg [data-step="wait"]').count() == 1
    ctx.shot(page, "journeys-new-validated")

    page.click("button[value=save]")
    page.wait_for_url(re.compile(r"/journeys/\d+$"))
    journey_url = page.url
    assert page.locator("#journey-status").inner_text().strip() == "draft"

    # Publish (the form asks first).
    # The harness accepts the confirmation (form[data-confirm]).
    page.click("form.action-publish button")
    page.wait_for_load_state()
    assert page.locator("#journey-status").inner_text().strip() == "live"
    assert page.locator("#live[hx-trigger]").count() == 1, "a live journey's numbers refresh"
    before = _step_text(page, "wait")
    assert "reached 0" in before, before

    for i in range(3):
        ctx.track({"userId": f"ui-flow-{tag}-{i}", "event": event, "properties": {"n": i}})

    # The numbers change on the page as it stands (htmx polling, no reload).
    _wait_for(page, "wait", "reached 3", WAIT_FOR_NUMBERS_S)
    _wait_for(page, "hello", "reached 3", WAIT_FOR_NUMBERS_S)
    assert page.url == journey_url
    assert ISOLATES.sub("", page.locator("#stat-entered").inner_text()).strip() == "3"
    ctx.shot(page, "journeys-live-numbers")

    # A click on a step opens it in the inspector.
    page.click('#live [data-step="hello"]')
    page.wait_for_selector("#inspector .step-id")
    assert page.locator("#inspector .step-id").inner_text() == "hello"
    assert "step=hello" in page.url
    ctx.shot(page, "journeys-inspector")

    # Right to left: Persian, mirrored diagram, Persian digits.
    page.select_option("#lang", "fa")
    page.wait_for_load_state()
    page.wait_for_selector('html[dir="rtl"]')
    assert page.locator('#live svg [data-step="wait"]').count() == 1
    assert "۳" in _step_text(page, "wait"), _step_text(page, "wait")
    ctx.shot(page, "journeys-live-numbers-fa")
    page.select_option("#lang", "en")
    page.wait_for_selector('html[dir="ltr"]')
