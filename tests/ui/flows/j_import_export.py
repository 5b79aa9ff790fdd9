"""Contacts in bulk: a CSV imported as a job (progress, then the counts), a file
with one bad row imported but for that row, which the per-row report names (and the
errors download has), a file without the columns it needs refused on the form, all
contacts exported as CSV, and one contact's GDPR export as JSON."""

import json
import pathlib
import tempfile
import uuid

from playwright.sync_api import expect


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
    # The upload leads to the job's page, which follows the import until its report.
    page.wait_for_url("**/contacts/import/*")
    expect(page.locator("#import-report")).to_be_visible(timeout=20000)
    assert page.locator("#import-created").inner_text() == "2", page.locator("#import-report").inner_text()
    assert page.locator("#import-failed").inner_text() == "0"
    assert page.locator("#import-errors").count() == 0
    status, found = ctx.api("GET", f"/api/v1/contacts/lookup?user_id=imp-{tag}-2")
    assert status == 200 and found["traits"]["plan"] == "free", found

    # One bad row among good ones: the others are imported, the bad one reported
    # with its row number, column and reason.
    page.goto(ctx.base + "/contacts/import")
    mixed = tmp / "mixed.csv"
    rows = [f"imp-{tag}-{i},imp-{tag}-{i}@x.example,pro" for i in range(3, 40)]
    rows[5] = f"imp-{tag}-8,not-an-address,pro"  # row 7 of the file (the header is row 1)
    mixed.write_text("user_id,email,plan\n" + "\n".join(rows) + "\n")
    page.set_input_files("#file", str(mixed))
    page.click("#import-button")
    page.wait_for_url("**/contacts/import/*")
    expect(page.locator("#import-report")).to_be_visible(timeout=20000)
    assert page.locator("#import-created").inner_text() == "36"
    assert page.locator("#import-failed").inner_text() == "1"
    bad_row = page.locator("#import-errors tbody tr")
    assert bad_row.count() == 1
    cells = [bad_row.locator("td").nth(i).inner_text() for i in range(3)]
    assert cells[0] == "7" and cells[1] == "email" and "not-an-address" in cells[2], cells
    ctx.shot(page, "contacts-import-report")
    with page.expect_download() as d:
        page.click("#import-errors-csv")
    errors = pathlib.Path(d.value.path()).read_text().splitlines()
    assert errors[0] == "row,column,message" and errors[1].startswith("7,email,"), errors
    status, _ = ctx.api("GET", f"/api/v1/contacts/lookup?user_id=imp-{tag}-8")
    assert status == 404, "the bad row was not imported"
    status, _ = ctx.api("GET", f"/api/v1/contacts/lookup?user_id=imp-{tag}-9")
    assert status == 200, "the rows after it were"
    # The job's page reads without JavaScript too: a plain reload shows the report.
    page.reload()
    expect(page.locator("#import-report")).to_be_visible()

    page.goto(ctx.base + "/contacts/import")
    bad = tmp / "bad.csv"
    bad.write_text("name,plan\nAda,pro\n")
    page.set_input_files("#file", str(bad))
    page.click("#import-button")
    page.wait_for_load_state("networkidle")
    assert "user_id" in page.locator("#import-error").inner_text()
    ctx.shot(page, "contacts-import")

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
