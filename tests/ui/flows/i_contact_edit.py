"""A marketer edits a contact's traits and subscriptions, then erases it (GDPR);
an analyst can do neither."""

import uuid


def run(ctx):
    user = f"edit-{uuid.uuid4().hex[:8]}"
    ctx.track({"userId": user, "traits": {"email": f"{user}@x.example", "plan": "free", "city": "Haifa"}}, kind="identify")
    status, found = ctx.api("GET", f"/api/v1/contacts/lookup?user_id={user}")
    assert status == 200, found
    cid = found["id"]

    analyst = ctx.page("analyst")
    analyst.goto(f"{ctx.base}/contacts/{cid}")
    assert analyst.locator("#edit-contact").count() == 0, "no edit link for analysts"
    token = analyst.locator("body").get_attribute("data-csrf")
    r = analyst.request.post(f"{ctx.base}/contacts/{cid}/edit", form={"_csrf": token, "key": "plan", "value": "pro"})
    assert r.status == 403, r.status
    r = analyst.request.post(f"{ctx.base}/contacts/{cid}/delete", form={"_csrf": token})
    assert r.status == 403, r.status

    page = ctx.page("marketer")
    page.goto(f"{ctx.base}/contacts/{cid}")
    page.click("#edit-contact")
    page.wait_for_load_state("networkidle")
    page.fill("input[aria-label='plan']", "pro")
    page.check("input[name=remove][value=city]")
    page.fill("#new-trait", "orders")
    page.fill("#new-value", "3")
    page.select_option("select[name='sub.email']", "unsubscribed")
    ctx.shot(page, "contact-edit")
    page.click("#save-contact")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/contacts/{cid}"), page.url
    traits = page.locator("#traits").inner_text()
    assert "pro" in traits and "Haifa" not in traits and "orders" in traits, traits
    status, c = ctx.api("GET", f"/api/v1/contacts/{cid}")
    assert c["traits"]["orders"] == 3 and c["traits"]["plan"] == "pro" and "city" not in c["traits"], c
    assert c["subscriptions"].get("email") == "unsubscribed", c

    page.click("#edit-contact")
    page.wait_for_load_state("networkidle")
    page.click("#erase-contact")  # the harness accepts the confirmation
    page.wait_for_load_state("networkidle")
    assert "/contacts?erased=1" in page.url, page.url
    status, _ = ctx.api("GET", f"/api/v1/contacts/{cid}")
    assert status == 404, status
