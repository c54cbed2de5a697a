"""The job store: every status transition, the writes it refuses, and a user's list of jobs."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid

import pytest

from gas.jobs import Job, JobStatus, JobStore
from gas.users import UserStore

STALE_S = 120


@pytest.fixture
def jobs(store_settings) -> JobStore:
    return JobStore(store_settings)


def new_job(jobs: JobStore, user_id: str = "ada", submit_time: int = 1_700_000_000) -> Job:
    job = Job(
        job_id=str(uuid.uuid4()), user_id=user_id, input_file_name="sample.vcf",
        s3_inputs_bucket="gas-inputs", s3_key_input_file=f"{user_id}/sample.vcf",
        submit_time=submit_time,
    )  # fmt: skip
    assert jobs.create(job)
    return job


def finish(jobs: JobStore, job_id: str, claim_id: str, archive_due_at: int | None = None) -> bool:
    return jobs.complete(
        job_id, claim_id, results_bucket="gas-results", result_key=f"{job_id}/out.vcf",
        log_key=f"{job_id}/out.log", variant_count=3, summary={"PASS": 3}, result_size=42,
        result_sha256="c2hh", archive_due_at=archive_due_at,
    )  # fmt: skip


def status(jobs: JobStore, job_id: str) -> JobStatus:
    job = jobs.get(job_id)
    assert job is not None
    return job.job_status


# -- create and claim ---------------------------------------------------------------------


def test_a_new_job_is_pending_and_its_id_is_taken_once(jobs):
    job = new_job(jobs)
    stored = jobs.get(job.job_id)
    assert stored == job and stored.job_status == JobStatus.PENDING and stored.active
    assert not jobs.create(dataclasses.replace(job, input_file_name="other.vcf"))
    assert jobs.get(job.job_id).input_file_name == "sample.vcf"


def test_a_job_that_does_not_exist_is_none_and_cannot_be_claimed_into_existence(jobs):
    assert jobs.get("no-such-job") is None
    assert jobs.claim("no-such-job", "run-a", STALE_S) is None
    assert not jobs.fail("no-such-job", "boom", expected=JobStatus.PENDING)
    assert jobs.get("no-such-job") is None


def test_another_users_job_does_not_exist_for_them(jobs):
    job = new_job(jobs, "ada")
    assert jobs.get_owned(job.job_id, "ada") == job
    assert jobs.get_owned(job.job_id, "bob") is None


def test_a_claim_runs_the_job_for_that_run_only(jobs, clock):
    job = new_job(jobs)
    claimed = jobs.claim(job.job_id, "run-a", STALE_S)
    assert claimed.job_status == JobStatus.RUNNING
    assert (claimed.claim_id, claimed.start_time, claimed.progress) == ("run-a", clock.now, 0)
    clock.advance(STALE_S - 1)  # alive enough: nobody else gets it
    assert jobs.claim(job.job_id, "run-b", STALE_S) is None
    assert jobs.get(job.job_id).claim_id == "run-a"


def test_a_job_whose_run_went_silent_is_taken_over_and_the_old_run_is_locked_out(jobs, clock):
    job = new_job(jobs)
    started = clock.now
    jobs.claim(job.job_id, "run-a", STALE_S)
    assert jobs.heartbeat(job.job_id, "run-a", 40)
    clock.advance(STALE_S + 1)  # run-a died: no heartbeat since
    taken = jobs.claim(job.job_id, "run-b", STALE_S)
    assert taken is not None and taken.claim_id == "run-b"
    assert taken.start_time == started and taken.progress == 0  # started over, same job
    # The old run, if it was only slow, can no longer touch the job.
    assert not jobs.heartbeat(job.job_id, "run-a", 90)
    assert not finish(jobs, job.job_id, "run-a")
    assert not jobs.fail(job.job_id, "late failure", claim_id="run-a")
    assert not jobs.release(job.job_id, "run-a")
    assert finish(jobs, job.job_id, "run-b")
    assert status(jobs, job.job_id) == JobStatus.COMPLETED


def test_a_heartbeating_run_is_not_taken_over(jobs, clock):
    job = new_job(jobs)
    jobs.claim(job.job_id, "run-a", STALE_S)
    for _ in range(3):
        clock.advance(STALE_S // 2)
        assert jobs.heartbeat(job.job_id, "run-a", 50)
    assert jobs.claim(job.job_id, "run-b", STALE_S) is None
    assert jobs.get(job.job_id).progress == 50


# -- the run's own writes -----------------------------------------------------------------


def test_a_run_that_gives_the_job_back_leaves_it_pending_for_the_next(jobs):
    job = new_job(jobs)
    jobs.claim(job.job_id, "run-a", STALE_S)
    assert not jobs.release(job.job_id, "run-b")  # not theirs to give back
    assert jobs.release(job.job_id, "run-a")
    released = jobs.get(job.job_id)
    assert released.job_status == JobStatus.PENDING
    assert released.claim_id is None and released.progress is None
    assert not jobs.release(job.job_id, "run-a")  # once
    assert jobs.claim(job.job_id, "run-b", STALE_S).claim_id == "run-b"


def test_completion_records_the_results_once_for_the_run_holding_the_job(jobs, clock):
    job = new_job(jobs)
    assert not finish(jobs, job.job_id, "run-a")  # not claimed yet
    jobs.claim(job.job_id, "run-a", STALE_S)
    assert not finish(jobs, job.job_id, "run-b")
    assert finish(jobs, job.job_id, "run-a")
    done = jobs.get(job.job_id)
    assert done.job_status == JobStatus.COMPLETED and not done.active
    assert done.result_downloadable and done.log_available
    assert (done.variant_count, done.summary, done.progress) == (3, {"PASS": 3}, 100)
    assert done.complete_time == clock.now and done.claim_id is None
    assert done.archive_due_at is None  # a premium user's: never archived
    assert not finish(jobs, job.job_id, "run-a")  # a second delivery changes nothing
    assert not jobs.fail(job.job_id, "too late", claim_id="run-a")
    assert not jobs.heartbeat(job.job_id, "run-a", 100)
    assert jobs.claim(job.job_id, "run-b", 0) is None


def test_what_a_user_sees_of_a_job_leaves_out_where_its_files_live(jobs):
    job = new_job(jobs)
    jobs.claim(job.job_id, "run-a", STALE_S)
    finish(jobs, job.job_id, "run-a")
    public = jobs.get(job.job_id).public()
    assert public["job_status"] == "COMPLETED" and public["input_file_name"] == "sample.vcf"
    assert not {"s3_key_result_file", "s3_results_bucket", "claim_id", "heartbeat_at"} & set(public)


def test_a_failed_run_records_its_message_for_the_user(jobs, clock):
    job = new_job(jobs)
    jobs.claim(job.job_id, "run-a", STALE_S)
    assert not jobs.fail(job.job_id, "not mine", claim_id="run-b")
    assert jobs.fail(job.job_id, "line 3: not a VCF record", claim_id="run-a")
    failed = jobs.get(job.job_id)
    assert failed.job_status == JobStatus.FAILED and not failed.active
    assert failed.error == "line 3: not a VCF record" and failed.complete_time == clock.now
    assert not failed.result_downloadable and not failed.log_available
    assert not finish(jobs, job.job_id, "run-a")  # FAILED is final
    assert jobs.claim(job.job_id, "run-b", 0) is None


def test_a_pending_job_can_be_failed_before_it_runs(jobs):
    job = new_job(jobs)
    assert not jobs.fail(job.job_id, "input file not found")  # expects RUNNING by default
    assert jobs.fail(job.job_id, "input file not found", expected=JobStatus.PENDING)
    assert status(jobs, job.job_id) == JobStatus.FAILED


# -- lost jobs ------------------------------------------------------------------------------


def test_lost_jobs_are_those_pending_too_long_or_silent_while_running(jobs, clock):
    now = clock.now
    waiting_long = new_job(jobs, submit_time=now - 700)
    just_submitted = new_job(jobs, submit_time=now - 5)
    silent = new_job(jobs, submit_time=now - 700)
    alive = new_job(jobs, submit_time=now - 700)
    finished = new_job(jobs, submit_time=now - 700)
    clock.advance(-200)
    jobs.claim(silent.job_id, "run-a", STALE_S)
    jobs.claim(finished.job_id, "run-f", STALE_S)
    finish(jobs, finished.job_id, "run-f")
    clock.advance(200)
    jobs.claim(alive.job_id, "run-b", STALE_S)
    lost = jobs.lost(now, resubmit_after_s=600, stale_after_s=STALE_S)
    assert {j.job_id for j in lost} == {waiting_long.job_id, silent.job_id}
    assert {j.job_id for j in lost} & {just_submitted.job_id, alive.job_id} == set()


# -- cold storage ---------------------------------------------------------------------------


@pytest.fixture
def free_user(store_settings) -> str:
    return UserStore(store_settings).sign_in("ada", "ada@example.org", "Ada").user_id


def completed_for_free_user(jobs: JobStore, user_id: str, due: int) -> Job:
    job = new_job(jobs, user_id)
    jobs.claim(job.job_id, "run", STALE_S)
    assert finish(jobs, job.job_id, "run", archive_due_at=due)
    return job


def test_a_free_users_result_is_due_for_archive_only_after_its_window(
    jobs, store_settings, free_user, clock
):
    job = completed_for_free_user(jobs, free_user, due=clock.now + 300)
    assert jobs.due_for_archive(clock.now) == []
    assert not jobs.archive(jobs.get(job.job_id), {"archive_key": "k"}, store_settings.users_table)
    clock.advance(300)
    assert [j.job_id for j in jobs.due_for_archive(clock.now)] == [job.job_id]
    assert jobs.archive(jobs.get(job.job_id), {"archive_key": "cold/k"}, store_settings.users_table)
    archived = jobs.get(job.job_id)
    assert archived.job_status == JobStatus.ARCHIVED and archived.archive_key == "cold/k"
    assert not archived.result_downloadable and archived.log_available
    # Listed until its hot copy is gone, then not.
    assert [j.job_id for j in jobs.due_for_archive(clock.now)] == [job.job_id]
    jobs.hot_copy_dropped(job.job_id)
    assert jobs.due_for_archive(clock.now) == []
    assert not jobs.archive(archived, {"archive_key": "again"}, store_settings.users_table)
    assert jobs.get(job.job_id).archive_key == "cold/k"


def test_a_result_is_never_archived_once_its_user_is_premium(
    jobs, store_settings, free_user, clock
):
    job = completed_for_free_user(jobs, free_user, due=clock.now - 1)
    UserStore(store_settings).become_premium(free_user, "evt_up", "cus_1", "sub_1")
    assert not jobs.archive(jobs.get(job.job_id), {"archive_key": "k"}, store_settings.users_table)
    assert status(jobs, job.job_id) == JobStatus.COMPLETED
    jobs.unschedule_archive(job.job_id)
    assert jobs.due_for_archive(clock.now + 10**6) == []


def test_only_a_completed_job_gets_a_retention_window(jobs, clock):
    pending = new_job(jobs)
    assert not jobs.schedule_archive(pending.job_id, clock.now)
    done = new_job(jobs)
    jobs.claim(done.job_id, "run", STALE_S)
    finish(jobs, done.job_id, "run")
    assert jobs.schedule_archive(done.job_id, clock.now + 60)
    assert jobs.due_for_archive(clock.now) == []
    assert [j.job_id for j in jobs.due_for_archive(clock.now + 60)] == [done.job_id]


def test_an_archived_result_is_restored_and_downloadable_again(
    jobs, store_settings, free_user, clock
):
    job = completed_for_free_user(jobs, free_user, due=clock.now - 1)
    assert not jobs.restoring(job.job_id, "Standard", None)  # not archived yet
    jobs.archive(jobs.get(job.job_id), {"archive_key": "cold/k"}, store_settings.users_table)
    jobs.hot_copy_dropped(job.job_id)
    assert not jobs.restore_requested_again(job.job_id, "Bulk", None)  # not restoring yet
    assert not jobs.thawed(job.job_id)
    assert jobs.restoring(job.job_id, "Expedited", "retrieval-1")
    assert not jobs.restoring(job.job_id, "Expedited", "retrieval-2")  # once
    restoring = jobs.get(job.job_id)
    assert restoring.job_status == JobStatus.RESTORING and restoring.restore_tier == "Expedited"
    assert restoring.restore_job_id == "retrieval-1" and not restoring.result_downloadable
    assert jobs.restore_requested_again(job.job_id, "Standard", "retrieval-3")
    assert jobs.get(job.job_id).restore_job_id == "retrieval-3"
    assert jobs.thawed(job.job_id)
    thawed = jobs.get(job.job_id)
    assert thawed.job_status == JobStatus.COMPLETED and thawed.result_downloadable
    assert (thawed.archive_key, thawed.restore_tier, thawed.restore_job_id) == (None, None, None)
    assert thawed.archive_due_at is None and jobs.due_for_archive(clock.now + 10**6) == []
    assert not jobs.thawed(job.job_id)


def test_a_result_thawed_for_a_user_free_again_gets_a_fresh_window(
    jobs, store_settings, free_user, clock
):
    job = completed_for_free_user(jobs, free_user, due=clock.now - 1)
    jobs.archive(jobs.get(job.job_id), {"archive_key": "cold/k"}, store_settings.users_table)
    jobs.hot_copy_dropped(job.job_id)
    jobs.restoring(job.job_id, "Standard", None)
    assert jobs.thawed(job.job_id, archive_due_at=clock.now + 300)
    assert jobs.get(job.job_id).archive_due_at == clock.now + 300
    assert jobs.due_for_archive(clock.now) == []
    assert [j.job_id for j in jobs.due_for_archive(clock.now + 300)] == [job.job_id]


# -- notifications --------------------------------------------------------------------------


def test_one_sender_at_a_time_emails_about_a_job_and_only_once(jobs, clock):
    job = new_job(jobs)
    assert not jobs.lease_notification("no-such-job", 60)
    assert jobs.lease_notification(job.job_id, 60)
    assert not jobs.lease_notification(job.job_id, 60)  # another sender, lease live
    clock.advance(61)  # the first sender died holding it
    assert jobs.lease_notification(job.job_id, 60)
    jobs.release_notification(job.job_id)  # the send failed: the next try may go
    assert jobs.lease_notification(job.job_id, 60)
    assert jobs.mark_notified(job.job_id)
    assert not jobs.mark_notified(job.job_id)
    clock.advance(3600)
    assert not jobs.lease_notification(job.job_id, 60)  # notified: never again


# -- a user's list ----------------------------------------------------------------------------


def test_a_users_jobs_are_listed_newest_first_a_page_at_a_time(jobs):
    made = [new_job(jobs, "ada", submit_time=1_700_000_000 + n) for n in range(5)]
    new_job(jobs, "bob")
    seen, cursor, pages = [], None, 0
    while True:
        page = jobs.list_for_user("ada", limit=2, cursor=cursor)
        seen += page.jobs
        pages += 1
        if not page.cursor:
            break
        cursor = page.cursor
    assert pages == 3 and len(seen) == 5
    assert [j.job_id for j in seen] == [j.job_id for j in reversed(made)]
    assert seen[0] == made[-1]  # whole jobs


def test_rows_list_what_a_list_shows_in_the_same_order_and_pages(jobs):
    made = [new_job(jobs, "ada", submit_time=1_700_000_000 + n) for n in range(3)]
    first = jobs.rows_for_user("ada", limit=2)
    second = jobs.rows_for_user("ada", limit=2, cursor=first.cursor)
    rows = first.jobs + second.jobs
    assert second.cursor is None
    assert [(r.job_id, r.input_file_name, r.submit_time, r.job_status) for r in rows] == [
        (j.job_id, "sample.vcf", j.submit_time, JobStatus.PENDING) for j in reversed(made)
    ]
    assert jobs.rows_for_user("nobody").jobs == [] and jobs.rows_for_user("nobody").cursor is None


def _cursor(key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decoded(cursor: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(cursor))


def _key(**changes: object) -> dict:
    """A cursor's key as we hand it out to "ada", with `changes`."""
    key = {"job_id": {"S": "x"}, "user_id": {"S": "ada"}, "submit_time": {"N": "1"}}
    return {k: v for k, v in (key | changes).items() if v is not None}


