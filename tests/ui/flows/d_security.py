"""Security: CSRF, roles, sign-in lockout, and escaping of what contacts send."""

import uuid


def run(ctx):
    base = ctx.base
    owner = ctx.page("owner")

    # A state-changing POST with the session cookie but without the CSRF token.
    r = owner.request.post(base + "/settings/users", form={"email": "x@csrf.example", "role": "analyst", "password": "0123456789ab"})
    assert r.status == 403, f"POST without CSRF token: {r.status}"
    # ... and with a wrong token.
    r = owner.request.post(base + "/settings/users", form={"_csrf": "0" * 64, "email": "x@csrf.example", "role": "analyst", "password": "0123456789ab"})
    assert r.status == 403, f"POST with a wrong CSRF token: {r.status}"
    # ... and from another site, even with the right token.
    token = owner.locator("body").get_attribute("data-csrf")
    r = owner.request.post(base + "/settings/users", headers={"origin": "https://evil.example"},
                           form={"_csrf": token, "email": "x@csrf.example", "role": "analyst", "password": "0123456789ab"})
    assert r.status == 403, f"cross-site POST: {r.status}"
    owner.goto(base + "/settings/users")
    assert "x@csrf.example" not in owner.content(), "nothing was created"

    # An analyst reads but cannot manage users (nor, on their pages, publish or delete).
    analyst = ctx.page("analyst")
    analyst.goto(base + "/contacts")
    assert analyst.locator("#contacts tbody tr").count() > 0
    assert analyst.locator("nav a[href='/settings/users']").count() == 0, "no settings entry for analysts"
    r = analyst.goto(base + "/settings/users")
    assert r.status == 403, f"analyst on the users page: {r.status}"
    analyst.goto(base + "/contacts")
    token = analyst.locator("body").get_attribute("data-csrf")
    r = analyst.request.post(base + "/settings/users", form={"_csrf": token, "email": "y@x.example", "role": "owner", "password": "0123456789ab"})
    assert r.status == 403, f"analyst creating a user: {r.status}"

    # Sign-in lockout: after 5 failures for an account, even the right password is refused
    # for a while, with the same page for unknown and known accounts.
    ctx.make_user("analyst", "lockout")
    page = ctx.new_context().new_page()
    victim = ctx.users["lockout"][0]
    for i in range(5):
        ctx.sign_in(page, victim, f"wrong password {i}")
        assert page.locator("#sign-in-error").count() == 1
    ctx.sign_in(page, "nobody@ui-test.example", "wrong password")
    wrong_text = page.locator("#sign-in-error").inner_text()
    assert "Wrong" in wrong_text, wrong_text
    ctx.sign_in(page, victim, ctx.users["lockout"][1])
    assert "/sign-in" in page.url, "a locked account cannot sign in even with its password"
    locked = page.locator("#sign-in-error").inner_text()
    assert "Too many" in locked, locked
    ctx.shot(page, "sign-in-locked")

    # Escaping: a trait and an event name a contact sends show as text.
    evil = "<script>alert(1)</script>"
    user = f"xss-{uuid.uuid4().hex[:8]}"
    ctx.track({"userId": user, "traits": {"name": evil, "email": f"{user}@x.example", "nickname": f"<img src=x onerror=alert(2)>"}}, kind="identify")
    ctx.track({"userId": user, "event": evil, "properties": {evil: evil}})
    owner.goto(base + f"/contacts?q={user}")
    owner.wait_for_load_state("networkidle")
    assert owner.locator("#contacts tbody tr").count() == 1, "the new contact is found"
    assert evil in owner.locator("#contacts").inner_text()
    owner.locator("#contacts tbody tr a").first.click()
    owner.wait_for_load_state("networkidle")
    assert owner.locator("#contact-name").inner_text().strip() == evil
    owner.locator("#timeline li.event summary").first.click()
    assert evil in owner.locator("#timeline").inner_text()
    assert owner.locator("script:not([src])").count() == 0, "no inline script on the page"
    ctx.shot(owner, "contact-xss")

    # ... and in the message log: a message whose subject carries the trait.
    tpl = f"xss-{user}"
    status, body = ctx.api("POST", "/api/v1/templates", json={
        "name": tpl, "transactional": True,
        "content": {"channel": "email", "subject": "Hi {{ contact.traits.name }}", "html": "<p>{{ contact.traits.nickname }}</p>"}})
    assert status == 201, body
    status, sent = ctx.api("POST", "/api/v1/messages", json={"template": tpl, "to": {"user_id": user}})
    assert status in (200, 201, 202), sent
    owner.goto(base + f"/messages?template={body['id']}")
    owner.wait_for_load_state("networkidle")
    assert owner.locator("#messages tbody tr").count() == 1
    for _ in range(30):
        if evil in owner.locator("#messages").inner_text():
            break
        owner.wait_for_timeout(500)
        owner.reload()
    assert evil in owner.locator("#messages").inner_text(), "the rendered subject shows as text"
    owner.locator("#messages tbody tr a").first.click()
    owner.wait_for_load_state("networkidle")
    assert evil in owner.locator("#message-content").inner_text()
    assert owner.locator("script:not([src])").count() == 0
    ctx.shot(owner, "message-xss")
    assert not ctx.dialogs, f"a script ran: {ctx.dialogs}"
