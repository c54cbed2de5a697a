"""The invariants of a chaos run, read straight from the emulator (not through the proxy):

- every job the users submitted exists, and every job is in a final state the rules allow:
  a valid VCF ARCHIVED for a user free at the end (once past the window: it is seconds
  long here, and a downgrade gives every result a fresh one), COMPLETED for a user premium
  at the end (upgrading restores everything); an invalid one FAILED with the engine's
  message naming the line; nothing PENDING, RUNNING or RESTORING;
- each stored input is byte-identical to what its user sent, and each annotated VCF is
  exactly where its state says (results bucket xor archive bucket, one copy) and
  byte-identical (by size and SHA-256 for the cold copy, which cannot be read without a
  restore) to a reference annotation of its input made by the engine alone;
- one email per finished job; each user on the plan their last action left them on;
- every message in a dead-letter queue explained by a log line of the daemon that gave up
  on it.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from devstack.standins.mail import Outbox
from gas import aws
from gas.coldstorage import sha256_b64
from gas.jobs import Job, JobStore
from gas.settings import Settings
from gas.users import UserStore
from tests.chaos.workload import Submitted
from tests.conftest import ROOT
from tests.processes import run

FINAL = ("COMPLETED", "FAILED", "ARCHIVED")
PREMIUM_AT_THE_END = ("premium", "upgrades")
WORK_QUEUES = (
    "job_requests_queue",
    "notifications_queue",
    "archive_queue",
    "restore_queue",
    "thaw_queue",
)


@dataclass
class Findings:
    jobs: int = 0
    by_status: Counter = field(default_factory=Counter)
    unacknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # bytes or states that break a rule
    emails: int = 0
    resent: list[str] = field(default_factory=list)  # notify killed between SES and record
    outbox_s: float = 0.0  # how long the emulator took to list its sent mail
    dlq: int = 0
    unexplained_dlq: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return self.lost + self.duplicated + self.stuck + self.wrong + self.unexplained_dlq


def reference_annotations(inputs: dict[str, tuple[str, bytes]], work: Path) -> dict[str, dict]:
    """job id -> {"sha256", "size"} or {"error"}: each input annotated by the engine alone
    (tests/chaos/reference.py, one process for all of them)."""
    for job_id, (name, body) in inputs.items():
        (work / job_id).mkdir(parents=True, exist_ok=True)
        (work / job_id / name).write_bytes(body)
    done = run(
        [sys.executable, "-m", "tests.chaos.reference", str(work)],
        timeout=900,
        cwd=ROOT,
        check=True,
    )
    return json.loads(done.stdout)


def settled(jobs: list[Job], roles: dict[str, str]) -> list[str]:
    """Jobs not (yet) where the rules want them: not final, notified, and for a user free at
    the end ARCHIVED (the window is seconds long; a downgrade gives every result a fresh
    one), for a user premium at the end COMPLETED (upgrading restores everything)."""
    waiting = []
    for job in jobs:
        premium = roles.get(job.user_id, "") in PREMIUM_AT_THE_END
        status = str(job.job_status)
        if status not in FINAL or job.claim_id is not None:
            waiting.append(f"{job.job_id} {status}")
        elif job.notified_at is None:
            waiting.append(f"{job.job_id} {status}, its user not emailed")
        elif status == "COMPLETED" and not premium:
            waiting.append(f"{job.job_id} COMPLETED for a free user, never archived")
        elif status == "ARCHIVED" and premium:
            waiting.append(f"{job.job_id} ARCHIVED for a premium user, never restored")
    return waiting


def all_jobs(settings: Settings, user_ids: list[str]) -> list[Job]:
    """Every job of these users, each read afresh by its key (the user index may lag)."""
    store = JobStore(settings)
    ids = []
    for user_id in user_ids:
        cursor = None
        while True:
            page = store.list_for_user(user_id, limit=100, cursor=cursor)
            ids += [job.job_id for job in page.jobs]
            if not (cursor := page.cursor):
                break
    return [job for job_id in ids if (job := store.get(job_id)) is not None]


def check(
    settings: Settings,
    submitted: list[Submitted],
    roles: dict[str, str],
    log_dir: Path,
    notify_kills: int,
) -> Findings:
    """Everything above, once GAS's processes are stopped (nothing moves meanwhile)."""
    found = Findings()
    jobs = all_jobs(settings, list(roles))
    by_id = {job.job_id: job for job in jobs}
    found.jobs = len(jobs)
    found.by_status = Counter(str(job.job_status) for job in jobs)
    sent = {s.job_id: s for s in submitted}
    for s in submitted:
        if s.job_id not in by_id:
            found.lost.append(f"{s.job_id} ({s.user}, {s.path}): acknowledged but not recorded")
    s3 = aws.client(settings, "s3")
    inputs = {}
    for job in jobs:
        stored = s3.get_object(Bucket=job.s3_inputs_bucket, Key=job.s3_key_input_file)
        body = stored["Body"].read()
        if job.job_id in sent and sent[job.job_id].body != body:
            found.wrong.append(f"{job.job_id}: the stored input differs from what was sent")
        if job.job_id not in sent:
            found.unacknowledged += 1
        inputs[job.job_id] = (job.input_file_name, body)
    reference = reference_annotations(inputs, log_dir / "reference")

    found.stuck = settled(jobs, roles)
    for job in jobs:
        _check_job(settings, s3, job, reference[job.job_id], found)
    _check_emails(settings, jobs, found, log_dir, notify_kills)
    _check_plans(settings, roles, found)
    _check_dlqs(settings, log_dir, found)
    return found


