"""Free vs premium in a real browser: archived, upgraded through checkout, restored, cancelled."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.browser.a11y import assert_accessible
from tests.browser.conftest import log_in, screenshot, start_stack, upload
from tests.browser.test_journey import VCF

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fast_stack(tmp_path_factory):
    """A stack whose free retention is seconds and whose restores take five: thaw first looks
    2 s after the request, then 4 s later, so a job stays RESTORING for 6 s, long enough for
    the test to see its page."""
    running = start_stack(
        tmp_path_factory.mktemp("premium"),
        GAS_FREE_RETENTION_S="4",
        GAS_ARCHIVE_SWEEP_S="1",
        GAS_LOCAL_RESTORE_DELAY_S="5",
    )
    yield running
    running.stop()


def test_archived_results_come_back_after_upgrading_and_cancelling_makes_free(
    fast_stack, page, tmp_path
):
    stack = fast_stack
    log_in(page, stack, "barbara@example.org", "Barbara McClintock")
    upload(page, stack, tmp_path / "maize.vcf", VCF)
    job_url = page.url
    expect(page.locator("#download-result")).to_be_visible(timeout=60_000)
    expect(page.locator("#retention")).to_contain_text("upgrade to keep it")
    with page.expect_download() as first:
        page.click("#download-result")
    original = hashlib.sha256(Path(first.value.path()).read_bytes()).hexdigest()

    def reload_until(selector: str, timeout_s: float = 60) -> None:
        """Reload until `selector` is on the page; a reload that fails is "not yet"."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                page.reload()
                if page.locator(selector).count():
                    return
            except PlaywrightError:
                pass
            page.wait_for_timeout(500)
        pytest.fail(f"{selector} never appeared on {page.url} in {timeout_s} s")

    reload_until("#archived")
    expect(page.locator("#download-result")).to_have_count(0)
    screenshot(page, "job-archived")
    assert_accessible(page, "job ARCHIVED")

    page.click("#archived a")  # "upgrade to Premium to download"
    screenshot(page, "subscribe")
    assert_accessible(page, "subscribe, from an archived job")
    page.click("#subscribe-button")
    pay = page.get_by_role("button", name="Pay", exact=True)
    expect(pay).to_be_visible()
    screenshot(page, "stripe-checkout")
    pay.click()
    page.wait_for_url(f"{stack.url}/subscribe/success*")
    expect(page.locator("h1")).to_have_text("Welcome to Premium")
    assert_accessible(page, "subscribed")

    page.goto(job_url)
    reload_until("#restoring", timeout_s=30)
    expect(page.locator("#job-status .badge")).to_have_text("RESTORING")
    screenshot(page, "job-restoring")
    assert_accessible(page, "job RESTORING")
    reload_until("#download-result", timeout_s=60)
    with page.expect_download() as again:
        page.click("#download-result")
    assert hashlib.sha256(Path(again.value.path()).read_bytes()).hexdigest() == original
    screenshot(page, "job-restored")
    assert_accessible(page, "job COMPLETED again, premium")

    page.goto(f"{stack.url}/profile")
    assert_accessible(page, "profile, premium")
    page.get_by_role("button", name="Manage subscription").click()
    cancel = page.get_by_role("button", name="Cancel subscription")
    expect(cancel).to_be_visible()
    screenshot(page, "stripe-portal")
    cancel.click()
    page.wait_for_url(f"{stack.url}/profile")
    expect(page.locator("#billing h2")).to_have_text("Plan: Free")
    expect(page.locator("#upgrade")).to_be_visible()
    assert_accessible(page, "profile, free again, with a billing history")
