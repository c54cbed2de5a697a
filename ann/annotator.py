"""The annotator daemon: runs each requested job, once in effect.

For a job request it claims the job (a conditional PENDING -> RUNNING, or a
take-over of a RUNNING job whose run stopped heartbeating), then runs it in a
process of its own, forked by the warm runners (`ann/warm.py`: the engine and its
libraries imported once), so a crash in annotation cannot take the daemon down;
the worker loop keeps the message invisible meanwhile and deletes it once the run
has recorded COMPLETED or FAILED.

A request for a job another run is working on (fresh heartbeat) is postponed,
not dropped: if that run dies, this message is how the job gets taken over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from gas.jobs import JobStatus, JobStore
from gas.messages import Bus, JobRequest
from gas.metrics import count_outcome
from gas.settings import Settings, command_line
from gas.users import UserStore
from gas.worker import Handler, Message, RetryLater, serve

log = logging.getLogger("ann.annotator")
T = TypeVar("T")

CRASHED = (
    "The annotation stopped unexpectedly several times; this is our fault, not your file's. "
    "Please submit it again."
)


def slots(settings: Settings) -> int:
    return settings.annotator_slots or os.cpu_count() or 1


def make_handler(settings: Settings) -> Handler:
    jobs, bus, users = JobStore(settings), Bus(settings), UserStore(settings)
    runners = WarmRunners()
    runners.start()  # importing the engine and its libraries, while we connect

    def handle(message: Message) -> None:
        job_id = message.expect(JobRequest).job_id
        claim_id = uuid.uuid4().hex
        claimed = jobs.claim(job_id, claim_id, settings.job_stale_after_s)
        if claimed is None:
            _not_claimable(jobs, bus, job_id, settings, message.receive_count)
            return
        log.info(
            "job claimed", extra={"claim_id": claim_id, "receive_count": message.receive_count}
        )
        user = users.get(claimed.user_id)
        plan = "premium" if user and user.premium else "free"
        limit_s = settings.job_time_limit_s if plan == "premium" else settings.free_job_time_limit_s
        started = time.monotonic()
        ended = runners.run(job_id, claim_id, plan, limit_s)
        log.info(
            "job run ended",
            extra={
                "exit_code": ended.exit_code,
                "duration_ms": round((time.monotonic() - started) * 1000),
                "peak_rss_mib": ended.peak_rss_mib,
                "timed_out": ended.timed_out,
            },
        )
        if ended.timed_out and jobs.fail(job_id, time_limit(limit_s, plan), claim_id=claim_id):
            bus.job_finished(job_id, claimed.user_id, JobStatus.FAILED)
            count_outcome(settings, JobStatus.FAILED)
            return
        if ended.exit_code == 0:
            return
        after = jobs.get(job_id)
        if after and after.job_status in (JobStatus.COMPLETED, JobStatus.FAILED):
            # run.py recorded the outcome, then died, perhaps before announcing it.
            # Announcing twice is harmless: notify emails once, archive checks the state.
            bus.job_finished(after.job_id, after.user_id, after.job_status)
            return
        # run.py could not finish. Give the job back for another try, or, when this was the
        # last delivery the queue allows, tell the user rather than leave it hanging.
        if message.receive_count >= settings.queue_max_receive_count:
            if jobs.fail(job_id, CRASHED, claim_id=claim_id):
                bus.job_finished(job_id, claimed.user_id, JobStatus.FAILED)
                count_outcome(settings, JobStatus.FAILED)
            return
        jobs.release(job_id, claim_id)
        raise RuntimeError(f"job run exited with {ended.exit_code}; handed back for another try")

    return handle


@dataclass(frozen=True)
class RunEnded:
    exit_code: int
    timed_out: bool  # stopped at its time limit
    # The run's peak resident memory. A child's peak starts from what it was forked with (the
    # annotator's own, tens of MiB), so below that it reads as the annotator's.
    peak_rss_mib: int


# A job whose process died with the runners process (killed, crashed): handed back.
LOST = RunEnded(-signal.SIGKILL, timed_out=False, peak_rss_mib=0)


class WarmRunners:
    """The annotator's side of `ann/warm.py`: the process that forks one process per job
    with everything imported. Started with the annotator, started again if it dies."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: BinaryIO | None = None
        self._started: dict[str, int] = {}  # claim id -> the pid of its job's process
        self._ended: dict[int, dict[str, int]] = {}  # pid -> how it ended

    def start(self) -> None:
        with self._changed:
            self._ensure_running()

    def _ensure_running(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        requests_read, requests_write = os.pipe()
        replies_read, replies_write = os.pipe()
        # A session of its own: a stop signal for the annotator's process group (honcho's)
        # must not reach the jobs, which the grace period lets finish. systemd signals by
        # cgroup, not by group or session: with KillMode=mixed its SIGTERM goes to the
        # annotator only, and its SIGKILL, once the annotator has exited or TimeoutStopSec
        # has passed, to everything left in the unit's cgroup, this session included; so
        # there KillMode=mixed protects the jobs, and TimeoutStopSec > GAS_SHUTDOWN_GRACE_S
        # lets the grace period end first. If the annotator dies, the runners and their
        # jobs die with it (PDEATHSIG).
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ann.warm",
                str(os.getpid()),
                str(requests_read),
                str(replies_write),
            ],
            pass_fds=(requests_read, replies_write),
            start_new_session=True,
        )
        os.close(requests_read)
        os.close(replies_write)
        self._process, self._requests = process, os.fdopen(requests_write, "wb", buffering=0)
        replies = os.fdopen(replies_read, "rb")
        threading.Thread(target=self._read, args=(process, replies), daemon=True).start()

    def _read(self, process: subprocess.Popen[bytes], replies: BinaryIO) -> None:
        for line in replies:
            reply = json.loads(line)
            with self._changed:
                if "claim_id" in reply:
                    self._started[reply["claim_id"]] = reply["pid"]
                else:
                    self._ended[reply["pid"]] = reply
                self._changed.notify_all()
        process.wait()  # gone: its jobs went with it (PDEATHSIG)
        with self._changed:
            self._changed.notify_all()
        log.warning("the warm runners process exited with %s", process.returncode)

    def run(self, job_id: str, claim_id: str, plan: str, time_limit_s: float) -> RunEnded:
        """Run one claimed job of a user on `plan`, stopped (SIGKILL) past its limit."""
        request = json.dumps({"job_id": job_id, "claim_id": claim_id, "plan": plan})
        with self._changed:
            self._ensure_running()
            process = self._process
            assert process is not None and self._requests is not None
            with contextlib.suppress(BrokenPipeError):  # it died: seen below, a job lost
                self._requests.write(request.encode() + b"\n")
            pid = self._wait(lambda: self._started.pop(claim_id, None), process)
        if pid is None:
            return LOST
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # the job's session, all it started

        timer = threading.Timer(time_limit_s, stop)
        timer.daemon = True
        timer.start()
        try:
            with self._changed:
                ended = self._wait(lambda: self._ended.pop(pid, None), process)
        finally:
            timer.cancel()
        if ended is None:
            return LOST
        # A forked job's peak starts from what it was forked with (the runners' own).
        return RunEnded(ended["exit_code"], timed_out.is_set(), ended["peak_rss_kib"] // 1024)

    def _wait(self, found: Callable[[], T | None], process: subprocess.Popen[bytes]) -> T | None:
        """Until `found()` gives a value, or the runners process serving it is gone."""
        while (value := found()) is None and process.poll() is None:
            self._changed.wait(1)
        return value if value is not None else found()


def time_limit(limit_s: int, plan: str) -> str:
    """The error of a job stopped at its time limit."""
    hours, minutes = divmod(limit_s // 60, 60)
    if limit_s % 60:
        took = f"{limit_s} s"
    else:
        took = " ".join(f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min")) if n)
    return f"the annotation took longer than {took}, the most a job may run on the {plan} plan"


def _not_claimable(
    jobs: JobStore, bus: Bus, job_id: str, settings: Settings, receive_count: int
) -> None:
    job = jobs.get(job_id)
    if job is None:
        log.warning("job request for an unknown job; dropped")
        return
    if job.job_status != JobStatus.RUNNING:
        if job.job_status != JobStatus.PENDING and not job.notified_at:
            # The run may have died between recording the outcome and announcing it (with
            # its annotator, which would have announced it): the user was never told. The
            # job may be archived, even restoring, by the time this delivery comes.
            outcome = (
                JobStatus.FAILED if job.job_status == JobStatus.FAILED else JobStatus.COMPLETED
            )
            bus.job_finished(job.job_id, job.user_id, outcome)
        log.info("job already %s; request dropped", job.job_status)
        return
    # Another run holds it. Look again when its heartbeat would be stale; but not into the
    # dead-letter queue (each look is a receive): near the limit, drop the request, since the
    # lost-job sweep requests a RUNNING job again once its run goes silent.
    if receive_count >= settings.queue_max_receive_count - 1:
        log.info("job is running elsewhere; duplicate request dropped")
        return
    silent_for = int(time.time()) - (job.heartbeat_at or 0)
    raise RetryLater(
        max(1, settings.job_stale_after_s - silent_for + 1), "job is running elsewhere"
    )


def lost_job_sweep(settings: Settings) -> tuple[float, Callable[[], None]]:
    """Every GAS_JOB_SWEEP_S, request again the jobs whose request was lost: a process that
    died between recording a job and publishing it, or a request dead-lettered. A request
    too many is harmless (the claim decides who runs a job) but not free: each job is
    requested again at most once per interval, whichever annotator sweeps first."""
    jobs, bus = JobStore(settings), Bus(settings)

    interval_s = min(settings.job_resubmit_after_s, settings.job_stale_after_s)

    def sweep() -> None:
        now = int(time.time())
        for job in jobs.lost(now, settings.job_resubmit_after_s, settings.job_stale_after_s):
            if not jobs.request_again(job.job_id, now, interval_s):
                continue  # requested again lately (by this annotator or another)
            log.warning(
                "job looks lost; requesting it again",
                extra={"job_id": job.job_id, "user_id": job.user_id, "status": job.job_status},
            )
            bus.job_requested(job.job_id, job.user_id)

    return float(settings.job_sweep_s), sweep


if __name__ == "__main__":
    command_line("python -m ann.annotator", __doc__).parse_args()
    serve(
        "annotator",
        lambda s: s.job_requests_queue,
        make_handler,
        concurrency=slots,
        batch_size=slots,
        every=lost_job_sweep,
    )
