"""A user's journey in a real browser: log in, upload, watch the job, download the result."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.a11y import assert_accessible
from tests.browser.conftest import log_in, screenshot

pytestmark = pytest.mark.integration

VCF = (
    b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    b"chr1\t69511\t.\tA\tG\t50\tPASS\tDP=10\n"
    b"chr17\t7674220\t.\tC\tT\t50\tPASS\t.\n"
)


def test_log_in_upload_follow_and_download(stack, page, tmp_path):
    page.goto(stack.url)
    screenshot(page, "home")
    assert_accessible(page, "home, logged out")
    page.goto(f"{stack.url}/login")
    screenshot(page, "login-identity-provider")
    log_in(page, stack, "grace@example.org", "Grace Hopper")
    expect(page.locator("nav")).to_contain_text("Grace Hopper")
    screenshot(page, "annotations-empty")
    assert_accessible(page, "my annotations, empty, with the welcome message")

    page.click("text=Annotate a VCF")
    expect(page.locator("text=150 KiB")).to_be_visible()
    vcf = tmp_path / "journey.vcf"
    vcf.write_bytes(VCF)
    page.set_input_files("#file", str(vcf))
    page.select_option("#assembly", "hg19")
    screenshot(page, "annotate")
    assert_accessible(page, "annotate")
    page.click("#upload-button")  # posts straight to S3, which redirects back to us

    page.wait_for_url(f"{stack.url}/annotations/*")
    expect(page.locator("h1")).to_have_text("journey.vcf")
    expect(page.locator("#job-status .badge")).to_have_text("COMPLETED", timeout=60_000)
    expect(page.locator("#download-result")).to_be_visible()
    screenshot(page, "job-completed")
    assert_accessible(page, "job COMPLETED")

    with page.expect_download() as download:
        page.click("#download-result")
    saved = Path(download.value.path())
    annotated = saved.read_text()
    assert download.value.suggested_filename == "journey.annot.vcf"
    assert "##INFO=<ID=GENE," in annotated and "##INFO=<ID=REGION," in annotated
    assert len([line for line in annotated.splitlines() if not line.startswith("#")]) == 2

    page.click("text=view")
    expect(page.locator("#log-text")).to_contain_text("dbSNP")
    screenshot(page, "job-log")
    assert_accessible(page, "job log")

    page.goto(f"{stack.url}/annotations")
    expect(page.locator("table")).to_contain_text("journey.vcf")
    screenshot(page, "annotations")
    assert_accessible(page, "my annotations")
    page.goto(f"{stack.url}/profile")
    screenshot(page, "profile")
    assert_accessible(page, "profile")

    page.click("nav >> text=Log out")
    expect(page.locator(".alert")).to_contain_text("You are logged out.")
    assert_accessible(page, "home, just logged out")
    page.goto(f"{stack.url}/annotations")
    expect(page.locator("input[name=email]")).to_be_visible()  # back at the identity provider


def test_a_free_user_choosing_a_200_kib_file_sees_the_limit(stack, page, tmp_path):
    log_in(page, stack, "alan@example.org", "Alan Turing", start="/annotate")
    expect(page.locator("h1")).to_have_text("Annotate a VCF")  # back where they were going
    big = tmp_path / "big.vcf"
    big.write_bytes(VCF + b"#" * (200 * 1024))
    page.set_input_files("#file", str(big))
    message = page.locator("#limit-message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("big.vcf is 200 KiB; your plan accepts files up to 150 KiB")
    expect(page.locator("#upload-button")).to_be_disabled()
    screenshot(page, "annotate-over-limit")
    assert_accessible(page, "annotate, a file over the limit")
