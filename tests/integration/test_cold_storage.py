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

from devstack.stack import slow_down_restores
from gas import aws
from gas.coldstorage import backend as cold_storage
from gas.jobs import JobStore
from gas.messages import Bus
from gas.settings import settings_from
from gas.users import UserStore
from tests.conftest import wait_until
from tests.integration.test_pipeline import Daemons, big_job_running, finished, submit

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


def fully_archived(settings, job_id: str, timeout: float = 40):
    """The job once the archive daemon is done with it: ARCHIVED is recorded first, and the
    hot copy deleted and the job taken out of the archive index after (its last write)."""
    jobs = JobStore(settings)

    def done():
        job = jobs.get(job_id)
        return job if job.job_status == "ARCHIVED" and job.archive_state is None else None

    return wait_until(done, timeout=timeout, interval=0.1, what=f"job {job_id} fully archived")


def archived_result(settings, daemons):
    """A free user's result, annotated and archived by the daemons: (user, its bytes, job)."""
    for name in ("ann.annotator", "util.archive"):
        daemons.start(name)
    user = new_user(settings)
    job = finished(settings, submit(settings, user).job_id)
    original = hot_object(settings, job)
    return user, original, fully_archived(settings, job.job_id)


def test_free_results_are_archived_after_the_window_and_restored_on_upgrade(cold, daemons):
    for name in ("ann.annotator", "util.archive", "util.restore", "util.thaw"):
        daemons.start(name)
    user = new_user(cold)
    completed = finished(cold, submit(cold, user).job_id)
    original = hot_object(cold, completed)
    assert completed.job_status == "COMPLETED" and original

    archived = fully_archived(cold, completed.job_id)
    assert hot_object(cold, archived) is None  # the download is gone
    log = aws.client(cold, "s3").head_object(Bucket=cold.results_bucket,
                                             Key=archived.s3_key_log_file)  # fmt: skip
    assert log["ContentLength"] > 0  # the log stays
    table = aws.client(cold, "s3").head_object(Bucket=cold.results_bucket,
                                               Key=archived.s3_key_variants_file)  # fmt: skip
    assert table["ContentLength"] > 0  # so does the variant table, and the stats
    assert archived.stats == completed.stats and archived.stats["variants"] > 0
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
    # Considered when the window is over, as every result is: the plan is read then.
    kept = wait_until(
        lambda: (j := JobStore(cold).get(job.job_id)).archive_due_at is None and j,
        timeout=40,
        what="the premium user's result to leave the archive index",
    )
    assert kept.job_status == "COMPLETED"
    assert hot_object(cold, job)


def test_an_upgrade_while_the_archive_message_is_in_flight_keeps_the_results(cold, daemons):
    daemons.start("ann.annotator")
    user = new_user(cold)
    job = finished(cold, submit(cold, user).job_id)
    assert job.archive_due_at is not None
    UserStore(cold).become_premium(user.user_id, "evt_upgrade", "cus_1", "sub_1")
    daemons.start("util.archive")
    jobs = JobStore(cold)
    # The daemon, finding the user premium when the window ends, takes the job out of the index.
    kept = wait_until(lambda: (j := jobs.get(job.job_id)).archive_due_at is None and j,
                      timeout=30, what="the job out of the archive index")  # fmt: skip
    assert kept.job_status == "COMPLETED"
    assert hot_object(cold, kept)


def test_the_sweep_archives_a_job_whose_message_was_lost(cold, daemons):
    daemons.start("ann.annotator")
    user = new_user(cold)
    job = finished(cold, submit(cold, user).job_id)
    sqs = aws.client(cold, "sqs")
    url = sqs.get_queue_url(QueueName=cold.archive_queue)["QueueUrl"]
    time.sleep(cold.free_retention_s + 1)  # the message's delay is over: the purge takes it

    def archive_queue_empty() -> bool:
        sqs.purge_queue(QueueUrl=url)
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return all(attrs[f"ApproximateNumberOfMessages{kind}"] == "0"
                   for kind in ("", "Delayed", "NotVisible"))  # fmt: skip

    wait_until(archive_queue_empty, what="the archive message lost")
    daemons.start("util.archive")
    status_of(cold, job.job_id, "ARCHIVED", timeout=30)
    wait_until(lambda: any(e.get("task") == "sweep" and e["msg"] == "results archived"
                           for e in daemons.logs("util.archive")),
               what="the sweep to say it archived the job")  # fmt: skip


def test_the_result_of_a_job_running_while_its_user_downgrades_is_archived(cold, daemons):
    """Premium when the job was claimed, free before it completed: the downgrade's fresh
    windows (for finished results) missed it, and run.py gave it none (the plan it read at
    claim was premium): a free user's result stayed hot for good (found by make chaos)."""
    if cold.archive_backend != "storage-class":
        pytest.skip("the race is in the plan, not in the backend: once is enough")
    for name in ("ann.annotator", "util.archive"):
        daemons.start(name)
    user = new_user(cold, premium=True)
    job = big_job_running(cold, user)
    UserStore(cold).become_free(user.user_id, "evt_cancelled", "sub_1", int(time.time()))
    assert fully_archived(cold, job.job_id, timeout=120).archive_version


