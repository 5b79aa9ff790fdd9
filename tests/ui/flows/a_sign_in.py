"""Flow 1: sign in, land on the dashboard; the session cookie has its flags; signing
out ends the session."""


def run(ctx):
    page = ctx.new_context().new_page()
    page.goto(ctx.base + "/")
    assert "/sign-in" in page.url, f"an anonymous visit should go to sign-in, went to {page.url}"
    ctx.shot(page, "sign-in")
    ctx.sign_in(page, ctx.owner_email, ctx.owner_password)
    assert page.url.rstrip("/") == ctx.base, f"after sign-in: {page.url}"
    assert page.locator("h1").inner_text().strip(), "dashboard heading"
    assert page.locator("nav.nav a[aria-current=page]").inner_text().strip() == "Dashboard"
    ctx.shot(page, "dashboard")

    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies.get("nudge_session")
    assert session, f"no session cookie: {list(cookies)}"
    assert session["httpOnly"], "session cookie must be HttpOnly"
    assert session["sameSite"] == "Lax", f"SameSite: {session['sameSite']}"
    assert session["path"] == "/"

    page.click("form[action='/sign-out'] button")
    page.wait_for_load_state("networkidle")
    assert "/sign-in" in page.url
    page.goto(ctx.base + "/contacts")
    assert "/sign-in" in page.url, "signed out: pages need signing in again"
