"""Load: the web tier and the annotator under concurrent users, from outside (`make load`).

Starts the whole local stack (`python -m devstack stack`) on free ports with the AWS call
recorder of the test suite in its environment, logs users in through the stand-in identity
provider, and runs, one after the other:
- page loads: CONCURRENCY clients for SECONDS each on the job list, a job page, and the
  job status poll (a logged-in browser session each);
- jobs: JOBS small VCFs through the API at RATE per second, each followed to COMPLETED.
It prints, per phase: requests/s, p50/p95/p99 latency, error rate, CPU milliseconds per
request of the web tier (the gunicorn processes' user+system time over the phase, from
/proc), of the emulator and of the clients themselves (where the cores went), and AWS calls
per request (recorded in the gunicorn workers); for jobs: jobs/min and submit->COMPLETED
p50/p95. The web tier's CPU and calls are what carry over to AWS, where the emulator's
share of these cores is gone.
Not a test: numbers vary with the machine.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests import awscalls
from tests.bench.pipeline import Client, percentile, small_vcf
from tests.browser.conftest import api_token, signed_in, start_stack

CONCURRENCY = 16
SECONDS = 20
JOBS = 60
RATE = 2.0  # jobs submitted per second
CPU_COLUMNS = ("web", "emulator", "clients")


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)
    aws_calls: int = 0

    def row(self) -> str:
        done = len(self.latencies) + self.errors
        ms = [x * 1000 for x in self.latencies] or [0.0]
        return (
            f"| {self.name} | {done / self.seconds:.0f} | {percentile(ms, 0.5):.0f} | "
            f"{percentile(ms, 0.95):.0f} | {percentile(ms, 0.99):.0f} | "
            f"{100 * self.errors / max(done, 1):.1f}% | "
            + " | ".join(f"{self.cpu_ms[k] / max(done, 1):.1f}" for k in CPU_COLUMNS)
            + f" | {self.aws_calls / max(done, 1):.1f} |"
        )


def cpu_ms(command: bytes) -> float:
    """User+system CPU so far of every process on this machine whose command line holds
    `command` (the stack's: its ports are its own), in ms."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            if command not in (stat.parent / "cmdline").read_bytes():
                continue
        except OSError:
            continue
        fields = text.rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total * 1000 / ticks


def cpu_now() -> dict[str, float]:
    """CPU ms so far of the web tier, the emulator, and these clients (this process)."""
    own = os.times()
    return {
        "web": cpu_ms(b"gunicorn"),
        "emulator": cpu_ms(b"devstack\x00emulator"),
        "clients": (own.user + own.system) * 1000,
    }


def web_calls() -> int:
    """AWS calls the gunicorn processes have made so far (presigned links are no call)."""
    return sum(
        not call.get("presigned")
        for process in awscalls.processes()
        if process.argv and "gunicorn" in process.argv[0]
        for call in process.calls
    )


def load(name: str, sessions: list[requests.Session], url: Callable[[int], str]) -> Phase:
    phase = Phase(name)
    lock, stop = threading.Lock(), threading.Event()

    def client(n: int) -> None:
        http = sessions[n % len(sessions)]
        while not stop.is_set():
            started = time.perf_counter()
            try:
                ok = http.get(url(n), timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            took = time.perf_counter() - started
            with lock:
                if ok:
                    phase.latencies.append(took)
                else:
                    phase.errors += 1

    cpu, calls, started = cpu_now(), web_calls(), time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    time.sleep(SECONDS)
    stop.set()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - started
    phase.cpu_ms = {k: v - cpu[k] for k, v in cpu_now().items()}
    phase.aws_calls = web_calls() - calls
    return phase


def jobs(client: Client) -> tuple[float, list[float]]:
    """JOBS jobs at RATE a second, each followed to COMPLETED: (jobs/min, latencies)."""
    body, latencies, lock = small_vcf(), [], threading.Lock()

    def one() -> None:
        started = time.perf_counter()
        client.wait_completed([client.submit(body)])
        with lock:
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = []
    for n in range(JOBS):
        time.sleep(max(0.0, started + n / RATE - time.perf_counter()))
        threads.append(threading.Thread(target=one))
        threads[-1].start()
    for thread in threads:
        thread.join()
    return JOBS / ((time.perf_counter() - started) / 60), latencies


def main() -> None:
    awscalls.start()  # the stack's processes inherit the recorder
    stack = start_stack(Path(tempfile.mkdtemp(prefix="gas-load-")),
                        GAS_SUBMIT_RATE_PER_MINUTE="100000")  # fmt: skip
    try:
        users, job_of = [], []
        for n in range(4):  # users with jobs to list
            browser = signed_in(stack.url, f"load{n}@example.org")
            api = Client(stack.url, api_token(stack.url, browser))
            ids = [api.submit(small_vcf()) for _ in range(5)]
            api.wait_completed(ids)
            users.append(browser)
            job_of.append(ids[0])
        page = f"{stack.url}/annotations"
        phases = [
            load("job list `/annotations`", users, lambda n: page),
            load("job page `/annotations/<id>`", users,
                 lambda n: f"{page}/{job_of[n % len(users)]}"),
            load("status poll `.../status.json`", users,
                 lambda n: f"{page}/{job_of[n % len(users)]}/status.json"),
        ]  # fmt: skip
        rate, latencies = jobs(Client(stack.url, api_token(stack.url, users[0])))
    finally:
        stack.stop()
        awscalls.stop()

    print(f"{CONCURRENCY} concurrent clients, {SECONDS} s per page, 4 users with 5 jobs each")
    print("| page | req/s | p50 ms | p95 ms | p99 ms | errors | CPU ms/req: web | emulator "
          "| clients | AWS calls/req |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for phase in phases:
        print(phase.row())
    print(f"\njobs: {JOBS} small VCFs through the API at {RATE:g}/s: {rate:.0f} jobs/min; "
          f"submit->COMPLETED p50 {statistics.median(latencies):.2f} s, "
          f"p95 {percentile(latencies, 0.95):.2f} s")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
