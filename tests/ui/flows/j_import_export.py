"""Contacts in bulk: a CSV imported (every row or none, the fault named), all
contacts exported as CSV, and one contact's GDPR export as JSON."""

import json
import pathlib
import tempfile
import uuid


def run(ctx):
    page = ctx.page("marketer")
    page.goto(ctx.base + "/contacts")
    page.click("#import-link")
    page.wait_for_load_state("networkidle")
    tag = uuid.uuid4().hex[:6]
    tmp = pathlib.Path(tempfile.mkdtemp())
    good = tmp / "good.csv"
    good.write_text(f"user_id,email,plan\nimp-{tag}-1,imp-{tag}-1@x.example,pro\nimp-{tag}-2,imp-{tag}-2@x.example,free\n")
    page.set_input_files("#file", str(good))
    page.click("#import-button")
    page.wait_for_load_state("networkidle")
    report = page.locator("#import-report").inner_text()
    assert "2" in report, report
    ctx.shot(page, "contacts-import")
    status, found = ctx.api("GET", f"/api/v1/contacts/lookup?user_id=imp-{tag}-2")
    assert status == 200 and found["traits"]["plan"] == "free", found

    bad = tmp / "bad.csv"
    bad.write_text("name,plan\nAda,pro\n")
    page.set_input_files("#file", str(bad))
    page.click("#import-button")
    page.wait_for_load_state("networkidle")
    assert "user_id" in page.locator("#import-error").inner_text()

    # All contacts as CSV.
    page.goto(ctx.base + "/contacts")
    with page.expect_download() as d:
        page.click("#export-link")
    csv = pathlib.Path(d.value.path()).read_text()
    assert f"imp-{tag}-1" in csv.splitlines()[1:].__str__(), "the imported contacts are exported"

    # One contact's GDPR export.
    page.goto(ctx.base + f"/contacts/{found['id']}/edit")
    with page.expect_download() as d:
        page.click("#export-contact")
    doc = json.loads(pathlib.Path(d.value.path()).read_text())
    assert doc["contact"]["id"] == found["id"] and "events" in doc, doc.keys()
