"""One job, start to finish: `python -m ann.run <job_id> <claim_id> <annotator pid> <plan>`.

Run for a job the annotator has claimed (RUNNING with `claim_id`): by the warm
runners (`ann/warm.py`, a process forked per job calling `execute`), or as a command.
Downloads the input, annotates it with AnnTools, uploads the annotated VCF and
its log, records COMPLETED (or FAILED with the engine's message) and publishes
the outcome. While it works, a heartbeat records progress every 2 s, which also
tells other annotators the job is alive. Its work folder goes whatever happens.

Exit status: 0 when the job reached COMPLETED or FAILED (by this run or another);
non-zero when it could not (an AWS error that outlived its retries, a crash):
the annotator then hands the job back for another try.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from botocore.exceptions import ClientError

from ann.anntools import AnnotationError, InputLimits, annotate_file
from gas import aws
from gas.files import Files
from gas.jobs import Job, JobStatus, JobStore
from gas.log import configure_logging, log_context
from gas.messages import Bus
from gas.metrics import count_outcome
from gas.settings import Settings, SettingsError, command_line, load_settings
from gas.submit import human_size

log = logging.getLogger("ann.run")
PLANS = ("free", "premium")
HEARTBEAT_S = 2.0
PR_SET_PDEATHSIG = 1


class Heartbeat(threading.Thread):
    """Writes the job's progress (and so its liveness) every HEARTBEAT_S seconds."""

    def __init__(self, jobs: JobStore, job: Job) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.jobs, self.job = jobs, job
        self.progress = 0
        self.stopped = threading.Event()
        self.lost = threading.Event()  # another run took the job over

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_S):
            try:
                alive = self.jobs.heartbeat(self.job.job_id, self.job.claim_id or "", self.progress)
            except (*aws.UNREACHABLE, ClientError) as exc:
                log.warning("heartbeat not recorded (will try again): %s", exc)
                continue
            if not alive:
                self.lost.set()
                return


def result_keys(job: Job, input_name: str) -> tuple[str, str]:
    """`<user>/<job>/<stem>.annot.vcf` and `<user>/<job>/<stem>.vcf.count.log`."""
    stem = re.sub(r"\.vcf(\.gz)?$", "", input_name, flags=re.IGNORECASE)
    prefix = f"{job.user_id}/{job.job_id}/"
    return prefix + f"{stem}.annot.vcf", prefix + f"{stem}.vcf.count.log"


def variants_key(result_key: str) -> str:
    """`<user>/<job>/<stem>.variants.parquet`, beside the result `<stem>.annot.vcf`.

    The table stays in the results bucket for the job's lifetime: archiving moves only the
    annotated VCF to cold storage (gas/coldstorage.py, util/archive.py), so an archived
    job keeps its table and `stats`, and a restore does not need to bring it back.
    """
    return result_key.removesuffix(".annot.vcf") + ".variants.parquet"