def _check_job(settings: Settings, s3, job: Job, expected: dict, found: Findings) -> None:
    status = str(job.job_status)
    if status not in FINAL:
        return  # counted as stuck
    if "error" in expected:
        if status != "FAILED" or not job.error or expected["error"] not in job.error:
            found.wrong.append(
                f"{job.job_id}: {status} ({job.error!r}); the engine alone says "
                f"{expected['error']!r}"
            )
        return
    if status == "FAILED":
        found.lost.append(f"{job.job_id}: a valid VCF FAILED: {job.error}")
        return
    key = job.s3_key_result_file or ""
    hot = _object(s3, settings.results_bucket, key)
    versions = s3.list_object_versions(Bucket=settings.archive_bucket, Prefix=key)
    cold = [v for v in versions.get("Versions", []) if v["Key"] == key]
    if (job.result_size, job.result_sha256) != (expected["size"], expected["sha256"]):
        found.wrong.append(
            f"{job.job_id}: recorded {job.result_size} B / {job.result_sha256}, "
            f"the engine alone made {expected['size']} B / {expected['sha256']}"
        )
    if status == "COMPLETED":
        if hot is None:
            found.lost.append(f"{job.job_id}: COMPLETED without its result in the results bucket")
        elif sha256_b64(hot) != expected["sha256"]:
            found.wrong.append(f"{job.job_id}: the result differs from the engine's")
        if cold:
            found.duplicated.append(f"{job.job_id}: COMPLETED and {len(cold)} cold copies")
        return
    # ARCHIVED: one cold copy, the one recorded, and no hot copy.
    if hot is not None:
        found.duplicated.append(f"{job.job_id}: ARCHIVED but still in the results bucket")
    if not cold:
        found.lost.append(f"{job.job_id}: ARCHIVED without a cold copy")
        return
    if len(cold) > 1:
        found.duplicated.append(f"{job.job_id}: {len(cold)} cold copies")
    head = s3.head_object(
        Bucket=settings.archive_bucket,
        Key=key,
        VersionId=job.archive_version or "",
        ChecksumMode="ENABLED",
    )
    if (head["ContentLength"], head.get("ChecksumSHA256")) != (
        expected["size"],
        expected["sha256"],
    ):
        found.wrong.append(f"{job.job_id}: the cold copy differs from the engine's result")


def _object(s3, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


def log_entries(path: Path) -> Iterator[dict]:
    """The JSON log lines of a process (all its lives; a line cut short by a kill skipped)."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                yield json.loads(line)


def _notified(log_dir: Path) -> Counter:
    """How many times notify logged that it emailed about each job."""
    entries = log_entries(log_dir / "notify.log")
    return Counter(e["job_id"] for e in entries if e.get("msg") == "user notified")


def _check_emails(
    settings: Settings, jobs: list[Job], found: Findings, log_dir: Path, notify_kills: int
) -> None:
    """One email per finished job. Notify sends, then records: killed in between, the next
    delivery sends again (at least once, never zero times). Such an email (sent, with no
    log line of notify saying so, in a run that killed notify) is counted apart; any other
    second email is a duplicate."""
    started = time.monotonic()
    mail = Outbox(settings.aws_endpoint_url or "", timeout=900).sent()
    found.outbox_s = time.monotonic() - started
    found.emails = len(mail)
    notified = _notified(log_dir)
    for job in jobs:
        if str(job.job_status) not in FINAL:
            continue
        count = sum(f"/annotations/{job.job_id}" in m.body for m in mail)
        if count == 0:
            found.lost.append(f"{job.job_id}: no email about its outcome")
        elif count > 1 and notify_kills and notified[job.job_id] < count:
            found.resent.append(f"{job.job_id}: {count} emails, {notified[job.job_id]} logged")
        elif count > 1:
            found.duplicated.append(f"{job.job_id}: {count} emails about its outcome")


def _check_plans(settings: Settings, roles: dict[str, str], found: Findings) -> None:
    users = UserStore(settings)
    for user_id, role in roles.items():
        user = users.get(user_id)
        premium = bool(user and user.premium)
        if premium != (role in ("premium", "upgrades")):
            found.wrong.append(f"user {user_id} ({role}) is {'premium' if premium else 'free'}")


def _check_dlqs(settings: Settings, log_dir: Path, found: Findings) -> None:
    """Read every DLQ (the messages stay); each must be named by a daemon's log line that
    says why it gave up (a handler failure or a malformed message)."""
    sqs = aws.client(settings, "sqs")
    reasons = {
        entry["message_id"]
        for path in log_dir.glob("*.log")
        for entry in log_entries(path)
        if "message_id" in entry and entry.get("level") in ("warning", "error")
    }
    for attribute in WORK_QUEUES:
        name = f"{getattr(settings, attribute)}-dlq"
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        seen = set()
        while True:
            batch = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
            )
            messages = [m for m in batch.get("Messages", []) if m["MessageId"] not in seen]
            if not messages:
                break
            for message in messages:
                seen.add(message["MessageId"])
                found.dlq += 1
                if message["MessageId"] not in reasons:
                    found.unexplained_dlq.append(
                        f"{name}: {message['MessageId']} {message['Body'][:200]}"
                    )
