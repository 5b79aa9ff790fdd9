"""Flow 6: switch to Persian: the page is right to left, dates are in the Persian
(Solar Hijri) calendar with Persian digits; then back to English."""

import re


def run(ctx):
    page = ctx.page("owner")
    page.goto(ctx.base + "/contacts")
    page.select_option("#lang", "fa")
    page.wait_for_selector('html[dir="rtl"]')
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("html").get_attribute("lang") == "fa"
    assert page.locator("nav a[href='/contacts']").inner_text().strip() == "مخاطبان"
    created = page.locator("#contacts tbody tr").first.locator("td").nth(3).inner_text()
    assert re.search("[۰-۹]", created), f"Persian digits in {created!r}"
    months = ["فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند"]
    assert any(m in created for m in months), f"a Solar Hijri month in {created!r}"
    # The navigation starts on the right.
    nav = page.locator("nav.nav a").first.bounding_box()
    last = page.locator("nav.nav a").last.bounding_box()
    assert nav["x"] > last["x"], "in RTL the first navigation entry is the rightmost"
    ctx.shot(page, "contacts-fa")
    page.locator("#contacts tbody tr a").first.click()
    page.wait_for_load_state("networkidle")
    ctx.shot(page, "contact-profile-fa")
    page.select_option("#lang", "en")
    page.wait_for_selector('html[dir="ltr"]')