def safe_local_name(name: str) -> str:
    """The input's name as a file in the work folder (no path tricks, never empty)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    return re.sub(r"[^A-Za-z0-9._+-]", "_", base) or "input.vcf"


def run(settings: Settings, job_id: str, claim_id: str, premium: bool) -> int:
    """Annotate a claimed job; `premium`: its user's plan, as the annotator read it at claim
    time (it sets the input's limits)."""
    jobs, files, bus = JobStore(settings), Files(settings), Bus(settings)
    job = jobs.get(job_id)
    if job is None or job.job_status != JobStatus.RUNNING or job.claim_id != claim_id:
        log.info("job is not held by this run; nothing to do", extra={"job_id": job_id})
        return 0
    with log_context(job_id=job.job_id, user_id=job.user_id):
        work = Path(tempfile.mkdtemp(prefix=f"gas-{job.job_id}-", dir=settings.work_dir or None))
        heartbeat = Heartbeat(jobs, job)
        try:
            heartbeat.start()
            return _annotate(settings, jobs, files, bus, job, work, heartbeat, premium)
        finally:
            heartbeat.stopped.set()
            shutil.rmtree(work, ignore_errors=True)


def _annotate(
    settings: Settings,
    jobs: JobStore,
    files: Files,
    bus: Bus,
    job: Job,
    work: Path,
    heartbeat: Heartbeat,
    premium: bool,
) -> int:
    claim = job.claim_id or ""
    input_path = work / safe_local_name(job.input_file_name)
    try:
        files.s3.download_file(job.s3_inputs_bucket, job.s3_key_input_file, str(input_path))
    except files.s3.exceptions.ClientError as exc:
        if aws.error_code(exc) not in aws.NO_SUCH_OBJECT:
            raise
        return _finish_failed(settings, jobs, bus, job, "input file not found")

    def progress(fraction: float) -> None:
        heartbeat.progress = max(heartbeat.progress, min(99, int(fraction * 100)))

    try:
        result = annotate_file(
            input_path,
            out_dir=work / "out",
            assembly=job.assembly,
            progress=progress,
            limits=input_limits(settings, premium),
        )
    except AnnotationError as exc:
        return _finish_failed(settings, jobs, bus, job, str(exc))
    if heartbeat.lost.is_set():
        log.warning("another run took this job over; leaving it to that run")
        return 0

    result_key, log_key = result_keys(job, input_path.name)
    bucket = settings.results_bucket
    size, sha256 = files.put_file(bucket, result_key, result.annotated_path)
    files.put_file(bucket, log_key, result.log_path)
    table_key = None
    if result.variants_path is not None:
        table_key = variants_key(result_key)
        files.put_file(bucket, table_key, result.variants_path)
    # Every result is considered for cold storage once the retention window is over; the
    # archive daemon reads the plan then, and a premium user's result leaves the index.
    # Not only free users' (the plan read at claim): a user who downgrades while the job
    # runs, after billing gave their finished results fresh windows, would keep this one
    # hot forever.
    archive_due_at = int(time.time()) + settings.free_retention_s
    completed = jobs.complete(
        job.job_id,
        claim,
        results_bucket=bucket,
        result_key=result_key,
        log_key=log_key,
        variant_count=result.variant_count,
        summary=dict(result.summary),
        result_size=size,
        result_sha256=sha256,
        archive_due_at=archive_due_at,
        variants_key=table_key,
        stats=result.stats,
    )
    if not completed:
        log.warning("job was no longer held by this run at completion; not publishing")
        return 0
    log.info("job completed", extra={"variant_count": result.variant_count})
    bus.job_finished(job.job_id, job.user_id, JobStatus.COMPLETED)
    count_outcome(settings, JobStatus.COMPLETED)
    return 0


def input_limits(settings: Settings, premium: bool) -> InputLimits:
    """What one job's input may cost, by the user's plan (checked as the input is read)."""
    if premium:
        return InputLimits(
            max_bytes=settings.max_uncompressed_bytes,
            max_line_bytes=settings.max_line_bytes,
            max_header_lines=settings.max_header_lines,
        )
    return InputLimits(
        max_bytes=settings.free_max_uncompressed_bytes,
        max_line_bytes=settings.max_line_bytes,
        max_header_lines=settings.max_header_lines,
        max_bytes_note=" on the free plan; premium accepts up to "
        + human_size(settings.max_uncompressed_bytes),
    )


def out_of_memory(settings: Settings) -> str:
    return (
        f"the annotation needed more than the {settings.job_memory_limit_mib} MiB of memory "
        "a job may use"
    )


def limit_memory(settings: Settings) -> None:
    """Cap this run's address space, so a job that would take the host's memory fails
    alone (MemoryError), leaving the annotator and other jobs untouched."""
    limit = settings.job_memory_limit_mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# A job's error is shown to its user and stored on its item: bounded, whatever produced it.
MAX_ERROR_CHARS = 1000


def _finish_failed(settings: Settings, jobs: JobStore, bus: Bus, job: Job, error: str) -> int:
    error = error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 3] + "..."
    if jobs.fail(job.job_id, error, claim_id=job.claim_id):
        log.info("job failed: %s", error)
        bus.job_finished(job.job_id, job.user_id, JobStatus.FAILED)
        count_outcome(settings, JobStatus.FAILED)
    return 0


def die_with_parent(parent: int) -> None:
    """If our parent dies (kill -9), this process dies too, instead of racing a re-claim."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the claim check at completion still protects the job
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    """`python -m ann.run`: one job in a fresh interpreter (the warm runners of
    ann/warm.py run the same `execute` in a process forked with everything imported)."""
    parser = command_line("python -m ann.run", __doc__)
    parser.add_argument("job_id")
    parser.add_argument("claim_id", help="the claim the annotator recorded on the job")
    parser.add_argument("annotator_pid", type=int, help="this run dies with that process")
    parser.add_argument("plan", choices=PLANS)
    args = parser.parse_args(argv)
    die_with_parent(args.annotator_pid)
    return execute(args.job_id, args.claim_id, args.plan)


def execute(job_id: str, claim_id: str, plan: str) -> int:
    """Run one claimed job in this process, under the job's memory limit; the exit code."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"run: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging("run", settings.log_level)
    limit_memory(settings)
    try:
        return run(settings, job_id, claim_id, plan == "premium")
    except Exception as exc:
        if not ran_out_of_memory(exc):
            log.exception("job run crashed", extra={"job_id": job_id})
            return 1
    # Past the memory limit, wherever it was hit: what the run held is released by now.
    jobs = JobStore(settings)
    job = jobs.get(job_id)
    if job is None or job.claim_id != claim_id:
        return 0
    with log_context(job_id=job.job_id, user_id=job.user_id):
        return _finish_failed(settings, jobs, Bus(settings), job, out_of_memory(settings))


def ran_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is the address-space limit being hit: a failed allocation, mapping or
    thread start (each surfaces as its own exception), here or as the cause of another."""
    while exc is not None:
        if isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM):
            return True
        if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
