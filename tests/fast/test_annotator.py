"""The annotator's answer to a request for a job it cannot claim."""

from __future__ import annotations

import pytest

from ann.annotator import _not_claimable
from gas.jobs import Job, JobStore
from gas.messages import Bus
from gas.worker import RetryLater


def running_job(jobs: JobStore) -> Job:
    job = Job("job-1", "ada", "a.vcf", "inputs", "ada/job-1/a.vcf", submit_time=1_700_000_000)
    jobs.create(job)
    assert jobs.claim(job.job_id, "run-1", stale_after_s=120)
    return job


def test_a_duplicate_request_waits_while_the_job_runs_but_never_into_the_dlq(store_settings):
    jobs, bus = JobStore(store_settings), Bus(store_settings)
    job = running_job(jobs)
    last = store_settings.queue_max_receive_count
    for receive in range(1, last - 1):  # looked at again when the run's heartbeat is stale
        with pytest.raises(RetryLater) as later:
            _not_claimable(jobs, bus, job.job_id, store_settings, receive)
        assert 0 < later.value.seconds <= store_settings.job_stale_after_s + 1
    # At its second-to-last receive it is dropped: the lost-job sweep covers a run that dies.
    assert _not_claimable(jobs, bus, job.job_id, store_settings, last - 1) is None
