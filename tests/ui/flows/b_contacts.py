"""Flow 2: find a demo contact by part of its name and of its e-mail address, and open
its timeline (expand an event, load older events with htmx)."""

from playwright.sync_api import expect


def run(ctx):
    page = ctx.page("owner")
    page.click("nav a[href='/contacts']")
    page.wait_for_load_state("networkidle")
    rows = page.locator("#contacts tbody tr")
    assert rows.count() > 10, f"{rows.count()} contacts listed"
    # Search by part of the first contact's name, across its two words and in the
    # other case: "Ada Lovelace" -> "DA lOV" (no e-mail address or user id holds a space).
    name = rows.nth(0).locator("td").nth(0).inner_text().strip()
    first, last = name.split(" ", 1)
    part = f"{first[-2:]} {last[:3]}".swapcase()
    page.fill("#q", part)
    page.click("form.search button")
    page.wait_for_load_state("networkidle")
    found = page.locator("#contacts tbody tr")
    assert found.count() >= 1, f"searching {part!r} finds {name!r}"
    assert found.nth(0).locator("td").nth(0).inner_text().strip() == name, "the first contact, first"
    names = found.locator("td:first-child").all_inner_texts()
    assert all(part.lower() in n.lower() for n in names), f"{part!r} lists only names holding it: {names}"
    assert page.locator("#exact-match").count() == 0, "part of a name is no exact match"
    ctx.shot(page, "contacts-search-name")
    page.click("nav a[href='/contacts']")
    page.wait_for_load_state("networkidle")
    # Search by part of the first contact's e-mail address.
    email = rows.nth(0).locator("td").nth(1).inner_text().strip()
    assert "@" in email, email
    page.fill("#q", email.split("@")[0])
    page.click("form.search button")
    page.wait_for_load_state("networkidle")
    assert page.locator("#contacts tbody tr").count() >= 1
    ctx.shot(page, "contacts-search")
    page.locator("#contacts tbody tr a").first.click()
    page.wait_for_load_state("networkidle")
    assert "/contacts/" in page.url
    assert email in page.content(), "the profile shows the contact's e-mail"
    events = page.locator("#timeline li.event")
    n = events.count()
    assert n > 0, "the timeline lists events"
    events.first.locator("summary").first.click()
    assert events.first.locator("table.kv, p.muted").first.is_visible(), "properties expand"
    ctx.shot(page, "contact-profile")
    more = page.locator("#timeline-more a")
    if more.count():
        more.click()
        expect(page.locator("#timeline li.event")).not_to_have_count(n)
        assert page.locator("#timeline li.event").count() > n
        assert "/timeline" not in page.url, "older events load in place (htmx)"
