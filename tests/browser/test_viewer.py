"""The results viewer in a real browser: charts, filters, paging and the TSV, under the CSP.

The job's summary and variant table are put in place the way a run leaves them (the table
written with pyarrow as the spec lays it out), so this test does not depend on the engine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from gas import aws
from gas.jobs import JobStore
from gas.settings import settings_from
from tests.browser.a11y import assert_accessible
from tests.browser.conftest import log_in, screenshot
from tests.web.conftest import viewer_job

pytestmark = pytest.mark.integration


def _user_id(settings, email: str) -> str:
    items = aws.client(settings, "dynamodb").scan(TableName=settings.users_table)["Items"]
    return next(i["user_id"]["S"] for i in items if i.get("email", {}).get("S") == email)


def test_browse_filter_page_and_download_variants(stack, page, tmp_path):
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    log_in(page, stack, "rosalind@example.org", "Rosalind Franklin")
    settings = settings_from(stack.values)
    user_id = _user_id(settings, "rosalind@example.org")
    job = viewer_job(JobStore(settings), user_id, settings)

    page.goto(f"{stack.url}/annotations/{job.job_id}")
    expect(page.locator("#chart-regions svg[role=img]")).to_be_visible()
    expect(page.locator("#dbsnp-share")).to_contain_text("Found in dbSNP")
    screenshot(page, "viewer-summary")
    assert_accessible(page, "job page with its summary")

    page.click("#browse-variants")
    expect(page.locator("#variants tbody tr")).to_have_count(100)
    page.select_option("#f-region", ["CDS", "intronic", "UTR", "exonic"])
    page.select_option("#f-blacklist", "false")
    page.click("#variant-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"region=CDS.*blacklist=false"))
    first = page.locator("#variants tbody tr").first.inner_text()
    screenshot(page, "viewer-variants")
    assert_accessible(page, "variant viewer, filtered")

    page.click("#next-page")
    expect(page.locator("#previous-page")).to_be_visible()
    assert page.locator("#variants tbody tr").first.inner_text() != first
    page.go_back()  # the back button returns to the first page, filters and all
    expect(page.locator("#variants tbody tr").first).to_have_text(first, use_inner_text=True)
    expect(page.locator("#f-blacklist")).to_have_value("false")

    with page.expect_download() as download:
        page.click("#download-tsv")
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("CHROM\tPOS\tID")
    assert all(line.split("\t")[6] in ("CDS", "intronic", "UTR", "exonic") for line in lines[1:])

    page.goto(f"{stack.url}/annotations/{job.job_id}/variants?start=abc")
    expect(page.locator("#viewer-notice")).to_be_visible()
    assert_accessible(page, "variant viewer, a refused filter")
    csp = [p for p in problems if "Content Security Policy" in p]
    assert not csp, csp
