"""Lead scoring in the UI: a marketer defines stages for lead_score and creates a
rule with the form (a bad value is refused at its field); an event sent to the
tracking API then gives the points, and the contact's page shows the score, its
stage and the history with the rule's name. An analyst sees the page but no forms."""

import uuid


def run(ctx):
    tag = uuid.uuid4().hex[:8]
    event = f"Demo Requested {tag}"
    page = ctx.page("marketer")
    page.goto(f"{ctx.base}/scoring")
    assert page.locator("h1").inner_text().strip() == "Lead scoring"

    # Stages for the default score.
    page.fill("#score-name", "lead_score")
    page.fill("#score-half-life", "")
    page.fill("#score-stages", "cold; warm 20; hot 50")
    page.click("#score-form button.primary")
    page.wait_for_load_state("networkidle")
    assert page.locator("#scores tr[data-score=lead_score]").count() == 1, page.content()

    # A rule with 0 points is refused, at its field.
    page.fill("#rule-name", f"Demo request {tag}")
    page.fill("#rule-points", "0")
    page.select_option("#rule-trigger", "event")
    page.fill("#rule-target", event)
    page.select_option("#rule-frequency", "once")
    page.click("#save-rule")
    page.wait_for_load_state("networkidle")
    assert page.locator("#rule-points[aria-invalid=true]").count() == 1, page.content()
    ctx.shot(page, "scoring-rule-error")
    page.fill("#rule-points", "60")
    page.click("#save-rule")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/scoring"), page.url
    row = page.locator("#rules-table tr", has_text=f"Demo request {tag}")
    assert row.count() == 1, page.content()
    assert "+60" in row.inner_text(), row.inner_text()
    ctx.shot(page, "scoring")

    user = f"scored-{tag}"
    ctx.track({"userId": user, "traits": {"email": f"{user}@x.example"}}, kind="identify")
    ctx.track({"userId": user, "event": event}, kind="track")
    status, found = ctx.api("GET", f"/api/v1/contacts/lookup?user_id={user}")
    assert status == 200, found
    cid = found["id"]
    page.goto(f"{ctx.base}/contacts/{cid}")
    score = page.locator("#scores tr[data-score=lead_score]")
    assert "60" in score.locator(".score-value").inner_text(), score.inner_text()
    assert "hot" in score.inner_text(), score.inner_text()
    history = page.locator("#score-history").inner_text()
    assert f"Demo request {tag} (+60)" in history, history
    ctx.shot(page, "contact-scores")

    analyst = ctx.page("analyst")
    analyst.goto(f"{ctx.base}/scoring")
    assert analyst.locator("#rule-form").count() == 0 and analyst.locator("#score-form").count() == 0
    token = analyst.locator("body").get_attribute("data-csrf")
    r = analyst.request.post(f"{ctx.base}/scoring/rules", form={"_csrf": token, "name": "x", "points": "5"})
    assert r.status == 403, r.status