BAD_CURSORS = {
    "not base64": "%%%",
    "not json": base64.urlsafe_b64encode(b"\xff\xfe{").decode(),
    "a list": _cursor(["job_id"]),
    "missing a key": _cursor(_key(submit_time=None)),
    "an extra key": _cursor(_key(x={"S": "y"})),
    "a wrong type": _cursor(_key(submit_time={"S": "1"})),
    "a made-up time": _cursor(_key(submit_time={"N": "1e9"})),
    "a non-string value": _cursor(_key(job_id={"S": 1})),
    "two types": _cursor(_key(job_id={"S": "x", "N": "1"})),
}


@pytest.mark.parametrize("cursor", BAD_CURSORS.values(), ids=BAD_CURSORS.keys())
def test_a_cursor_we_did_not_hand_out_is_refused(jobs, cursor):
    new_job(jobs, "ada")
    with pytest.raises(ValueError, match="invalid page cursor"):
        jobs.list_for_user("ada", limit=1, cursor=cursor)
    with pytest.raises(ValueError, match="invalid page cursor"):
        jobs.rows_for_user("ada", limit=1, cursor=cursor)


def test_another_users_cursor_is_refused(jobs):
    for n in range(2):
        new_job(jobs, "ada", submit_time=1_700_000_000 + n)
        new_job(jobs, "bob", submit_time=1_700_000_000 + n)
    adas = jobs.list_for_user("ada", limit=1).cursor
    assert _decoded(adas)["user_id"] == {"S": "ada"}
    with pytest.raises(ValueError, match="invalid page cursor"):
        jobs.list_for_user("bob", limit=1, cursor=adas)
    # Rewritten to name bob, it is a place in bob's list: what bob may see anyway.
    rewritten = _decoded(adas) | {"user_id": {"S": "bob"}}
    assert all(
        j.user_id == "bob" for j in jobs.list_for_user("bob", cursor=_cursor(rewritten)).jobs
    )
