"""The annotator's answer to a request for a job it cannot claim, and its lost-job sweep."""

from __future__ import annotations

import time
import types

import pytest

import ann.annotator
from ann.annotator import _not_claimable, lost_job_sweep
from gas.jobs import Job, JobStore
from gas.messages import Bus
from gas.users import UserStore
from gas.worker import RetryLater
from tests.fast.conftest import fast_settings, provision_parts
from tests.queues import Queue


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


def test_sweeping_annotators_request_a_job_pending_behind_a_backlog_once_per_interval(
    clock, monkeypatch
):
    """Each sweep of each annotator used to request every long-PENDING job again: a backlog
    of jobs waiting longer than GAS_JOB_RESUBMIT_AFTER_S grew by their number at every sweep
    (make chaos: one job requested again 15 times in 30 s)."""
    settings = fast_settings(GAS_JOB_RESUBMIT_AFTER_S="60", GAS_JOB_STALE_AFTER_S="120")
    provision_parts(settings, tables=True, queues=(settings.job_requests_queue,))
    monkeypatch.setattr(
        ann.annotator, "time", types.SimpleNamespace(time=clock.time, monotonic=time.monotonic)
    )
    jobs = JobStore(settings)
    jobs.create(Job("job-1", "ada", "a.vcf", "inputs", "ada/job-1/a.vcf", clock.now - 100))
    sweeps = [lost_job_sweep(settings)[1] for _ in range(2)]  # two annotators
    for sweep in sweeps * 3:
        sweep()
    queue = Queue(settings)
    assert queue.depth()[0] == 1
    clock.advance(61)  # still PENDING an interval later: once more
    for sweep in sweeps * 2:
        sweep()
    assert queue.depth()[0] == 2


def test_a_request_for_a_job_archived_before_its_user_was_told_announces_it(store_settings):
    """run.py recorded COMPLETED and was killed with its annotator before announcing it;
    the request came back after the job was archived, and was dropped: the user was never
    emailed (make chaos)."""
    s = store_settings
    settings = provision_parts(s, queues=(s.notifications_queue, s.archive_queue))
    jobs, bus = JobStore(settings), Bus(settings)
    user = UserStore(settings).sign_in("u-1", "ada@example.org", "Ada")
    job = Job("job-1", user.user_id, "a.vcf", "inputs", "ada/job-1/a.vcf", submit_time=1)
    jobs.create(job)
    assert jobs.claim(job.job_id, "run-1", stale_after_s=120)
    assert jobs.complete(job.job_id, "run-1", results_bucket="results", result_key="r",
                         log_key="l", variant_count=1, summary={}, result_size=1,
                         result_sha256="c2hh", archive_due_at=1)  # fmt: skip
    done = jobs.get(job.job_id)
    assert jobs.archive(done, {"archive_key": "r", "archive_version": "v1"}, settings.users_table)
    _not_claimable(jobs, bus, job.job_id, settings, receive_count=2)
    assert Queue(settings, settings.notifications_queue).depth()[0] == 1
