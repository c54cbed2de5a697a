"""Benchmark: the job pipeline on the local stack (`make bench-pipeline`).

Starts a moto server process, provisions it, and runs the real annotator daemon
(1 or 2 processes, each with its default slots). Jobs are submitted through the
production submission path (`Submissions.submit_file`, as the API does: upload,
VCF sniff, job record, job request) with ~10 KB VCFs.

Reports:
- latency: submit -> COMPLETED for 20 jobs, one at a time, p50 and p95, measured by
  polling the job item every 10 ms;
- throughput: 100 jobs submitted at once, jobs/min until the last is COMPLETED, with
  1 and then 2 annotator processes.
Not a test: numbers vary with the machine.
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from gas.jobs import JobStore
from gas.provision import provision
from gas.settings import settings_from
from gas.submit import Submissions
from gas.users import UserStore
from tests.conftest import free_port, local_values, process_env, start_emulator
from tests.processes import Process

ROOT = Path(__file__).resolve().parents[2]
LATENCY_JOBS = 20
THROUGHPUT_JOBS = 100


def vcf_10kb() -> bytes:
    header = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    records = b"".join(
        f"chr1\t{1_000_000 + 997 * i}\t.\tA\tG\t50\tPASS\tDP={10 + i % 50}\n".encode()
        for i in range(270)
    )
    return header + records


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    port = free_port()
    emulator = start_emulator(port)
    values = local_values(GAS_AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                          GAS_SUBMIT_RATE_PER_MINUTE="100000", GAS_LOG_LEVEL="WARNING")  # fmt: skip
    settings = settings_from(values)
    provision(settings, report=lambda _c: None)
    submissions, jobs = Submissions(settings), JobStore(settings)
    user = UserStore(settings).sign_in(str(uuid.uuid4()), "bench@example.org", "Bench")
    body = vcf_10kb()
    logs = Path(tempfile.mkdtemp(prefix="gas-bench-"))
    annotators: list[Process] = []

    def start_annotator() -> None:
        with (logs / f"annotator{len(annotators)}.log").open("w") as log:
            annotators.append(
                Process(
                    [sys.executable, "-m", "ann.annotator"],
                    cwd=ROOT,
                    env=process_env(values),
                    stdout=log,
                    stderr=log,
                )
            )

    def submit() -> str:
        job = submissions.submit_file(user, io.BytesIO(body), "bench.vcf", len(body), "hg19")
        return job.job_id

    def wait_completed(job_ids: list[str]) -> None:
        pending = set(job_ids)
        while pending:
            pending = {j for j in pending if jobs.get(j).job_status != "COMPLETED"}
            if pending:
                time.sleep(0.01)

    try:
        start_annotator()
        time.sleep(3)  # the daemon is up and long-polling
        wait_completed([submit()])  # warm-up: first-run imports and caches
        latencies = []
        for _ in range(LATENCY_JOBS):
            started = time.perf_counter()
            wait_completed([submit()])
            latencies.append(time.perf_counter() - started)

        throughput = {}
        for processes in (1, 2):
            while len(annotators) < processes:
                start_annotator()
                time.sleep(3)
            started = time.perf_counter()
            ids = [submit() for _ in range(THROUGHPUT_JOBS)]
            wait_completed(ids)
            throughput[processes] = THROUGHPUT_JOBS / ((time.perf_counter() - started) / 60)
    finally:
        for proc in annotators:
            proc.stop()
        emulator.stop()

    print(
        f"input: {len(body) / 1024:.1f} KiB VCF, {body.count(b'chr1')} records; "
        f"annotator slots per process: {settings.annotator_slots or 'one per core'}"
    )
    print("| measure | value |")
    print("|---|---:|")
    print(
        f"| submit -> COMPLETED p50 ({LATENCY_JOBS} jobs, one at a time) | "
        f"{statistics.median(latencies):.2f} s |"
    )
    print(f"| submit -> COMPLETED p95 | {percentile(latencies, 0.95):.2f} s |")
    for processes, rate in throughput.items():
        print(
            f"| throughput, {processes} annotator process{'es' if processes > 1 else ''}, "
            f"{THROUGHPUT_JOBS} jobs | {rate:.0f} jobs/min |"
        )


if __name__ == "__main__":
    main()
