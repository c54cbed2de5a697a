"""Benchmark: a job through the public API, the way a user meets it (`make bench-pipeline`).

Starts the whole local stack (`python -m devstack stack`: the emulator, the stand-ins, the web
tier, the annotator and the other daemons) on free ports, logs in through the stand-in
identity provider, makes an API token on the profile page, and then:
- latency: 20 jobs one at a time (a 7.5 KB VCF of 37 records): POST /api/v1/jobs, then
  GET /api/v1/jobs/<id> every 20 ms until it says COMPLETED; submit -> COMPLETED as the
  client sees it, p50 and p95;
- throughput: 100 jobs submitted through the API at once, jobs/min until the last is
  COMPLETED, with the stack's annotator, then with a second annotator process.
Not a test: numbers vary with the machine (the emulator shares its cores).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.browser.conftest import api_token, start_stack
from tests.conftest import process_env
from tests.processes import Process

ROOT = Path(__file__).resolve().parents[2]
LATENCY_JOBS = 20
THROUGHPUT_JOBS = 100
POLL_S = 0.02


def small_vcf() -> bytes:
    """37 records with INFO fields, about 7.5 KB: a small job of the kind users send."""
    header = (
        b"##fileformat=VCFv4.2\n"
        b'##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">\n'
        b'##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">\n'
        b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    )
    records = b"".join(
        f"chr1\t{1_000_000 + 7919 * i}\trs{100_000 + i}\tA\tG\t{50 + i}\tPASS\t"
        f"DP={10 + i};AF=0.{i % 9 + 1};{'X' * 130}={i}\n".encode()
        for i in range(37)
    )
    return header + records


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Client:
    def __init__(self, web: str, token: str) -> None:
        self.api = f"{web}/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def submit(self, body: bytes) -> str:
        answer = self.http.post(
            f"{self.api}/jobs",
            files={"file": ("bench.vcf", body)},
            data={"assembly": "hg19"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["job_id"]

    def wait_completed(self, job_ids: list[str]) -> None:
        pending = list(job_ids)
        while pending:
            status = self.http.get(f"{self.api}/jobs/{pending[0]}", timeout=30).json()
            if status["job_status"] == "COMPLETED":
                pending.pop(0)
            elif status["job_status"] == "FAILED":
                raise RuntimeError(f"a job failed: {status}")
            else:
                time.sleep(POLL_S)


def main() -> None:
    logs = Path(tempfile.mkdtemp(prefix="gas-bench-"))
    stack = start_stack(logs, GAS_SUBMIT_RATE_PER_MINUTE="100000")
    second: Process | None = None
    body = small_vcf()
    try:
        client = Client(stack.url, api_token(stack.url))
        client.wait_completed([client.submit(body)])  # warm-up
        latencies = []
        for _ in range(LATENCY_JOBS):
            started = time.perf_counter()
            client.wait_completed([client.submit(body)])
            latencies.append(time.perf_counter() - started)
        throughput = {}
        for annotators in (1, 2):
            if annotators == 2:
                with (logs / "annotator2.log").open("w") as log:
                    second = Process(
                        [sys.executable, "-m", "ann.annotator"],
                        cwd=ROOT,
                        env=process_env(stack.values),
                        stdout=log,
                        stderr=log,
                    )
                time.sleep(5)  # it is up and long-polling
            started = time.perf_counter()
            ids = [client.submit(body) for _ in range(THROUGHPUT_JOBS)]
            client.wait_completed(ids)
            throughput[annotators] = THROUGHPUT_JOBS / ((time.perf_counter() - started) / 60)
    finally:
        if second is not None:
            second.stop()
        stack.stop()

    print(
        f"input: {len(body) / 1000:.1f} KB VCF, {body.count(b'chr1')} records; "
        f"polling every {POLL_S * 1000:.0f} ms; logs in {logs}"
    )
    print("| measure (through the public API) | value |")
    print("|---|---:|")
    print(
        f"| submit -> COMPLETED p50 ({LATENCY_JOBS} jobs, one at a time) | "
        f"{statistics.median(latencies):.2f} s |"
    )
    print(f"| submit -> COMPLETED p95 | {percentile(latencies, 0.95):.2f} s |")
    for annotators, rate in throughput.items():
        print(
            f"| throughput, {annotators} annotator process{'es' if annotators > 1 else ''}, "
            f"{THROUGHPUT_JOBS} jobs at once | {rate:.0f} jobs/min |"
        )


if __name__ == "__main__":
    main()
