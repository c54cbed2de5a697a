"""Archive, restore and thaw as processes against the emulator, for both backends.

Free results move to cold storage after the (2 s) retention window; premium
results never do; an upgrade brings every archived result back byte-identical.
Crash states are planted directly (a run killed between two steps) to prove the
next delivery finishes the work.
"""

from __future__ import annotations

import time
import uuid

import pytest

from gas import aws
from gas.archive import backend as cold_storage
from gas.jobs import JobStore
from gas.localstack import slow_down_restores
from gas.messages import Bus
from gas.settings import settings_from
from gas.users import UserStore
from tests.conftest import wait_until
from tests.integration.test_pipeline import Daemons, finished, submit

pytestmark = pytest.mark.integration
BACKENDS = ["storage-class", "glacier-vault"]


@pytest.fixture(params=BACKENDS)
def cold_values(request, gas_values):
    return {
        **gas_values,
        "GAS_ARCHIVE_BACKEND": request.param,
        "GAS_ARCHIVE_SWEEP_S": "1",
        "GAS_LOCAL_RESTORE_DELAY_S": "3",
        "GAS_JOB_STALE_AFTER_S": "3",
    }


@pytest.fixture
def cold(cold_values):
    from gas.provision import provision

    settings = settings_from(cold_values)
    provision(settings, report=lambda _c: None)
    slow_down_restores(settings)
    return settings


@pytest.fixture
def daemons(cold_values, tmp_path):
    running = Daemons(cold_values, tmp_path)
    yield running
    running.stop_all()


def new_user(settings, premium: bool = False):
    users = UserStore(settings)
    user = users.sign_in(f"u-{uuid.uuid4()}", "ada@example.org", "Ada")
    if premium:
        users.become_premium(user.user_id, f"evt_{uuid.uuid4().hex}", "cus_1", "sub_1")
    return users.get(user.user_id)


def hot_object(settings, job) -> bytes | None:
    s3 = aws.client(settings, "s3")
    try:
        return s3.get_object(Bucket=settings.results_bucket, Key=job.s3_key_result_file)[
            "Body"].read()  # fmt: skip
    except s3.exceptions.NoSuchKey:
        return None


def status_of(settings, job_id: str, wanted: str, timeout: float = 40):
    jobs = JobStore(settings)
    return wait_until(lambda: (j := jobs.get(job_id)).job_status == wanted and j,
                      timeout=timeout, interval=0.1, what=f"job {job_id} {wanted}")  # fmt: skip


def test_free_results_are_archived_after_the_window_and_restored_on_upgrade(cold, daemons):
    for name in ("ann.annotator", "util.archive", "util.restore", "util.thaw"):
        daemons.start(name)
    user = new_user(cold)
    completed = finished(cold, submit(cold, user).job_id)
    original = hot_object(cold, completed)
    assert completed.job_status == "COMPLETED" and original

    archived = status_of(cold, completed.job_id, "ARCHIVED")
    assert hot_object(cold, archived) is None  # the download is gone
    log = aws.client(cold, "s3").head_object(Bucket=cold.results_bucket,
                                             Key=archived.s3_key_log_file)  # fmt: skip
    assert log["ContentLength"] > 0  # the log stays
    assert archived.archive_key or archived.results_file_archive_id
    assert archived.archive_due_at is None  # out of the archive index

    UserStore(cold).become_premium(user.user_id, "evt_upgrade", "cus_1", "sub_1")
    Bus(cold).restore_requested(user.user_id)
    restoring = status_of(cold, completed.job_id, "RESTORING", timeout=20)
    assert restoring.restore_tier == "Expedited"
    restored = status_of(cold, completed.job_id, "COMPLETED", timeout=60)
    assert hot_object(cold, restored) == original  # byte-identical
    assert restored.archive_key is None and restored.results_file_archive_id is None
    if cold.archive_backend == "storage-class":
        listing = aws.client(cold, "s3").list_objects_v2(Bucket=cold.archive_bucket)
        assert listing.get("KeyCount", 0) == 0  # the cold copy is deleted


def test_premium_results_are_never_archived(cold, daemons):
    daemons.start("ann.annotator")
    daemons.start("util.archive")
    user = new_user(cold, premium=True)
    job = finished(cold, submit(cold, user).job_id)
    assert job.archive_due_at is None
    time.sleep(cold.free_retention_s + 3)  # the window, the delayed message and a sweep
    assert JobStore(cold).get(job.job_id).job_status == "COMPLETED"
    assert hot_object(cold, job)


def test_an_upgrade_while_the_archive_message_is_in_flight_keeps_the_results(cold, daemons):
    daemons.start("ann.annotator")
    user = new_user(cold)
    job = finished(cold, submit(cold, user).job_id)
    assert job.archive_due_at is not None
    UserStore(cold).become_premium(user.user_id, "evt_upgrade", "cus_1", "sub_1")
    daemons.start("util.archive")
    time.sleep(cold.free_retention_s + 3)
    kept = JobStore(cold).get(job.job_id)
    assert kept.job_status == "COMPLETED" and kept.archive_due_at is None
    assert hot_object(cold, kept)


def test_the_sweep_archives_a_job_whose_message_was_lost(cold, daemons):
    daemons.start("ann.annotator")
    user = new_user(cold)
    job = finished(cold, submit(cold, user).job_id)
    sqs = aws.client(cold, "sqs")
    sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName=cold.archive_queue)["QueueUrl"])
    daemons.start("util.archive")
    status_of(cold, job.job_id, "ARCHIVED", timeout=30)
    assert any(e.get("task") == "sweep" and e["msg"] == "results archived"
               for e in daemons.logs("util.archive"))  # fmt: skip


def test_an_archive_killed_before_deleting_the_hot_copy_is_finished(cold, daemons):
    """The state a kill -9 leaves after ARCHIVED is recorded: both copies exist."""
    daemons.start("ann.annotator")
    user = new_user(cold)
    job = finished(cold, submit(cold, user).job_id)
    time.sleep(cold.free_retention_s)
    reference = cold_storage(cold).archive(job)
    assert JobStore(cold).archive(job, reference, cold.users_table)
    assert hot_object(cold, job)  # killed here
    Bus(cold).archive_requested(job.job_id, user.user_id)
    daemons.start("util.archive")
    wait_until(lambda: hot_object(cold, job) is None, timeout=20, what="the hot copy deleted")
    assert JobStore(cold).get(job.job_id).job_status == "ARCHIVED"


def test_a_thaw_killed_after_copying_back_is_finished(cold, daemons):
    """The state a kill -9 leaves mid-thaw: results back, cold copy and RESTORING remain."""
    for name in ("ann.annotator", "util.archive"):
        daemons.start(name)
    user = new_user(cold)
    job = finished(cold, submit(cold, user).job_id)
    original = hot_object(cold, job)
    archived = status_of(cold, job.job_id, "ARCHIVED")
    backend = cold_storage(cold)
    UserStore(cold).become_premium(user.user_id, "evt_upgrade", "cus_1", "sub_1")
    restore = backend.request_restore(archived)
    jobs = JobStore(cold)
    assert jobs.restoring(job.job_id, restore.tier, restore.restore_job_id)
    restoring = jobs.get(job.job_id)
    wait_until(lambda: backend.restored(restoring), timeout=30, what="the restore")
    backend.thaw(restoring)  # killed right after this
    Bus(cold).thaw_later(job.job_id, user.user_id, attempt=0, delay_s=0)
    daemons.start("util.thaw")
    done = status_of(cold, job.job_id, "COMPLETED", timeout=30)
    assert hot_object(cold, done) == original
