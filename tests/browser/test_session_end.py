"""A job page left open when its session ends: its poll shows the login, which comes back to
the job, instead of following the login redirect in the background every second."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import expect

from devstack.standins.oidc import subject_for
from gas.jobs import Job
from gas.settings import settings_from
from gas.users import UserStore
from tests.browser.conftest import log_in

pytestmark = pytest.mark.integration


def test_a_job_page_left_open_goes_to_the_login_when_the_session_ends(
    stack, page, jobs, active_jobs
):
    settings = settings_from(stack.values)
    email = "barbara@example.org"
    log_in(page, stack, email, "Barbara McClintock")
    user_id = subject_for(email)
    job = Job(
        job_id=str(uuid.uuid4()), user_id=user_id, input_file_name="maize.vcf",
        s3_inputs_bucket=settings.inputs_bucket, s3_key_input_file=f"{user_id}/maize.vcf",
        submit_time=int(time.time()),
    )  # fmt: skip
    assert jobs.create(job)
    active_jobs.append(job)  # PENDING: the page polls its status
    page.goto(f"{stack.url}/annotations/{job.job_id}")
    expect(page.locator("#job-status .badge")).to_have_text("PENDING")

    users = UserStore(settings)
    for login in users.get(user_id).logins:  # logged out elsewhere
        users.forget_login(user_id, login.login_id)
    page.wait_for_url(f"{stack.values['GAS_GLOBUS_AUTH_URL']}/**")  # the login, shown
    page.fill("input[name=email]", email)
    page.fill("input[name=name]", "Barbara McClintock")
    page.locator("form[method=post] [type=submit]").click()
    page.wait_for_url(f"{stack.url}/annotations/{job.job_id}")  # and back to the job
    expect(page.locator("#job-status .badge")).to_have_text("PENDING")