def test_a_cold_copy_left_by_an_archive_killed_before_recording_it_is_deleted(cold, daemons):
    """The state a kill -9 between copying and recording leaves: a cold copy nobody records.
    The next run made a copy of its own and recorded that; the first stayed, billed, for
    good (found by make chaos: two cold copies of one job)."""
    if cold.archive_backend != "storage-class":
        pytest.skip("a vault lists its archives only through an inventory job: not pruned")
    daemons.start("ann.annotator")
    user = new_user(cold)
    job = finished(cold, submit(cold, user).job_id)
    cold_storage(cold).archive(job)  # killed here, before recording it
    daemons.start("util.archive")
    archived = fully_archived(cold, job.job_id)
    listed = aws.client(cold, "s3").list_object_versions(
        Bucket=cold.archive_bucket, Prefix=archived.archive_key
    )
    assert [v["VersionId"] for v in listed.get("Versions", [])] == [archived.archive_version]


def test_an_archive_killed_before_deleting_the_hot_copy_is_finished(cold, daemons):
    """The state a kill -9 leaves after ARCHIVED is recorded: both copies exist."""
    daemons.start("ann.annotator")
    user = new_user(cold)
    job = finished(cold, submit(cold, user).job_id)
    time.sleep(cold.free_retention_s)
    reference = cold_storage(cold).archive(job)
    assert JobStore(cold).archive(job, reference, cold.users_table)
    assert hot_object(cold, job)  # killed here (the archive message is long gone)
    daemons.start("util.archive")  # the sweep finds it: still in the index until dropped
    wait_until(lambda: hot_object(cold, job) is None, timeout=20, what="the hot copy deleted")
    assert JobStore(cold).get(job.job_id).job_status == "ARCHIVED"


def test_an_archive_run_beaten_by_another_deletes_only_its_own_copy(cold, daemons):
    from util.archive import Archiver

    daemons.start("ann.annotator")
    user = new_user(cold)
    job = finished(cold, submit(cold, user).job_id)
    original = hot_object(cold, job)
    time.sleep(cold.free_retention_s)
    backend, jobs = cold_storage(cold), JobStore(cold)
    late = backend.archive(job)  # run B copies first, then stalls
    Archiver(cold).archive_job(job.job_id)  # run A archives completely
    assert not jobs.archive(job, late, cold.users_table)  # B's record is refused...
    Archiver(cold).discard_unrecorded(job.job_id, late)  # ...and B cleans up as archive_job does
    UserStore(cold).become_premium(user.user_id, "evt_upgrade", "cus_1", "sub_1")
    for name in ("util.restore", "util.thaw"):
        daemons.start(name)
    Bus(cold).restore_requested(user.user_id)
    restored = status_of(cold, job.job_id, "COMPLETED", timeout=60)
    assert hot_object(cold, restored) == original  # the recorded copy survived


def test_no_archive_before_the_current_window_ends(cold, daemons):
    daemons.start("ann.annotator")
    user = new_user(cold)
    job = finished(cold, submit(cold, user).job_id)
    jobs = JobStore(cold)
    jobs.schedule_archive(job.job_id, int(time.time()) + 3600)  # a downgrade moved it
    reference = cold_storage(cold).archive(jobs.get(job.job_id))
    assert not jobs.archive(jobs.get(job.job_id), reference, cold.users_table)
    assert jobs.get(job.job_id).job_status == "COMPLETED"


def test_an_expired_retrieval_is_requested_again_and_a_free_users_result_rearchived(cold, daemons):
    user, original, archived = archived_result(cold, daemons)
    job = archived
    jobs = JobStore(cold)
    # RESTORING with no retrieval behind it: it expired (or was never made).
    assert jobs.restoring(archived.job_id, "Expedited", None)
    daemons.start("util.thaw")
    Bus(cold).thaw_later(job.job_id, user.user_id, attempt=0, delay_s=0)
    restored = status_of(cold, job.job_id, "COMPLETED", timeout=60)
    assert hot_object(cold, restored) == original
    assert restored.archive_due_at is not None  # the user is free: a fresh window
    status_of(cold, job.job_id, "ARCHIVED", timeout=30)


def test_a_thaw_killed_after_copying_back_is_finished(cold, daemons):
    """The state a kill -9 leaves mid-thaw: results back, cold copy and RESTORING remain."""
    user, original, archived = archived_result(cold, daemons)
    job = archived
    backend = cold_storage(cold)
    UserStore(cold).become_premium(user.user_id, "evt_upgrade", "cus_1", "sub_1")
    restore = backend.request_restore(archived)
    jobs = JobStore(cold)
    assert jobs.restoring(job.job_id, restore.tier, restore.restore_job_id)
    restoring = jobs.get(job.job_id)
    wait_until(lambda: backend.restore_status(restoring) == "done", timeout=30, what="the restore")
    backend.thaw(restoring)  # killed right after this
    Bus(cold).thaw_later(job.job_id, user.user_id, attempt=0, delay_s=0)
    daemons.start("util.thaw")
    done = status_of(cold, job.job_id, "COMPLETED", timeout=30)
    assert hot_object(cold, done) == original
