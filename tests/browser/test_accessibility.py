"""axe-core on the pages the journeys do not reach (the journeys check the pages they visit):
home logged in, a FAILED job, PENDING and RUNNING jobs, a list of jobs in every one of those
states, a profile with API tokens, the logout confirmation, a 404."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import expect

from gas.jobs import Job, JobStatus
from gas.settings import settings_from
from tests.browser.a11y import assert_accessible
from tests.browser.conftest import CLAIM, log_in, upload
from tests.browser.test_journey import VCF

pytestmark = pytest.mark.integration

MALFORMED_VCF = VCF + b"chr1\tnot-a-number\t.\tA\tG\t50\tPASS\t.\n"


def test_the_pages_the_journeys_do_not_reach_are_accessible(
    stack, page, tmp_path, jobs, active_jobs
):
    page.goto(f"{stack.url}/no-such-page")
    expect(page.locator("h1")).to_have_text("404")
    assert_accessible(page, "404, logged out")

    log_in(page, stack, "rosalind@example.org", "Rosalind Franklin")
    page.goto(stack.url)
    expect(page.get_by_role("link", name="My annotations").first).to_be_visible()
    assert_accessible(page, "home, logged in")

    upload(page, stack, tmp_path / "malformed.vcf", MALFORMED_VCF)
    expect(page.locator("#job-status .badge")).to_have_text("FAILED", timeout=60_000)
    expect(page.locator("#job-error")).to_contain_text("POS")
    assert_accessible(page, "job FAILED")

    user_id = jobs.get(page.url.rsplit("/", 1)[1]).user_id
    inputs = settings_from(stack.values).inputs_bucket
    for status in (JobStatus.PENDING, JobStatus.RUNNING):
        job = Job(
            job_id=str(uuid.uuid4()), user_id=user_id, input_file_name=f"{status.lower()}.vcf",
            s3_inputs_bucket=inputs, s3_key_input_file=f"{user_id}/never-uploaded.vcf",
            submit_time=int(time.time()),
        )  # fmt: skip
        assert jobs.create(job)
        active_jobs.append(job)
        if status == JobStatus.RUNNING:
            assert jobs.claim(job.job_id, CLAIM, stale_after_s=600)
            assert jobs.heartbeat(job.job_id, CLAIM, progress=40)
        page.goto(f"{stack.url}/annotations/{job.job_id}")
        expect(page.locator("#job-status .badge")).to_have_text(status)
        expect(page.locator("#job-progress")).to_be_visible()
        assert_accessible(page, f"job {status}")

    page.goto(f"{stack.url}/annotations")
    expect(page.locator("table tbody tr")).to_have_count(3)
    assert_accessible(page, "my annotations, FAILED, PENDING and RUNNING")

    page.goto(f"{stack.url}/profile")
    page.fill("form[action$='/profile/tokens'] input[name=name]", "laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-api-token")).to_be_visible()
    expect(page.locator("table")).to_contain_text("laptop")
    assert_accessible(page, "profile, with a new API token")

    page.goto(f"{stack.url}/logout")
    expect(page.locator("main form button[type=submit]")).to_have_text("Log out")
    assert_accessible(page, "logout confirmation")

    page.goto(f"{stack.url}/annotations/no-such-job")
    expect(page.locator("h1")).to_have_text("404")
    assert_accessible(page, "404, logged in")
