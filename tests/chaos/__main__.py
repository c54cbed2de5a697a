"""`make chaos`: the whole local stack under faults nobody chose, and the figures of what
survived.

python -m tests.chaos [--jobs 200] [--users 20] [--seconds 300] [--seed N]

Starts every process of config/Procfile on its own (two annotators), the emulator behind a
proxy that can cut the network (tests/chaos/stack.py). USERS users log in; free, premium
and malformed-VCF users, some upgrading through the checkout stand-in and some cancelling in
its portal midway (tests/chaos/workload.py); JOBS jobs are submitted over SECONDS through the
API and through the browser's upload form. Meanwhile, every 1-5 s, a fault drawn at random:
kill -9 of an annotator, a job's process (run.py), notify, archive, restore, thaw or a
gunicorn worker (each killed daemon is started again 0.5-3 s later; gunicorn starts its own
workers again), or the network to the emulator cut for 2-5 s. The free retention window is
short, so archive, restore and thaw all run during the run.

Then the faults stop, the run waits for the stack to settle, and checks the invariants
(tests/chaos/check.py): 0 lost, 0 duplicated, 0 stuck is the goal. The seed draws the users,
the jobs and the faults; the same seed replays the same draws (their timing is the
machine's). Exit status 1 if any invariant broke, each broken one printed.
"""

from __future__ import annotations

import argparse
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gas.settings import settings_from
from tests.chaos import check
from tests.chaos.stack import FAULTS, ChaosStack, Faults
from tests.chaos.workload import Counters, Submitted, User, gzipped, vcf

SETTLE_S = 300


