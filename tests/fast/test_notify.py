"""Notify's handler: one email per finished job, whatever happens to the senders."""

from __future__ import annotations

import uuid

import pytest

from gas import aws
from gas.jobs import Job, JobStatus, JobStore
from gas.settings import Settings
from gas.users import UserStore
from gas.worker import Message, RetryLater
from tests.fast.conftest import fast_settings, provision_parts
from util.notify import NOTIFY_LEASE_S, make_handler


@pytest.fixture
def notify_settings() -> Settings:
    settings = provision_parts(fast_settings(), tables=True)
    aws.client(settings, "ses").verify_email_identity(EmailAddress=settings.ses_sender)
    return settings


def failed_job(settings: Settings) -> Job:
    user = UserStore(settings).sign_in(f"u-{uuid.uuid4()}", "ada@example.org", "Ada")
    job = Job(
        job_id=str(uuid.uuid4()),
        user_id=user.user_id,
        input_file_name="a.vcf",
        s3_inputs_bucket=settings.inputs_bucket,
        s3_key_input_file="k",
        submit_time=1,
    )
    jobs = JobStore(settings)
    jobs.create(job)
    assert jobs.fail(job.job_id, "line 3: POS is not a number", expected=JobStatus.PENDING)
    return job


def result_of(job: Job) -> Message:
    body = {"type": "job_result", "job_id": job.job_id, "user_id": job.user_id}
    body["job_status"] = "FAILED"
    return Message(message_id=str(uuid.uuid4()), receipt_handle="r", body=body, receive_count=1)


def emails_sent(settings: Settings) -> float:
    return aws.client(settings, "ses").get_send_quota()["SentLast24Hours"]


def test_a_delivery_meeting_a_dead_senders_lease_comes_back_and_sends_once(notify_settings, clock):
    """A sender killed (or cut off) after taking the lease and before sending: the next
    delivery used to be dropped as "being notified", and the email was never sent."""
    job = failed_job(notify_settings)
    jobs = JobStore(notify_settings)
    assert jobs.lease_notification(job.job_id, NOTIFY_LEASE_S)  # then the sender died
    handle = make_handler(notify_settings)
    with pytest.raises(RetryLater) as later:
        handle(result_of(job))
    assert later.value.seconds >= NOTIFY_LEASE_S - 1  # back once the lease is over
    assert emails_sent(notify_settings) == 0
    clock.advance(NOTIFY_LEASE_S + 1)
    handle(result_of(job))
    assert emails_sent(notify_settings) == 1
    assert jobs.get(job.job_id).notified_at is not None
    handle(result_of(job))  # a duplicate delivery afterwards: nothing more
    assert emails_sent(notify_settings) == 1
