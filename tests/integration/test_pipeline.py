"""The job pipeline as processes: submit -> annotator -> run.py -> notify, exactly once."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ann.anntools import annotate_file
from devstack.standins.mail import Outbox
from gas import aws
from gas.jobs import Job, JobStore
from gas.messages import Bus
from gas.metrics import OUTCOME_METRICS
from gas.settings import settings_from
from gas.users import UserStore
from tests.conftest import process_env, wait_until
from tests.processes import Process, children

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HEADER = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
RECORDS = (
    b"1\t69511\t.\tA\tG\t50\tPASS\tDP=10\n"
    b"chr1\t1014143\t.\tC\tT\t50\tPASS\t.\n"
    b"chr17\t7674220\t.\tC\tT\t50\tPASS\t.\n"
)


@pytest.fixture
def pipeline_values(gas_values):
    return {**gas_values, "GAS_JOB_STALE_AFTER_S": "6", "GAS_ANNOTATOR_SLOTS": "2",
            "GAS_SHUTDOWN_GRACE_S": "30"}  # fmt: skip


@pytest.fixture
def pipeline(pipeline_values, provisioned):
    """Settings of the daemons under test (the emulator provisioned)."""
    return settings_from(pipeline_values)


class Daemons:
    def __init__(self, values, tmp_path: Path) -> None:
        self.values, self.tmp_path, self.procs = values, tmp_path, {}

    def start(self, module: str, name: str | None = None) -> Process:
        name = name or module
        # A second process under one name would escape stop_all and outlive the test.
        assert name not in self.procs, f"a daemon named {name} is already running"
        # A group of its own, as under honcho, whose stop signal goes to the whole group.
        with (self.tmp_path / f"{name}.log").open("a") as log:
            proc = Process(
                [sys.executable, "-m", module],
                cwd=ROOT,
                env=process_env(self.values),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        return proc

    def logs(self, name: str) -> list[dict]:
        text = (self.tmp_path / f"{name}.log").read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def stop_all(self) -> None:
        """Kill each daemon with everything it started (a run.py is in a session of its
        own), pass or fail."""
        for proc in self.procs.values():
            proc.kill_all()


@pytest.fixture
def daemons(pipeline_values, tmp_path):
    running = Daemons(pipeline_values, tmp_path)
    yield running
    running.stop_all()


@pytest.fixture
def user(pipeline):
    return UserStore(pipeline).sign_in(f"u-{uuid.uuid4()}", "ada@example.org", "Ada", "")


def submit(settings, user, content: bytes = HEADER + RECORDS, name: str = "sample.vcf",
           publish: bool = True) -> Job:  # fmt: skip
    """A job as the web tier records it: input in the bucket, PENDING item, job request."""
    job_id = str(uuid.uuid4())
    key = f"{user.user_id}/{job_id}/{name}"
    aws.client(settings, "s3").put_object(Bucket=settings.inputs_bucket, Key=key, Body=content)
    job = Job(job_id=job_id, user_id=user.user_id, input_file_name=name,
              s3_inputs_bucket=settings.inputs_bucket, s3_key_input_file=key,
              submit_time=int(time.time()))  # fmt: skip
    JobStore(settings).create(job)
    if publish:
        Bus(settings).job_requested(job_id, user.user_id)
    return job


def finished(settings, job_id: str, timeout: float = 60) -> Job:
    jobs = JobStore(settings)

    def done():
        job = jobs.get(job_id)
        # Every move to a final state removes the claim in the same write. The emulator
        # applies a write to the stored item in place, without isolation, so a read landing
        # mid-write can show the new status without the rest: wait for the whole write.
        final = job and job.job_status in ("COMPLETED", "FAILED") and job.claim_id is None
        return job if final else None

    return wait_until(done, timeout=timeout, interval=0.1, what=f"job {job_id} to finish")


def sent(settings) -> list:
    return Outbox(settings.aws_endpoint_url).sent()


def results(settings) -> list[str]:
    listing = aws.client(settings, "s3").list_objects_v2(Bucket=settings.results_bucket)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_a_submitted_job_completes_with_the_engines_result_and_one_email(
    pipeline, user, daemons, tmp_path
):
    daemons.start("ann.annotator")
    daemons.start("util.notify")
    job = finished(pipeline, submit(pipeline, user).job_id)
    assert job.job_status == "COMPLETED"
    assert job.variant_count == 3 and sum(job.summary.values()) == 3
    prefix = f"{user.user_id}/{job.job_id}/"
    assert results(pipeline) == [
        prefix + "sample.annot.vcf",
        prefix + "sample.variants.parquet",
        prefix + "sample.vcf.count.log",
    ]
    # The stored result is exactly what the engine makes of the same input.
    (tmp_path / "sample.vcf").write_bytes(HEADER + RECORDS)
    expected = annotate_file(tmp_path / "sample.vcf", out_dir=tmp_path / "out", assembly="hg19")
    stored = (
        aws.client(pipeline, "s3")
        .get_object(Bucket=pipeline.results_bucket, Key=prefix + "sample.annot.vcf")["Body"]
        .read()
    )
    assert stored == expected.annotated_path.read_bytes()
    # So are the variant table (the viewer's, on the item as a private key) and the stats.
    assert job.s3_key_variants_file == prefix + "sample.variants.parquet"
    table = aws.client(pipeline, "s3").get_object(
        Bucket=pipeline.results_bucket, Key=job.s3_key_variants_file
    )["Body"]
    assert pq.read_table(io.BytesIO(table.read())) == pq.read_table(expected.variants_path)
    assert job.stats == expected.stats and job.stats["variants"] == 3
    assert "stats" in job.public() and "s3_key_variants_file" not in job.public()
    wait_until(lambda: len(sent(pipeline)) == 1, what="the email")
    (email,) = sent(pipeline)
    assert email.to == ["ada@example.org"]
    assert email.subject == "GAS: annotation of sample.vcf COMPLETED"
    assert f"/annotations/{job.job_id}" in email.body


def test_a_bad_vcf_fails_with_the_engines_message_and_is_not_retried(pipeline, user, daemons):
    daemons.start("ann.annotator")
    daemons.start("util.notify")
    bad = HEADER + b"chr1\tnot-a-number\t.\tA\tG\t50\tPASS\t.\n"
    job = finished(pipeline, submit(pipeline, user, bad, "bad.vcf").job_id)
    assert job.job_status == "FAILED"
    assert "line 3" in job.error and "POS" in job.error
    wait_until(lambda: len(sent(pipeline)) == 1, what="the failure email")
    assert job.error in sent(pipeline)[0].body
    claims = [e for e in daemons.logs("ann.annotator") if e["msg"] == "job claimed"]
    assert len(claims) == 1
    assert outcomes_counted(pipeline) == {"JobsCompleted": 0, "JobsFailed": 1}


def test_a_missing_input_fails_the_job(pipeline, user, daemons):
    daemons.start("ann.annotator")
    job = submit(pipeline, user, publish=False)
    aws.client(pipeline, "s3").delete_object(
        Bucket=pipeline.inputs_bucket, Key=job.s3_key_input_file
    )
    Bus(pipeline).job_requested(job.job_id, user.user_id)
    failed = finished(pipeline, job.job_id)
    assert (failed.job_status, failed.error) == ("FAILED", "input file not found")


def outcomes_counted(settings) -> dict[str, float]:
    """The job outcome metrics in CloudWatch (what the failure-rate alarm reads): totals."""
    cloudwatch, now = aws.client(settings, "cloudwatch"), time.time()
    return {
        name: sum(
            point["Sum"]
            for point in cloudwatch.get_metric_statistics(
                Namespace=settings.metrics_namespace, MetricName=name, StartTime=now - 3600,
                EndTime=now + 60, Period=60, Statistics=["Sum"],
            )["Datapoints"]
        )
        for name in OUTCOME_METRICS.values()
    }  # fmt: skip


def queue_empty(settings, name: str) -> bool:
    """Nothing waiting, in flight or delayed in queue `name`."""
    sqs = aws.client(settings, "sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    kinds = ("", "NotVisible", "Delayed")
    return all(attrs[f"ApproximateNumberOfMessages{kind}"] == "0" for kind in kinds)


def test_a_request_delivered_twice_gives_one_result_and_one_email(pipeline, user, daemons):
    job = submit(pipeline, user)
    Bus(pipeline).job_requested(job.job_id, user.user_id)  # the duplicate
    daemons.start("ann.annotator")
    daemons.start("util.notify")
    assert finished(pipeline, job.job_id).job_status == "COMPLETED"
    wait_until(lambda: sent(pipeline), what="an email")
    # Both requests are handled, none dead-lettered. Which way the duplicate goes depends on
    # timing, and either is right: postponed while the job runs, then dropped as COMPLETED;
    # or, on a machine slow enough that the run had not yet said it was alive, it takes the
    # job over and the first run, finding its claim gone, does nothing.
    wait_until(lambda: queue_empty(pipeline, pipeline.job_requests_queue), timeout=60,
               what="both requests handled")  # fmt: skip
    assert queue_empty(pipeline, f"{pipeline.job_requests_queue}-dlq")
    logs = daemons.logs("ann.annotator")  # run.py logs there too
    assert len([e for e in logs if e["msg"] == "job completed"]) == 1
    wait_until(lambda: queue_empty(pipeline, pipeline.notifications_queue), what="emails sent")
    assert len(sent(pipeline)) == 1
    assert len(results(pipeline)) == 3
    assert outcomes_counted(pipeline) == {"JobsCompleted": 1, "JobsFailed": 0}


def test_twenty_jobs_at_once_each_complete_exactly_once(pipeline, user, daemons):
    jobs = [submit(pipeline, user, name=f"s{i}.vcf") for i in range(20)]
    daemons.start("ann.annotator")
    daemons.start("util.notify")
    for job in jobs:
        assert finished(pipeline, job.job_id, timeout=120).job_status == "COMPLETED"
    assert len(results(pipeline)) == 60
    wait_until(lambda: len(sent(pipeline)) == 20, timeout=30, what="twenty emails")
    subjects = sorted(e.subject for e in sent(pipeline))
    assert subjects == sorted(f"GAS: annotation of s{i}.vcf COMPLETED" for i in range(20))


def big_vcf(records: int) -> bytes:
    """A valid VCF large enough that annotating it takes a while."""
    lines = [f"chr1\t{1_000_000 + 7 * i}\t.\tA\tG\t50\tPASS\t.\n".encode() for i in range(records)]
    return gzip.compress(HEADER + b"".join(lines), compresslevel=1)


def big_job_running(settings, user) -> Job:
    """A job that takes a while, once an annotator has started it."""
    job = submit(settings, user, big_vcf(400_000), "big.vcf.gz")
    jobs = JobStore(settings)
    wait_until(lambda: jobs.get(job.job_id).job_status == "RUNNING", interval=0.02,
               what="the job to start")  # fmt: skip
    return job


def test_a_job_survives_kill_9_of_its_annotator(pipeline, user, daemons):
    first = daemons.start("ann.annotator", "first")
    job = big_job_running(pipeline, user)
    first.send_signal(signal.SIGKILL)
    first.wait()
    daemons.start("ann.annotator", "second")
    done = finished(pipeline, job.job_id, timeout=90)
    assert done.job_status == "COMPLETED"
    assert len(results(pipeline)) == 3
    takeovers = [e for e in daemons.logs("second") if e["msg"] == "job claimed"]
    assert len(takeovers) == 1


def child_running(parent: int, module: str) -> int | None:
    """The pid of a child of `parent` running `python -m <module>`, if there is one."""
    return next((pid for pid, argv in children(parent) if module in argv), None)


def test_a_job_survives_kill_9_of_the_warm_runners(pipeline, user, daemons):
    annotator = daemons.start("ann.annotator")
    # A job may finish between seeing it RUNNING and the kill landing (it takes about a
    # second): then nothing was interrupted, and another job is tried.
    for _ in range(3):
        job = big_job_running(pipeline, user)
        runners = wait_until(lambda: child_running(annotator.pid, "ann.warm"), what="the runners")
        os.kill(runners, signal.SIGKILL)  # and with them, the job's process (PDEATHSIG)
        done = finished(pipeline, job.job_id, timeout=120)
        assert done.job_status == "COMPLETED"
        logs = [e for e in daemons.logs("ann.annotator") if e.get("job_id") == job.job_id]
        if len([e for e in logs if e["msg"] == "job claimed"]) == 2:  # handed back, run again
            break
    else:
        pytest.fail("no job was still running when its runners were killed, in 3 tries")
    assert len([e for e in logs if e["msg"] == "job completed"]) == 1
    assert annotator.poll() is None  # the annotator lives on, with new runners
    assert child_running(annotator.pid, "ann.warm") not in (None, runners)


def test_sigterm_lets_the_running_job_finish(pipeline, user, daemons):
    annotator = daemons.start("ann.annotator")
    job = big_job_running(pipeline, user)
    jobs = JobStore(pipeline)
    annotator.signal_group(signal.SIGTERM)  # the whole group, as honcho does
    assert annotator.wait(60) == 0
    assert jobs.get(job.job_id).job_status == "COMPLETED"
    assert not [e for e in daemons.logs("ann.annotator") if e.get("exit_code", 0) != 0]


def test_sigterm_to_the_main_process_only_lets_the_running_job_finish(pipeline, user, daemons):
    annotator = daemons.start("ann.annotator")
    job = big_job_running(pipeline, user)
    jobs = JobStore(pipeline)
    annotator.send_signal(signal.SIGTERM)  # the annotator only, as KillMode=mixed does
    assert annotator.wait(60) == 0
    assert jobs.get(job.job_id).job_status == "COMPLETED"
    assert not [e for e in daemons.logs("ann.annotator") if e.get("exit_code", 0) != 0]


def test_sigterm_past_the_grace_period_hands_the_job_back(pipeline_values, pipeline, user,
                                                          daemons):  # fmt: skip
    daemons.values = {**pipeline_values, "GAS_SHUTDOWN_GRACE_S": "0"}
    annotator = daemons.start("ann.annotator", "first")
    job = big_job_running(pipeline, user)
    annotator.signal_group(signal.SIGTERM)
    assert annotator.wait(30) == 0
    handed_back = [e for e in daemons.logs("first") if e["msg"].startswith("grace period over")]
    assert len(handed_back) == 1
    daemons.start("ann.annotator", "second")
    assert finished(pipeline, job.job_id, timeout=90).job_status == "COMPLETED"
    assert len(results(pipeline)) == 3


def test_an_email_ses_refuses_is_retried_then_dead_lettered(pipeline_values, pipeline, user,
                                                           daemons):  # fmt: skip
    # A sender SES never verified: every send is refused (MessageRejected).
    daemons.values = {**pipeline_values, "GAS_SES_SENDER": "nobody@unverified.example"}
    daemons.start("util.notify")
    job = submit(pipeline, user, publish=False)
    JobStore(pipeline).fail(job.job_id, "test failure", expected="PENDING")
    Bus(pipeline).job_finished(job.job_id, user.user_id, "FAILED")
    sqs = aws.client(pipeline, "sqs")
    dlq = sqs.get_queue_url(QueueName=f"{pipeline.notifications_queue}-dlq")["QueueUrl"]

    def dead_lettered() -> bool:
        attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
        return attrs["ApproximateNumberOfMessages"] == "1"

    wait_until(dead_lettered, timeout=40, what="the message in the DLQ")
    failures = [e for e in daemons.logs("util.notify") if e["level"] == "error"]
    assert len(failures) == 5 and all("MessageRejected" in e["exc"] for e in failures)
    assert sent(pipeline) == []
    assert JobStore(pipeline).get(job.job_id).notified_at is None


def test_an_outcome_whose_announcement_was_lost_is_announced_again(pipeline, user, daemons):
    """The state a kill -9 leaves between recording an outcome and publishing it."""
    jobs = JobStore(pipeline)
    job = submit(pipeline, user, publish=False)
    claimed = jobs.claim(job.job_id, "dead-run", stale_after_s=60)
    assert jobs.fail(claimed.job_id, "planted outcome", claim_id="dead-run")  # never announced
    daemons.start("ann.annotator")
    daemons.start("util.notify")
    Bus(pipeline).job_requested(job.job_id, user.user_id)  # the request comes back
    wait_until(lambda: len(sent(pipeline)) == 1, what="the email of the planted outcome")
    assert "planted outcome" in sent(pipeline)[0].body


def test_two_notifiers_racing_on_duplicates_send_one_email(pipeline, user, daemons):
    jobs = JobStore(pipeline)
    job = submit(pipeline, user, publish=False)
    jobs.claim(job.job_id, "run", stale_after_s=60)
    jobs.fail(job.job_id, "an outcome", claim_id="run")
    for _ in range(4):  # duplicates, waiting before either notifier starts
        Bus(pipeline).job_finished(job.job_id, user.user_id, "FAILED")
    daemons.start("util.notify", "n1")
    daemons.start("util.notify", "n2")
    wait_until(lambda: sent(pipeline), what="an email")
    wait_until(lambda: queue_empty(pipeline, pipeline.notifications_queue), timeout=30,
               what="all duplicates handled")  # fmt: skip
    assert len(sent(pipeline)) == 1


def test_the_sweep_runs_jobs_whose_request_was_lost(pipeline_values, pipeline, user, daemons):
    """A job recorded but never published, and a RUNNING job whose run and message are gone."""
    jobs = JobStore(pipeline)
    never_published = submit(pipeline, user, publish=False)
    abandoned = submit(pipeline, user, publish=False)
    jobs.claim(abandoned.job_id, "a-run-that-died", stale_after_s=60)
    daemons.values = {**pipeline_values, "GAS_JOB_SWEEP_S": "1", "GAS_JOB_RESUBMIT_AFTER_S": "1"}
    daemons.start("ann.annotator")
    for job in (never_published, abandoned):
        assert finished(pipeline, job.job_id, timeout=60).job_status == "COMPLETED"
    assert len(results(pipeline)) == 6


def test_a_failed_payment_is_emailed(pipeline, user, daemons):
    UserStore(pipeline).note_payment_failed(user.user_id, "evt_1", "Your last payment failed.")
    Bus(pipeline).payment_failed(user.user_id)
    daemons.start("util.notify")
    wait_until(lambda: sent(pipeline), what="the email")
    (email,) = sent(pipeline)
    assert email.to == ["ada@example.org"]
    assert email.subject == "GAS: your subscription payment failed"
    assert "Your last payment failed." in email.body and "/profile" in email.body