def roles_for(users: int, rng: random.Random) -> list[str]:
    """One malformed-VCF user; of the others about a quarter premium, a fifth upgrading
    midway, a sixth cancelling midway, the rest free."""
    others = users - 1
    premium, upgrades, cancels = max(1, others // 4), max(1, others // 5), max(1, others // 6)
    free = max(0, others - premium - upgrades - cancels)
    roles = ["premium"] * premium + ["upgrades"] * upgrades + ["cancels"] * cancels
    roles = (roles + ["free"] * free)[:others]
    rng.shuffle(roles)
    return ["malformed", *roles]


class Run:
    def __init__(self, args: argparse.Namespace, log_dir: Path) -> None:
        self.args = args
        self.log_dir = log_dir
        self.rng = random.Random(args.seed)  # users and jobs
        self.fault_rng = random.Random(args.seed + 1)  # faults, drawn in their own thread
        self.counters = Counters()
        self.faults = Faults()
        self.submitted: list[Submitted] = []
        self.lock = threading.Lock()
        self.stop_faults = threading.Event()
        self.stack = ChaosStack(
            log_dir,
            GAS_FREE_RETENTION_S=str(args.retention),
            GAS_ARCHIVE_SWEEP_S="2",
            GAS_LOCAL_RESTORE_DELAY_S="3",
            GAS_SUBMIT_RATE_PER_MINUTE="100000",
            GAS_UPLOAD_FORMS_PER_MINUTE="100000",
            GAS_ANNOTATOR_SLOTS="2",
            GAS_JOB_STALE_AFTER_S="8",
            GAS_JOB_SWEEP_S="4",
            GAS_JOB_RESUBMIT_AFTER_S="20",
            GAS_QUEUE_VISIBILITY_TIMEOUT_S="10",
            GAS_SHUTDOWN_GRACE_S="10",
        )

    def fault_loop(self) -> None:
        while not self.stop_faults.wait(self.fault_rng.uniform(1, 5)):
            kind = self.fault_rng.choice(FAULTS)
            restart = self.stack.inject(kind, self.fault_rng, self.faults)
            if restart is not None:
                time.sleep(self.fault_rng.uniform(0.5, 3))
                restart()

    def submit(self, user: User, index: int, valid: bool, browser: bool, gz: bool) -> None:
        # A free user's input is capped at 150 KB (about 2,500 of these records).
        big = 20_000 if user.role == "premium" else 2_500
        body = vcf(self.rng_for(index), f"{self.args.seed}/{index}", not valid, big)
        name = f"chaos-{index:04d}.vcf"
        if gz:
            body, name = gzipped(body), name + ".gz"
        job_id = user.submit_browser(name, body) if browser else user.submit_api(name, body)
        if job_id is None:
            raise RuntimeError(f"a valid submission was refused ({user.email}, {name})")
        with self.lock:
            self.submitted.append(
                Submitted(job_id, user.email, "browser" if browser else "api", body)
            )

    def rng_for(self, index: int) -> random.Random:
        return random.Random(f"{self.args.seed}/{index}")

    def main(self) -> int:
        args = self.args
        started = time.monotonic()
        self.stack.start_all()
        roles = roles_for(args.users, self.rng)
        users = [
            User(self.stack.url, i, role, args.seed, self.counters) for i, role in enumerate(roles)
        ]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda u: u.log_in(), users))
            list(
                pool.map(
                    lambda u: u.subscribe(), [u for u in users if u.role in ("premium", "cancels")]
                )
            )
        plan = []
        for index in range(args.jobs):
            user = self.rng.choice(users)
            valid = not (user.role == "malformed" and self.rng.random() < 0.5)
            plan.append((user, index, valid, self.rng.random() < 1 / 3, self.rng.random() < 0.2))
        faults = threading.Thread(target=self.fault_loop, name="faults")
        faults.start()
        try:
            self.workload(users, plan)
        finally:
            self.stop_faults.set()
            faults.join()
        submitted_s = time.monotonic() - started
        settings = settings_from(
            {**self.stack.values, "GAS_AWS_ENDPOINT_URL": self.stack.emulator_url}
        )
        by_role = {u.user_id: u.role for u in users}
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            if not check.settled(check.all_jobs(settings, list(by_role)), by_role):
                break
            time.sleep(2)
        # Checked with GAS stopped (SIGTERM: what runs finishes), so nothing moves meanwhile.
        self.stack.stop(keep=("emulator", "standins"))
        notify_kills = self.faults.injected["notify"]
        found = check.check(settings, self.submitted, by_role, self.log_dir, notify_kills)
        self.report(found, users, time.monotonic() - started, submitted_s)
        return 1 if found.failures else 0

    def workload(self, users: list[User], plan: list) -> None:
        """The jobs, spread over --seconds (four clients at a time), and the plan changes
        at the halfway mark."""
        started = time.monotonic()
        gap = self.args.seconds / max(1, len(plan))
        halfway = len(plan) // 2
        with ThreadPoolExecutor(4) as pool, ThreadPoolExecutor(4) as plans:
            futures = []
            for user, index, valid, browser, gz in plan:
                time.sleep(max(0.0, started + index * gap - time.monotonic()))
                if index == halfway:
                    futures += [plans.submit(u.subscribe) for u in users if u.role == "upgrades"]
                    futures += [plans.submit(u.cancel) for u in users if u.role == "cancels"]
                futures.append(pool.submit(self.submit, user, index, valid, browser, gz))
            malformed = next(u for u in users if u.role == "malformed")
            futures.append(pool.submit(self.not_a_vcf, malformed))
            for future in futures:
                future.result()

    def not_a_vcf(self, user: User) -> None:
        """A file that is not a VCF is refused at once with a 4xx, and makes no job."""
        if user.submit_api("notes.vcf", b"%PDF-1.7\nnot a variant in sight\n") is not None:
            raise RuntimeError("a file that is not a VCF was accepted as a job")

    def report(self, found: check.Findings, users: list[User], wall_s: float, submit_s: float):
        args = self.args
        api = sum(s.path == "api" for s in self.submitted)
        roles = {
            r: sum(u.role == r for u in users)
            for r in ("free", "premium", "upgrades", "cancels", "malformed")
        }
        injected = ", ".join(f"{k} {v}" for k, v in self.faults.injected.items())
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(found.by_status.items()))
        rows = [
            (
                "seed",
                f"{args.seed} (replay: make chaos SEED={args.seed} JOBS={args.jobs} "
                f"USERS={args.users} DURATION={args.seconds:g})",
            ),
            ("users", ", ".join(f"{v} {k}" for k, v in roles.items())),
            (
                "jobs submitted (API / browser form)",
                f"{len(self.submitted)} ({api} / {len(self.submitted) - api})",
            ),
            (
                "jobs recorded (not acknowledged to the client)",
                f"{found.jobs} ({found.unacknowledged})",
            ),
            ("submissions refused with a 4xx (not a VCF)", str(self.counters.rejected)),
            ("final states", statuses),
            (
                "faults injected",
                f"{sum(self.faults.injected.values())}: {injected} "
                f"({self.faults.missed} draws found no target)",
            ),
            ("client retries (errors and 5xx seen by users)", str(self.counters.retries)),
            ("lost", str(len(found.lost))),
            ("duplicated", str(len(found.duplicated))),
            ("stuck", str(len(found.stuck))),
            ("wrong (bytes, plan or state against the rules)", str(len(found.wrong))),
            ("emails sent", str(found.emails)),
            (
                "emails sent again (notify killed between SES and its record)",
                str(len(found.resent)),
            ),
            ("dead-lettered messages (unexplained)", f"{found.dlq} ({len(found.unexplained_dlq)})"),
            (
                "wall time (submitting + settling and checking)",
                f"{wall_s:.0f} s ({submit_s:.0f} s + {wall_s - submit_s:.0f} s)",
            ),
        ]
        print("| chaos run | |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
        for kind, items in (
            ("LOST", found.lost),
            ("DUPLICATED", found.duplicated),
            ("STUCK", found.stuck),
            ("WRONG", found.wrong),
            ("UNEXPLAINED DLQ", found.unexplained_dlq),
            ("SENT AGAIN (at least once)", found.resent),
        ):
            for item in items:
                print(f"{kind}: {item}")
        print(f"logs: {self.log_dir}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=300, help="submissions spread over this")
    parser.add_argument("--retention", type=int, default=15, help="free retention window (s)")
    parser.add_argument("--seed", type=int, default=None, help="default: a new one, printed")
    args = parser.parse_args(argv)
    if args.users < 5:
        parser.error("--users must be at least 5 (one of each kind)")
    if args.seed is None:
        args.seed = secrets.randbelow(10**6)
    return args


def _interrupt(_signum: int, _frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the teardown must not be broken
    raise KeyboardInterrupt("SIGTERM")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="gas-chaos-"))
    print(
        f"chaos: seed {args.seed}, {args.jobs} jobs, {args.users} users, logs in {log_dir}",
        flush=True,
    )
    # SIGTERM (a CI limit, `kill`) stops the stack as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    run = Run(args, log_dir)
    try:
        return run.main()
    finally:
        run.stop_faults.set()
        run.stack.stop()


if __name__ == "__main__":
    sys.exit(main())
